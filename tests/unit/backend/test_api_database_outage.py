"""While the database is down the API answers 503 problem+json for commands and queries (SPEC §9), never 500, and
keeps the connection; a statement that is wrong is still a 500."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gxlib.backend.db import make_engine
from gxlib.backend.pgcluster import free_port
from gxlib.backend.settings import BackendSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from gxlib.backend.api import create_app

ADMIN, READER = "admin-token-1", "reader-token-1"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def stopped_database() -> Iterator[Engine]:
    """An engine of a PostgreSQL server that is not running: every connection attempt is refused."""
    engine = make_engine(f"postgresql+psycopg://gx@127.0.0.1:{free_port()}/gx")
    yield engine
    engine.dispose()


@pytest.fixture
def client(stopped_database: Engine) -> Iterator[TestClient]:
    settings = BackendSettings(database_url="sqlite://", api_tokens={ADMIN: "admin", READER: "reader"})
    app = create_app(settings, engine=stopped_database, registry=CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_database_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Database unavailable"
    assert "database is unavailable" in body["detail"] and body["checks"] == {"database": "unreachable"}


def test_a_command_posted_while_the_database_is_down_is_503_with_retry_after(client: TestClient) -> None:
    response = client.post("/api/v1/commands", headers=AUTH, json={
        "type": "MINT", "idempotencyKey": "k-1", "payload": {"accountId": "alice", "amount": 5, "remark": "r"}})
    assert_database_unavailable(response)
    assert "same idempotency key" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/commands/c-1", "/api/v1/commands?idempotencyKey=k-1", "/api/v1/users",
                                  "/api/v1/users/alice", "/api/v1/accounts", "/api/v1/accounts/alice",
                                  "/api/v1/pools", "/api/v1/system/status"])
def test_queries_while_the_database_is_down_are_503_problems(client: TestClient, path: str) -> None:
    assert_database_unavailable(client.get(path, headers=AUTH))


def test_the_refusals_are_counted_as_503_and_the_process_stays_healthy(client: TestClient) -> None:
    for _ in range(3):
        client.get("/api/v1/accounts", headers=AUTH)
    metrics = client.get("/metrics").text
    assert 'http_requests_total{endpoint="/api/v1/accounts",method="GET",service="gx-backend-api",status="503"} 3.0' \
        in metrics
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"] == {"database": "unreachable"}


def test_the_role_is_still_checked_before_the_database_is_needed(client: TestClient) -> None:
    response = client.post("/api/v1/commands", headers={"Authorization": f"Bearer {READER}"}, json={
        "type": "MINT", "idempotencyKey": "k-1", "payload": {"accountId": "alice", "amount": 5, "remark": "r"}})
    assert response.status_code == 403


class _Orig(Exception):
    pass


@pytest.mark.parametrize(("error", "unavailable"), [
    (OperationalError("SELECT 1", {}, _Orig("connection refused")), True),
    (InterfaceError("SELECT 1", {}, _Orig("connection already closed")), True),
    (DBAPIError("SELECT 1", {}, _Orig("server closed the connection"), connection_invalidated=True), True),
    (PoolTimeoutError("QueuePool limit of size 10 overflow 5 reached"), True),
    (IntegrityError("INSERT", {}, _Orig("duplicate key")), False),
    (ProgrammingError("SELECT", {}, _Orig("syntax error")), False),
    (DBAPIError("SELECT", {}, _Orig("invalid byte sequence")), False),
])
def test_only_connection_failures_count_as_the_database_being_unavailable(error: Exception,
                                                                          unavailable: bool) -> None:
    from gxlib.backend.api.problems import database_unavailable

    assert database_unavailable(error) is unavailable
