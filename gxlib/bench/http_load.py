"""The pipeline benchmark's own load generator: a lean HTTP/1.1 client over raw asyncio streams.

The benchmark must not be what saturates the machine, so posting a command costs as little CPU as possible: every
request is serialised to bytes before the clock starts, each of a fixed number of workers keeps one keep-alive
connection and posts its commands on it back to back (HTTP/1.1, no pipelining), and a response is parsed only as
far as its status line, ``Content-Length`` (or chunked framing) and body. Plain HTTP only: the local API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gxlib.errors import GxError

COMMANDS_PATH = "/api/v1/commands"
MAX_HEADER_BYTES = 64 * 1024


class HttpProtocolError(GxError):
    """The server's answer is not HTTP/1.1 this client understands."""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and what to send as ``Host``."""

    host: str
    port: int
    host_header: str

    @classmethod
    def of(cls, base_url: str) -> Endpoint:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the load client speaks plain http to a host, not {base_url!r}")
        port = parts.port or 80
        return cls(parts.hostname, port, parts.netloc)


def mint_body(remark: str) -> bytes:
    """The JSON body of one MINT command crediting the fresh account ``remark`` (its idempotency key too)."""
    return json.dumps({"type": "MINT", "idempotencyKey": remark,
                       "payload": {"accountId": remark, "amount": 1, "remark": remark}},
                      separators=(",", ":")).encode()


def build_post(endpoint: Endpoint, path: str, token: str, body: bytes) -> bytes:
    """One complete keep-alive ``POST`` request: head and body, ready to write."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {endpoint.host_header}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode("latin-1") + body


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    keep_alive: bool

    def command_id(self) -> str | None:
        """The ``commandId`` of an accepted command's answer, ``None`` if the body carries none."""
        try:
            found = json.loads(self.body).get("commandId")
        except (ValueError, AttributeError):
            return None
        return found if isinstance(found, str) else None


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-cased) of a response head, up to and without the blank line."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
        raise HttpProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpProtocolError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(status_line[1]), headers


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response: the head, then a ``Content-Length`` or chunked body (no body for 1xx/204/304)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HttpProtocolError("response head too long") from exc
    status, headers = parse_head(head[:-4])
    keep_alive = headers.get("connection", "").lower() != "close"
    if status < 200 or status in (204, 304):
        return Response(status, b"", keep_alive)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return Response(status, b"".join(parts), keep_alive)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is None:  # the body runs to the end of the connection
        return Response(status, await reader.read(), False)
    return Response(status, await reader.readexactly(int(length)), keep_alive)


class Connection:
    """One keep-alive connection, opened on first use and again after the server closed it (after an answer with
    ``Connection: close``, or while it was idle)."""

    def __init__(self, endpoint: Endpoint, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, request: bytes) -> Response:
        if self._streams is not None and self._streams[0].at_eof():
            # The server closed it while it was idle (its keep-alive timeout, uvicorn's default 5 s): nothing was
            # sent on it since, so this is no refusal; open another.
            self.close()
        if self._streams is None:
            self._streams = await asyncio.wait_for(
                asyncio.open_connection(self.endpoint.host, self.endpoint.port, limit=MAX_HEADER_BYTES),
                self.timeout_s)
        reader, writer = self._streams
        try:
            writer.write(request)
            response = await asyncio.wait_for(read_response(reader), self.timeout_s)
        except BaseException:
            self.close()
            raise
        if not response.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass(frozen=True)
class LoadResult:
    """What an open-loop run posted: each accepted command's ID by its index, how many failed, how long it took,
    and the CPU seconds the posting itself cost (the event loop's thread: requests, responses, scheduling)."""

    accepted: dict[int, str]
    refused: int
    seconds: float
    client_cpu_s: float

    @property
    def posted(self) -> int:
        return len(self.accepted) + self.refused

    @property
    def client_cpu_s_per_command(self) -> float | None:
        return self.client_cpu_s / self.posted if self.posted else None


async def post_open_loop(endpoint: Endpoint, requests: Sequence[bytes], rate: float, *, connections: int = 64,
                         timeout_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> LoadResult:
    """Send ``requests[n]`` at ``started + n / rate`` (open loop) over ``connections`` keep-alive connections.

    A command is accepted on 202 with a ``commandId``; any other answer, a timeout or a broken connection counts
    as refused. Falls behind the schedule only when every connection is busy (the server is the bottleneck).
    """
    if rate <= 0 or connections < 1:
        raise ValueError("rate must be positive and connections at least 1")
    accepted: dict[int, str] = {}
    refused = 0
    next_index = 0
    pool = [Connection(endpoint, timeout_s) for _ in range(min(connections, max(1, len(requests))))]
    cpu_before = time.thread_time()
    started = clock()

    async def worker(connection: Connection) -> None:
        nonlocal next_index, refused
        while next_index < len(requests):
            n = next_index
            next_index += 1
            delay = started + n / rate - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await connection.send(requests[n])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpProtocolError, ValueError):
                refused += 1
                continue
            command_id = response.command_id() if response.status == 202 else None
            if command_id is None:
                refused += 1
            else:
                accepted[n] = command_id

    try:
        await asyncio.gather(*(worker(c) for c in pool))
    finally:
        for connection in pool:
            connection.close()
    return LoadResult(accepted, refused, clock() - started, time.thread_time() - cpu_before)
