"""The pipeline benchmark's lean load client: the requests it writes, the answers it understands, and an open-loop
run against a small local HTTP server (real sockets) that counts connections and answers like the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gxlib.bench.http_load import (
    COMMANDS_PATH,
    Endpoint,
    HttpProtocolError,
    LoadResult,
    Response,
    build_post,
    mint_body,
    parse_head,
    post_open_loop,
    read_response,
)

ENDPOINT = Endpoint("127.0.0.1", 8000, "127.0.0.1:8000")


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def read(data: bytes) -> Response:
    async def parse() -> Response:
        return await read_response(reader_of(data))

    return asyncio.run(parse())


def test_endpoint_of_the_api_url_keeps_host_and_port_for_the_host_header() -> None:
    assert Endpoint.of("http://127.0.0.1:36000") == Endpoint("127.0.0.1", 36000, "127.0.0.1:36000")
    assert Endpoint.of("http://api.local") == Endpoint("api.local", 80, "api.local")


@pytest.mark.parametrize("url", ["https://127.0.0.1:8000", "127.0.0.1:8000", "http://"])
def test_endpoint_refuses_what_it_cannot_speak_to(url: str) -> None:
    with pytest.raises(ValueError, match="plain http"):
        Endpoint.of(url)


def test_a_mint_body_credits_a_fresh_account_named_by_its_idempotency_key() -> None:
    assert json.loads(mint_body("pl-x-1")) == {"type": "MINT", "idempotencyKey": "pl-x-1",
                                                "payload": {"accountId": "pl-x-1", "amount": 1, "remark": "pl-x-1"}}


def test_a_post_is_one_keep_alive_http11_request_with_the_token_and_exact_length() -> None:
    body = mint_body("pl-x-1")
    request = build_post(ENDPOINT, COMMANDS_PATH, "s3cret", body)
    head, _, sent_body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/v1/commands HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers == {"Host": "127.0.0.1:8000", "Authorization": "Bearer s3cret",
                       "Content-Type": "application/json", "Content-Length": str(len(body)),
                       "Connection": "keep-alive"}
    assert sent_body == body


def test_an_accepted_answer_with_content_length_gives_its_command_id() -> None:
    body = b'{"commandId":"c-1","status":"PENDING"}'
    response = read(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert (response.status, response.keep_alive, response.command_id()) == (202, True, "c-1")


def test_a_chunked_answer_is_reassembled() -> None:
    response = read(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\n{\"com\r\n13;ext=1\r\nmandId\":\"c-2\"}     \r\n0\r\n\r\n")
    assert response.command_id() == "c-2"


def test_connection_close_and_a_body_without_length_end_keep_alive() -> None:
    assert read(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}").keep_alive \
        is False
    unframed = read(b"HTTP/1.1 200 OK\r\n\r\n{\"commandId\":\"c-3\"}")
    assert (unframed.keep_alive, unframed.command_id()) == (False, "c-3")


def test_an_answer_without_a_command_id_has_none() -> None:
    assert read(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n[]").command_id() is None
    assert read(b"HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nnot").command_id() is None
    assert read(b"HTTP/1.1 204 No Content\r\n\r\n").body == b""


@pytest.mark.parametrize("head", [b"SMTP ready", b"HTTP/1.1 abc Nope", b"HTTP/1.1 200 OK\r\nno colon here"])
def test_what_is_not_http11_is_refused_by_name(head: bytes) -> None:
    with pytest.raises(HttpProtocolError):
        parse_head(head)


# --- an open-loop run against a real socket --------------------------------------------------------------------
Answer = Callable[[int, bytes], tuple[int, bytes, bool]]  # (request number, body) → status, body, close


@asynccontextmanager
async def api_server(answer: Answer, *, keep_alive_s: float | None = None
                     ) -> AsyncIterator[tuple[Endpoint, dict[str, int]]]:
    """A tiny HTTP/1.1 server on a free port; ``seen`` counts connections and requests. With ``keep_alive_s`` it
    closes a connection idle that long between requests, as uvicorn does."""
    seen = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), keep_alive_s)
                except (asyncio.IncompleteReadError, TimeoutError):
                    return
                _, headers = parse_head(b"HTTP/1.1 200 X" + head[head.index(b"\r\n"):-4])
                body = await reader.readexactly(int(headers["content-length"]))
                seen["requests"] += 1
                status, payload, close = answer(seen["requests"], body)
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                             f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n".encode()
                             + payload)
                await writer.drain()
                if close:
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Endpoint("127.0.0.1", port, f"127.0.0.1:{port}"), seen
    finally:
        server.close()
        await server.wait_closed()


def requests_for(endpoint: Endpoint, count: int) -> list[bytes]:
    return [build_post(endpoint, COMMANDS_PATH, "t", mint_body(f"r-{n}")) for n in range(count)]


def accept_all(_n: int, body: bytes) -> tuple[int, bytes, bool]:
    remark = json.loads(body)["idempotencyKey"]
    return 202, json.dumps({"commandId": f"id-{remark}"}).encode(), False


def test_every_command_is_accepted_with_its_own_id_over_reused_connections() -> None:
    async def scenario() -> tuple[LoadResult, dict[str, int]]:
        async with api_server(accept_all) as (endpoint, seen):
            result = await post_open_loop(endpoint, requests_for(endpoint, 40), rate=10_000, connections=4)
        return result, seen

    result, seen = asyncio.run(scenario())
    assert result.accepted == {n: f"id-r-{n}" for n in range(40)}
    assert result.refused == 0 and result.posted == 40
    assert seen == {"connections": 4, "requests": 40}  # keep-alive: one connection per worker, never more
    assert result.client_cpu_s_per_command is not None


def test_refusals_are_counted_and_a_closed_connection_is_reopened() -> None:
    def answer(n: int, body: bytes) -> tuple[int, bytes, bool]:
        if n % 3 == 0:
            return 429, b'{"detail":"slow down"}', True  # refused, and the server hangs up
        return accept_all(n, body)

    async def scenario() -> tuple[LoadResult, dict[str, int]]:
        async with api_server(answer) as (endpoint, seen):
            result = await post_open_loop(endpoint, requests_for(endpoint, 30), rate=10_000, connections=1)
        return result, seen

    result, seen = asyncio.run(scenario())
    assert len(result.accepted) == 20 and result.refused == 10
    assert seen["requests"] == 30 and seen["connections"] == 10  # the 30th closes the last one


def test_a_connection_the_server_closed_while_it_was_idle_is_reopened_not_counted_as_a_refusal() -> None:
    # 6 commands at 20/s over 2 connections: each is idle 0.1 s between its commands, and the server closes a
    # connection idle 0.03 s (at the bench's lowest rate, 10/s over 64 connections, each was idle 6.4 s against
    # the API's 5 s keep-alive: every command after the 64th was refused).
    async def scenario() -> tuple[LoadResult, dict[str, int]]:
        async with api_server(accept_all, keep_alive_s=0.03) as (endpoint, seen):
            result = await post_open_loop(endpoint, requests_for(endpoint, 6), rate=20, connections=2)
        return result, seen

    result, seen = asyncio.run(scenario())
    assert result.accepted == {n: f"id-r-{n}" for n in range(6)} and result.refused == 0
    assert seen == {"connections": 6, "requests": 6}


def test_a_server_that_is_not_there_refuses_every_command_instead_of_failing_the_run() -> None:
    async def scenario() -> LoadResult:
        async with api_server(accept_all) as (endpoint, _seen):
            pass  # closed again: nothing listens on the port now
        return await post_open_loop(endpoint, requests_for(endpoint, 5), rate=10_000, connections=2, timeout_s=5)

    result = asyncio.run(scenario())
    assert result.accepted == {} and result.refused == 5


@pytest.mark.parametrize(("rate", "connections"), [(0, 1), (-1, 1), (10, 0)])
def test_a_run_needs_a_positive_rate_and_a_connection(rate: float, connections: int) -> None:
    with pytest.raises(ValueError):
        asyncio.run(post_open_loop(ENDPOINT, [], rate=rate, connections=connections))
