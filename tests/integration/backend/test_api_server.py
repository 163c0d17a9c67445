"""The API under a real uvicorn server (``gxlib.backend.api.server``) with raw socket clients on loopback, as
SPEC §9 asks: a client that disconnects is not a server error and does not move the latency SLO; slow clients are
dropped after a bounded time while normal requests are still served; connections are capped; protocol errors are
problem+json. Bounds are generous (3x the configured timeout); no test asserts a duration tightly."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from gxlib.backend.api import create_app
from gxlib.backend.api.server import server_config
from gxlib.backend.db import make_engine, migrate
from gxlib.backend.pgcluster import free_port
from gxlib.backend.settings import BackendSettings

ADMIN = "server-test-admin"
SERVICE = "gx-api-server-test"
POST_LABELS = {"service": SERVICE, "endpoint": "/api/v1/commands", "method": "POST"}


@dataclass
class RunningApi:
    base: str
    port: int
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def running_api(tmp_path: Path, **overrides: object) -> Iterator[RunningApi]:
    settings = BackendSettings(database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", api_tokens={ADMIN: "admin"},
                               service_name=SERVICE, **overrides)  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    migrate(engine)
    registry = CollectorRegistry()
    port = free_port()
    server = uvicorn.Server(server_config(create_app(settings, engine=engine, registry=registry), settings,
                                          host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", port, registry)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.dispose()


def command(key: str) -> bytes:
    return json.dumps({"type": "MINT", "idempotencyKey": key,
                       "payload": {"accountId": "alice", "amount": 5, "remark": "r"}}).encode()


def post_head(content_length: int) -> bytes:
    return (f"POST /api/v1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n").encode()


def wait_until(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# --- a client that disconnects -------------------------------------------------------------------------------
def test_a_client_that_disconnects_mid_request_is_499_and_leaves_the_latency_histogram_alone(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        body = command("never-finished")
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
                sock.sendall(post_head(len(body)) + body[:20])
                time.sleep(0.3)  # the API has the headers and waits for the rest of the body
        wait_until(lambda: api.sample("http_requests_total", **POST_LABELS, status="499") == 5, 15,
                   "the five disconnects were not counted as 499")
        assert api.sample("http_requests_total", **POST_LABELS, status="500") == 0
        assert api.sample("http_request_duration_ms_count", **POST_LABELS) == 0
        # A request that is answered still counts, with its duration.
        response = httpx.post(f"{api.base}/api/v1/commands", content=command("finished"), timeout=10,
                              headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
        assert response.status_code == 202
        assert api.sample("http_request_duration_ms_count", **POST_LABELS) == 1
        assert api.sample("http_requests_total", **POST_LABELS, status="202") == 1


# --- slow clients ---------------------------------------------------------------------------------------------
@dataclass
class SlowClient:
    sock: socket.socket
    opened: float
    received: bytes = b""
    closed_after_s: float | None = None
    trickle: bytes = field(default=b"")


def _open_slow_clients(port: int, count: int, first_bytes: bytes, trickle: bytes) -> list[SlowClient]:
    clients = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(first_bytes)
        sock.setblocking(False)
        clients.append(SlowClient(sock, time.monotonic(), trickle=trickle))
    return clients


def _trickle_until_dropped(clients: list[SlowClient], give_up_after_s: float) -> None:
    """Send one more byte every 0.25 s to every client the server has not closed; note when each is closed."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    deadline = time.monotonic() + give_up_after_s
    next_trickle = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        if time.monotonic() >= next_trickle:
            for key in list(selector.get_map().values()):
                client = key.data
                try:
                    client.sock.send(client.trickle)
                except BlockingIOError:
                    pass
                except OSError:
                    _closed(selector, client)
            next_trickle = time.monotonic() + 0.25
        for key, _ in selector.select(timeout=0.05):
            client = key.data
            try:
                chunk = client.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            client.received += chunk
            if not chunk:
                _closed(selector, client)
    for key in list(selector.get_map().values()):
        selector.unregister(key.fileobj)
    selector.close()


def _closed(selector: selectors.BaseSelector, client: SlowClient) -> None:
    client.closed_after_s = time.monotonic() - client.opened
    selector.unregister(client.sock)
    client.sock.close()


def test_slow_clients_are_dropped_within_the_bound_while_a_normal_request_is_served(tmp_path: Path) -> None:
    timeout_s = 2.0
    with running_api(tmp_path, api_read_timeout_s=timeout_s, api_max_connections=200) as api:
        body = command("slow-body")
        slow_headers = _open_slow_clients(api.port, 60, b"POST /api/v1/commands HTTP/1.1\r\nHost: x\r\n", b"X")
        slow_bodies = _open_slow_clients(api.port, 40, post_head(len(body)) + body[:5], b" ")
        silent = _open_slow_clients(api.port, 20, b"", b"")
        # A normal client during the load is served.
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        served = {}

        def normal_requests() -> None:
            served["health"] = httpx.get(f"{api.base}/healthz", timeout=10).status_code
            served["command"] = httpx.post(f"{api.base}/api/v1/commands", content=command("normal"),
                                           headers=headers, timeout=10).status_code

        normal = threading.Thread(target=normal_requests)
        normal.start()
        everyone = slow_headers + slow_bodies + silent
        _trickle_until_dropped(everyone, give_up_after_s=3 * timeout_s + 2)
        normal.join(timeout=30)

    assert served == {"health": 200, "command": 202}
    kept_too_long = [c.closed_after_s for c in everyone if c.closed_after_s is None or c.closed_after_s > 3 * timeout_s]
    assert kept_too_long == [], f"{len(kept_too_long)} slow clients were held beyond {3 * timeout_s} s"
    for client in everyone:
        assert client.received.startswith(b"HTTP/1.1 408 "), client.received[:200]
        assert b"application/problem+json" in client.received
    # The slow bodies reached the API: counted as 408, not as server errors, and not in the latency histogram.
    assert api.sample("http_requests_total", **POST_LABELS, status="408") == len(slow_bodies)
    assert api.sample("http_requests_total", **POST_LABELS, status="500") == 0
    assert api.sample("http_request_duration_ms_count", **POST_LABELS) == 1  # the normal command only


def test_connections_beyond_the_cap_are_refused_with_503_until_slots_free_up(tmp_path: Path) -> None:
    with running_api(tmp_path, api_read_timeout_s=2.0, api_max_connections=10) as api:
        idle = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(10)]
        try:
            time.sleep(0.3)  # the server has accepted all ten
            refused = httpx.get(f"{api.base}/healthz", timeout=10)
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert "10 connections" in refused.json()["detail"]
            # The idle connections are dropped by the read deadline; then the server serves again.
            for sock in idle:
                sock.settimeout(3 * 2.0)
                assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
        finally:
            for sock in idle:
                sock.close()
        wait_until(lambda: _status(f"{api.base}/healthz") == 200, 10, "the server did not serve after the drop")


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def _answer(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered and closed before all was read
            sock.sendall(raw)
        response = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                response += chunk
    return response


@pytest.mark.parametrize("raw", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"])
def test_malformed_http_gets_a_400_problem(tmp_path: Path, raw: bytes) -> None:
    with running_api(tmp_path) as api:
        response = _answer(api.port, raw)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 400


@pytest.mark.parametrize("where", ["header", "url"])
def test_a_request_head_over_the_bound_gets_431_and_never_reaches_the_app(tmp_path: Path, where: str) -> None:
    with running_api(tmp_path, api_max_head_bytes=4096) as api:
        huge = "a" * 8192
        head = (f"POST /api/v1/commands?{huge} HTTP/1.1\r\nHost: x\r\n" if where == "url" else
                f"POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nX-Padding: {huge}\r\n")
        body = command(f"too-large-{where}")
        raw = (head + f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        response = _answer(api.port, raw)
        head_bytes, _, problem = response.partition(b"\r\n\r\n")
        assert head_bytes.startswith(b"HTTP/1.1 431 ") and b"application/problem+json" in head_bytes
        assert json.loads(problem)["status"] == 431 and "4096 bytes" in json.loads(problem)["detail"]
        # The app never saw it: nothing was enqueued or counted; a request just under the bound is served.
        assert api.sample("http_requests_total", **POST_LABELS, status="202") == 0
        fits = httpx.post(f"{api.base}/api/v1/commands", content=command("fits"), timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json",
                                   "X-Padding": "a" * 3000})
        assert fits.status_code == 202
        assert api.sample("http_requests_total", **POST_LABELS, status="202") == 1


def test_a_websocket_upgrade_is_not_switched_away_from_the_guarded_protocol(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        raw = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
    assert not answer.startswith(b"HTTP/1.1 101 "), answer[:200]
    assert answer.startswith(b"HTTP/1.1 200 ")
