"""Serving the API with uvicorn, bounded against slow clients and too many connections (SPEC §9: "Slow clients
are dropped after a bounded time").

Why a protocol subclass: uvicorn 0.55's h11 protocol bounds only the idle time *between* requests
(``timeout_keep_alive``). From a connection's first byte until its request is complete nothing times out, and a
new connection that sends nothing is not timed at all, so 200 clients trickling headers or bodies held 200
connections for as long as they liked. ``limit_concurrency`` does not help: it answers 503 only once a request's
headers are complete, which a slow client never reaches. :class:`GuardedH11Protocol` adds what is missing:

- a read deadline: a client has ``read_timeout_s`` from connecting (or, on a kept-alive connection, from the first
  byte of its next request) to send the whole request, headers and body. Past it the client gets 408
  problem+json if nothing was answered yet, and the connection is closed. A request the API is still working on
  is not affected: the deadline covers only what the client sends.
- a connection cap: a connection beyond ``max_connections`` open ones is answered 503 problem+json and closed at
  once, so slow clients cannot exhaust file descriptors or memory.
- malformed HTTP gets a 400 problem+json instead of uvicorn's plain text.

Usage::

    serve(create_app(settings), settings, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gxlib.backend.api.middleware import READ_TIMEOUT_SCOPE_KEY
from gxlib.backend.api.problems import PROBLEM_JSON, TITLES
from gxlib.backend.settings import BackendSettings

log = logging.getLogger("gxlib.backend.api.server")
_REQUEST_COMPLETE = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


def problem_bytes(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection, for answers outside the ASGI app."""
    body = json.dumps({"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                       "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request read deadline, a connection cap and problem+json protocol errors.
    ``guarded_protocol(settings)`` makes the class with the settings' bounds."""

    read_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection refused: %d open connections, the limit is %d", len(self.connections) - 1,
                        self.max_connections, extra={"client": self.client})
            transport.write(problem_bytes(503, f"the server holds its limit of {self.max_connections} connections; "
                                               "retry later"))
            transport.close()
            return
        self._arm_read_deadline()  # a client that connects and sends nothing is timed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        state = self.conn.their_state
        if state in _REQUEST_COMPLETE:
            self._disarm_read_deadline()
        elif state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0]):
            self._arm_read_deadline()  # a request has begun: headers or body still on their way

    def send_400_response(self, msg: str) -> None:
        detail = "the request is not valid HTTP/1.1"
        body = json.dumps({"type": "about:blank", "title": TITLES[400], "status": 400, "detail": detail}).encode()
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _arm_read_deadline(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._drop_slow_client)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _drop_slow_client(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self.conn.their_state is h11.SEND_BODY else None  # None: headers incomplete
        log.warning("dropped a client that did not send its request within %.1f s", self.read_timeout_s,
                    extra={"client": self.client, "path": cycle.scope["path"] if cycle else None})
        if cycle is None or not cycle.response_started:
            self.transport.write(problem_bytes(408, f"the request was not complete within {self.read_timeout_s:g} s"))
        if cycle is not None:
            cycle.scope[READ_TIMEOUT_SCOPE_KEY] = True  # type: ignore[literal-required]
            cycle.disconnected = True  # the app's receive() now says http.disconnect; its sends are dropped
            cycle.message_event.set()
        self.transport.close()


def guarded_protocol(settings: BackendSettings) -> type[GuardedH11Protocol]:
    """:class:`GuardedH11Protocol` bound to the settings' read timeout and connection cap (uvicorn instantiates
    the protocol class itself, so the bounds travel as class attributes)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"read_timeout_s": settings.api_read_timeout_s,
                                                              "max_connections": settings.api_max_connections})


def server_config(app: Any, settings: BackendSettings, *, host: str | None = None,
                  port: int | None = None) -> uvicorn.Config:
    """The uvicorn configuration of the API: the guarded h11 protocol, JSON logs left to the caller's logging set-up,
    no uvicorn access log (the API writes its own), a 20 s graceful drain on SIGTERM. The event loop is uvloop (a
    dependency; ``loop="auto"`` falls back to asyncio's own where it cannot be imported): less CPU per request."""
    return uvicorn.Config(app, host=host or settings.api_host, port=port or settings.api_port, loop="auto",
                          http=guarded_protocol(settings), timeout_keep_alive=settings.api_keep_alive_s,
                          log_config=None, access_log=False, timeout_graceful_shutdown=20)


def serve(app: Any, settings: BackendSettings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the API in the foreground until SIGTERM/SIGINT."""
    uvicorn.Server(server_config(app, settings, host=host, port=port)).run()
