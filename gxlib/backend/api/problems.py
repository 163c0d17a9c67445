"""RFC 9457 problem details: every rejected request gets ``application/problem+json``."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gxlib.backend.errors import BackendError, CommandNotFoundError, IdempotencyConflictError

PROBLEM_JSON = "application/problem+json"
DATABASE_RETRY_AFTER_S = 5  # what a 503 for an unavailable database tells the client to wait
log = logging.getLogger("gxlib.backend.api")

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
          500: "Internal Server Error", 503: "Service Unavailable"}


class RequestRefusedError(BackendError):
    """A request the API refuses with ``status``; ``context`` (operator-facing fields such as the content type
    or the duplicate key) goes into the problem body."""

    status = 400
    title = "Bad Request"

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message, hint=hint)
        self.context = context


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
            headers: dict[str, str] | None = None, instance: str | None = None, **extra: Any) -> ProblemResponse:
    body: dict[str, Any] = {"type": type_, "title": title or TITLES.get(status, "Error"), "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input (it may be huge or secret)."""
    return [{"loc": [_jsonable(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))} for e in errors]


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot serve requests right now (refused or dropped connection, server
    shutting down, pool exhausted) — a 503 the client may repeat — rather than that a statement is wrong (500)."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated
                                            or isinstance(exc, OperationalError | InterfaceError))


def database_unavailable_problem(path: str) -> ProblemResponse:
    """503 for a request the database could not serve; repeating a command with its idempotency key is safe."""
    return problem(503, "the database is unavailable; repeat the request later (a command repeated with the same "
                        "idempotency key is accepted once)", title="Database unavailable", instance=path,
                   headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)}, checks={"database": "unreachable"})


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ProblemResponse:
        errors = validation_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "the request body is not valid JSON", title="Malformed JSON",
                           instance=request.url.path, errors=errors)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
        return problem(422, f"{where}: {first['msg']}", title="Invalid request", instance=request.url.path,
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        return problem(exc.status_code, str(exc.detail), instance=request.url.path,
                       headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestRefusedError)
    async def _refused(request: Request, exc: RequestRefusedError) -> ProblemResponse:
        return problem(exc.status, exc.message, title=exc.title, instance=request.url.path, **exc.context)

    @app.exception_handler(CommandNotFoundError)
    async def _not_found(request: Request, exc: CommandNotFoundError) -> ProblemResponse:
        return problem(404, exc.message, instance=request.url.path, commandId=exc.command_id)

    @app.exception_handler(IdempotencyConflictError)
    async def _conflict(request: Request, exc: IdempotencyConflictError) -> ProblemResponse:
        return problem(409, exc.message, title="Idempotency key reused", instance=request.url.path,
                       commandId=exc.command_id)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(request: Request, exc: Exception) -> ProblemResponse:
        if not database_unavailable(exc):
            log.exception("database error", extra={"path": request.url.path})
            return problem(500, "internal error; see the service log", instance=request.url.path)
        log.warning("database unavailable", extra={"path": request.url.path,
                                                   "error": f"{exc.__class__.__name__}: {getattr(exc, 'orig', exc)}"})
        return database_unavailable_problem(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal error; see the service log", instance=request.url.path)
