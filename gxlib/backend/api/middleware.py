"""ASGI middleware of the API: metrics + access log, body size limit, bearer authentication.

Pure ASGI (not BaseHTTPMiddleware) so the request scope is shared with the router, and a rejection happens
before the body is parsed: a bad token gets 401 even when the body is malformed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gxlib.backend.api.problems import problem
from gxlib.backend.metrics import HttpMetrics
from gxlib.backend.settings import ApiRole

ROLE_SCOPE_KEY = "gx.api_role"
READ_TIMEOUT_SCOPE_KEY = "gx.read_timed_out"  # api/server.py sets it when it drops a client as too slow
CALLER_SCOPE_KEY = "gx.api_caller"
CLIENT_CLOSED_REQUEST = 499  # nginx's convention: the client went away before it was answered
REQUEST_TIMEOUT = 408
access_log = logging.getLogger("gxlib.backend.api.access")


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route template (``/api/v1/commands/{command_id}``) a request matches; ``unmatched`` otherwise, so the
    ``endpoint`` label never takes raw paths."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL and hasattr(candidate, "path"):
            return str(candidate.path)
    return "unmatched"


class MetricsMiddleware:
    """Counts and times every request (SPEC §4 http_* metrics) and writes one access-log line per request.

    A client that goes away before it is answered is not a server error and says nothing about the server's
    latency (SPEC §9): it is counted as status 499 (408 when the server dropped it as too slow, see
    ``api/server.py``) and left out of ``http_request_duration_ms``, the latency SLO's histogram."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, service: str,
                 routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.metrics = metrics
        self.service = service
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received = sent = 0
        status = 500
        answered = client_left = False

        async def counting_receive() -> Message:
            nonlocal received, client_left
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            elif message["type"] == "http.disconnect" and not answered:
                client_left = True
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = True
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            endpoint = route_template(self.routes(), scope)
            method = scope["method"]
            elapsed_ms = (time.perf_counter() - started) * 1000
            if client_left:
                status = REQUEST_TIMEOUT if scope.get(READ_TIMEOUT_SCOPE_KEY) else CLIENT_CLOSED_REQUEST
            m = self.metrics
            m.requests.labels(service=self.service, endpoint=endpoint, method=method, status=str(status)).inc()
            if not client_left:
                m.duration_ms.labels(service=self.service, endpoint=endpoint, method=method).observe(elapsed_ms)
            m.request_size.labels(service=self.service, endpoint=endpoint).observe(received)
            m.response_size.labels(service=self.service, endpoint=endpoint).observe(sent)
            access_log.info("request", extra={"method": method, "path": scope["path"], "endpoint": endpoint,
                                              "status": status, "client_left": client_left,
                                              "duration_ms": round(elapsed_ms, 2),
                                              "request_bytes": received, "response_bytes": sent})


class BodyLimitMiddleware:
    """Refuses bodies larger than ``max_bytes`` with 413 before the application reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Built only when needed: a problem response serialises JSON, ~2% of the API's CPU per accepted command.
        await problem(413, f"the request body exceeds the limit of {self.max_bytes} bytes", instance=scope["path"],
                      limit=self.max_bytes)(scope, receive, send)


def caller_of_token(token: str) -> str:
    """The caller a bearer token stands for, as stored with its commands (idempotency keys are per caller): a
    fingerprint, never the token. Tokens are random secrets, so the fingerprint reveals nothing usable."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:24]


class BearerAuthMiddleware:
    """Maps ``Authorization: Bearer <token>`` to a role for every path under ``protected_prefix``; 401 otherwise.
    The role is left in the scope for the endpoints' role checks (403), and the caller (``caller_of_token``) for
    the outbox's per-caller idempotency keys."""

    def __init__(self, app: ASGIApp, *, tokens: dict[str, ApiRole], protected_prefix: str = "/api/") -> None:
        self.app = app
        self.tokens = [(token.encode(), role, caller_of_token(token)) for token, role in tokens.items()]
        self.prefix = protected_prefix

    def identify(self, header: bytes | None) -> tuple[ApiRole, str] | None:
        """The role and caller of the token in an ``Authorization`` header; ``None``: no valid bearer token."""
        if not header:
            return None
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented.strip():
            return None
        presented = presented.strip()
        found = None
        for token, role, caller in self.tokens:  # compare with every token in constant time
            if hmac.compare_digest(token, presented):
                found = (role, caller)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, Any] = dict(scope.get("headers") or [])
        identity = self.identify(headers.get(b"authorization"))
        if identity is None:
            detail = "missing bearer token" if b"authorization" not in headers else "invalid bearer token"
            await problem(401, detail, instance=scope["path"],
                          headers={"WWW-Authenticate": 'Bearer realm="gx-backend"'})(scope, receive, send)
            return
        scope[ROLE_SCOPE_KEY], scope[CALLER_SCOPE_KEY] = identity
        await self.app(scope, receive, send)
