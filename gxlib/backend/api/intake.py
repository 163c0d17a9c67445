"""Reading a command request in the order SPEC §9 asks: the caller's role first, then the media type, then the
body as UTF-8 JSON with unique keys, and only then the schema (FastAPI's validation, 422).

FastAPI decodes the body and validates it before any dependency of the endpoint runs, so a role check inside
the endpoint comes too late (a reader posting a malformed MINT learnt the field details instead of getting 403).
:class:`CommandIntakeRoute` runs these checks in front of FastAPI's own handler; each refusal is a typed error
that ``problems.py`` turns into problem+json.

Usage::

    router = APIRouter(route_class=CommandIntakeRoute)
    @router.post("/api/v1/commands") ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from gxlib.backend.api.middleware import ROLE_SCOPE_KEY
from gxlib.backend.api.problems import RequestRefusedError
from gxlib.backend.commands import COMMANDS, CommandType
from gxlib.backend.settings import ApiRole

JSON_MEDIA_TYPE = "application/json"
UTF8_BOM = b"\xef\xbb\xbf"
# ApiRole is declared from the least to the most privileged role.
LEAST_COMMAND_ROLE = next(role for role in ApiRole if any(spec.api_role is role for spec in COMMANDS.values()))


class CommandNotAllowedError(RequestRefusedError):
    """The caller's role may not submit this command (or any command)."""

    status = 403
    title = "Forbidden"

    def __init__(self, role: ApiRole, needed: ApiRole, command_type: CommandType | None) -> None:
        what = f"command {command_type.value}" if command_type else "submitting a command"
        super().__init__(f"{what} needs role {needed.value}; the token has {role.value}",
                         role=role.value, neededRole=needed.value)
        self.role = role
        self.needed = needed
        self.command_type = command_type


class UnsupportedMediaTypeError(RequestRefusedError):
    status = 415
    title = "Unsupported Media Type"

    def __init__(self, content_type: str | None) -> None:
        given = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        super().__init__(f"the request body has {given}; send {JSON_MEDIA_TYPE} (UTF-8)",
                         contentType=content_type, accepted=[JSON_MEDIA_TYPE])
        self.content_type = content_type


class UnreadableJsonError(RequestRefusedError):
    """The body is not UTF-8, not JSON, or JSON beyond what the API reads (NaN, huge integers, lone surrogates)."""

    title = "Malformed JSON"


class DuplicateJsonKeyError(RequestRefusedError):
    title = "Duplicate JSON key"

    def __init__(self, key: str) -> None:
        super().__init__(f"the request body names the key {key!r} twice; JSON objects must have unique keys",
                         key=key)
        self.key = key


def require_json_media_type(content_type: str | None) -> None:
    """Accept ``application/json`` with no charset or ``charset=utf-8``; anything else is 415."""
    if not content_type:
        raise UnsupportedMediaTypeError(content_type)
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(content_type)
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            raise UnsupportedMediaTypeError(content_type)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as parsed, duplicates kept, so that the check can name where a duplicate is."""


def _refuse_constant(name: str) -> Any:
    raise UnreadableJsonError(f"the request body holds {name}, which is not JSON")


def parse_json(body: bytes) -> Any:
    """The body as a JSON value, read strictly: UTF-8 without a byte order mark, no NaN/Infinity, unique keys,
    no lone surrogate escapes (PostgreSQL and Fabric cannot store them)."""
    if body.startswith(UTF8_BOM):
        raise UnreadableJsonError("the request body starts with a byte order mark; send UTF-8 JSON without one")
    if b"\x00" in body:
        raise UnreadableJsonError("the request body holds NUL bytes, so it is not UTF-8 JSON (UTF-16 or UTF-32?)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableJsonError(f"the request body is not UTF-8 (byte {exc.start}); only UTF-8 JSON is read",
                                  offset=exc.start) from None
    try:
        parsed = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UnreadableJsonError(f"the request body is not valid JSON: {exc.msg} at offset {exc.pos}",
                                  offset=exc.pos) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer beyond Python's digit limit, deep nesting
        raise UnreadableJsonError(f"the request body is not JSON the API reads: {exc}") from None
    try:
        return _checked(parsed, "")
    except RecursionError:
        raise UnreadableJsonError("the request body is nested too deeply") from None


def _checked(node: Any, path: str) -> Any:
    if isinstance(node, _Pairs):
        result: dict[str, Any] = {}
        for key, value in node:
            where = f"{path}.{key}" if path else key
            _check_text(key, where)
            if key in result:
                raise DuplicateJsonKeyError(where)
            result[key] = _checked(value, where)
        return result
    if isinstance(node, list):
        return [_checked(item, f"{path}[{index}]") for index, item in enumerate(node)]
    if isinstance(node, str):
        _check_text(node, path)
    return node


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnreadableJsonError(f"{where or 'the body'} holds a lone surrogate escape, which is not text",
                                  key=where) from None


def authorize_command(role: ApiRole, command_type: CommandType | None) -> None:
    """Refuse a role that may submit no command at all, or not this command (``None``: not known yet)."""
    if not role.includes(LEAST_COMMAND_ROLE):
        raise CommandNotAllowedError(role, LEAST_COMMAND_ROLE, command_type)
    if command_type is not None and not role.includes(needed := COMMANDS[command_type].api_role):
        raise CommandNotAllowedError(role, needed, command_type)


def _command_type_of(document: Any) -> CommandType | None:
    kind = document.get("type") if isinstance(document, dict) else None
    try:
        return CommandType(kind) if isinstance(kind, str) else None
    except ValueError:
        return None  # unknown types are the schema's to refuse (422)


class CommandIntakeRoute(APIRoute):
    """A route whose POST body is a command: role, media type and JSON checked before FastAPI validates it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "POST" not in (self.methods or ()):
            return handler

        async def intake(request: Request) -> Response:
            role = ApiRole(request.scope[ROLE_SCOPE_KEY])  # BearerAuthMiddleware refused requests without one
            authorize_command(role, None)
            require_json_media_type(request.headers.get("content-type"))
            authorize_command(role, _command_type_of(parse_json(await request.body())))
            return await handler(request)  # reads the cached body again and validates it (422)

        return intake
