"""The HTTP API: commands with idempotency, every SPEC §9 bad input a 4xx problem+json that writes nothing,
roles, read models, health, metrics and OpenAPI."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gxlib.backend.models import OutboxCommand
from gxlib.backend.projector import Projector
from gxlib.backend.settings import BackendSettings
from tests.unit.backend.chaincode_events import RecordedHistory

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from gxlib.backend.api import create_app

ADMIN, OPERATOR, READER = "admin-token-1", "operator-token-1", "reader-token-1"
TOKENS = {ADMIN: "admin", OPERATOR: "operator", READER: "reader"}
MAX_BODY = 4096


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(engine: Engine, registry: CollectorRegistry) -> Iterator[TestClient]:
    settings = BackendSettings(database_url="sqlite://", api_tokens=TOKENS, max_body_bytes=MAX_BODY,
                               service_name="gx-api-test")
    with TestClient(create_app(settings, engine=engine, registry=registry)) as c:
        yield c


def rows(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxCommand)) or 0)


def mint(key: str = "k-1", amount: Any = 500, **payload: Any) -> dict[str, Any]:
    return {"type": "MINT", "idempotencyKey": key,
            "payload": {"accountId": "alice", "amount": amount, "remark": "airdrop", **payload}}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and "detail" in body
    return dict(body)


def test_a_command_is_accepted_and_can_be_followed(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/v1/commands", json=mint(), headers=auth(ADMIN))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING" and body["duplicate"] is False
    assert response.headers["location"] == f"/api/v1/commands/{body['commandId']}"
    view = client.get(response.headers["location"], headers=auth(READER)).json()
    assert view["type"] == "MINT" and view["payload"] == mint()["payload"] and view["attempts"] == 0
    assert rows(engine) == 1


def test_a_repeated_idempotency_key_returns_the_original_command_and_no_second_row(client: TestClient,
                                                                                    engine: Engine) -> None:
    first = client.post("/api/v1/commands", json=mint(), headers=auth(ADMIN)).json()
    again = client.post("/api/v1/commands", json=mint(), headers=auth(ADMIN))
    assert again.status_code == 202
    assert again.json()["commandId"] == first["commandId"] and again.json()["duplicate"] is True
    assert rows(engine) == 1


def test_a_reused_key_with_another_payload_is_a_conflict_naming_the_original(client: TestClient,
                                                                              engine: Engine) -> None:
    first = client.post("/api/v1/commands", json=mint(), headers=auth(ADMIN)).json()
    body = assert_problem(client.post("/api/v1/commands", json=mint(amount=7), headers=auth(ADMIN)), 409)
    assert body["commandId"] == first["commandId"]
    assert rows(engine) == 1


def test_the_largest_uint64_amount_is_accepted(client: TestClient) -> None:
    response = client.post("/api/v1/commands", json=mint(amount=2**64 - 1), headers=auth(ADMIN))
    assert response.status_code == 202
    view = client.get(response.headers["location"], headers=auth(ADMIN)).json()
    assert view["payload"]["amount"] == 2**64 - 1


BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("malformed JSON", b'{"type": "MINT", ', 400),
    ("not an object", b"[1, 2]", 422),
    ("unknown type", json.dumps({**mint(), "type": "BURN"}).encode(), 422),
    ("missing type", json.dumps({"payload": mint()["payload"], "idempotencyKey": "k"}).encode(), 422),
    ("missing key", json.dumps({"type": "MINT", "payload": mint()["payload"]}).encode(), 422),
    ("empty key", json.dumps(mint(key="")).encode(), 422),
    ("missing field", json.dumps({**mint(), "payload": {"accountId": "a", "amount": 5}}).encode(), 422),
    ("ill-typed amount", json.dumps(mint(amount="500")).encode(), 422),
    ("float amount", json.dumps(mint(amount=5.5)).encode(), 422),
    ("boolean amount", json.dumps(mint(amount=True)).encode(), 422),
    ("zero amount", json.dumps(mint(amount=0)).encode(), 422),
    ("negative amount", json.dumps(mint(amount=-1)).encode(), 422),
    ("amount beyond uint64", json.dumps(mint(amount=2**64)).encode(), 422),
    ("empty account ID", json.dumps(mint(accountId="")).encode(), 422),
    ("blank remark", json.dumps(mint(remark="   ")).encode(), 422),
    ("NUL in remark", json.dumps(mint(remark="a\x00b")).encode(), 422),
    ("unknown field", json.dumps(mint(extra=1)).encode(), 422),
    ("transfer to itself", json.dumps({"type": "TRANSFER", "idempotencyKey": "t", "payload": {
        "fromId": "a", "toId": "a", "amount": 1, "remark": ""}}).encode(), 422),
    ("bad country code", json.dumps({"type": "CREATE_USER", "idempotencyKey": "u", "payload": {
        "userId": "u1", "countryCode": "usa", "displayName": "U"}}).encode(), 422),
    ("payload of another type", json.dumps({"type": "DISTRIBUTE_GENESIS", "idempotencyKey": "d",
                                            "payload": mint()["payload"]}).encode(), 422),
    ("oversized body", json.dumps(mint(remark="x" * MAX_BODY)).encode(), 413),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_BODIES, ids=[c for c, _, _ in BAD_BODIES])
def test_bad_input_is_a_4xx_problem_and_reaches_no_outbox(client: TestClient, engine: Engine, case: str,
                                                          body: bytes, status: int) -> None:
    response = client.post("/api/v1/commands", content=body,
                           headers={**auth(ADMIN), "Content-Type": "application/json"})
    assert_problem(response, status)
    assert rows(engine) == 0, case


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "Bearer ", ADMIN])
def test_a_bad_or_missing_token_is_401_even_with_a_malformed_body(client: TestClient, engine: Engine,
                                                                  header: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    response = client.post("/api/v1/commands", content=b"{not json", headers=headers)
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in body["detail"]
    assert rows(engine) == 0


@pytest.mark.parametrize("kind", ["BOOTSTRAP_SYSTEM", "INITIALIZE_COUNTRY_DATA", "MINT"])
def test_admin_commands_need_the_admin_role(client: TestClient, engine: Engine, kind: str) -> None:
    payloads = {"BOOTSTRAP_SYSTEM": {}, "INITIALIZE_COUNTRY_DATA": {"countries": [{"code": "US"}]},
                "MINT": mint()["payload"]}
    command = {"type": kind, "payload": payloads[kind], "idempotencyKey": f"admin-{kind}"}
    for token in (OPERATOR, READER):
        assert_problem(client.post("/api/v1/commands", json=command, headers=auth(token)), 403)
    assert rows(engine) == 0
    assert client.post("/api/v1/commands", json=command, headers=auth(ADMIN)).status_code == 202


def test_service_commands_need_the_operator_role(client: TestClient, engine: Engine) -> None:
    command = {"type": "CREATE_USER", "idempotencyKey": "u-1",
               "payload": {"userId": "alice", "countryCode": "US", "displayName": "Alice"}}
    assert_problem(client.post("/api/v1/commands", json=command, headers=auth(READER)), 403)
    assert client.post("/api/v1/commands", json=command, headers=auth(OPERATOR)).status_code == 202
    assert rows(engine) == 1


def test_unknown_command_id_and_unknown_path_are_404_problems(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/commands/no-such-id", headers=auth(READER)), 404)
    assert_problem(client.get("/api/v1/nothing-here", headers=auth(READER)), 404)
    assert_problem(client.delete("/api/v1/commands/x", headers=auth(ADMIN)), 405)


@pytest.mark.parametrize("raw_id", ["a%00b", "%00", "a%0Ab", "%E2%80%AEdi", "%C0%80", "a%20b"])
def test_a_command_id_that_cannot_exist_is_a_404_problem_on_sqlite_and_postgresql(client: TestClient,
                                                                                  raw_id: str) -> None:
    # NUL reached psycopg ("PostgreSQL text fields cannot contain NUL") and answered 500 on PostgreSQL.
    body = assert_problem(client.get(f"/api/v1/commands/{raw_id}", headers=auth(READER)), 404)
    assert "does not exist" in body["detail"]


def test_read_models_are_served(client: TestClient, engine: Engine, recorded_history: RecordedHistory) -> None:
    projector = Projector(engine)
    for event in recorded_history.events:
        projector.apply(event)
    h = auth(READER)
    users = client.get("/api/v1/users", headers=h).json()
    assert [u["userId"] for u in users] == ["alice", "bob"]
    alice = client.get("/api/v1/users/alice", headers=h).json()
    assert alice["genesisDistributed"] is True and alice["countryCode"] == "US"
    account = client.get("/api/v1/accounts/bob", headers=h).json()
    assert account["balance"] == recorded_history.balance("bob")
    assert account["balanceCoins"] == account["balance"] // 100_000_000
    assert len(client.get("/api/v1/accounts?limit=2", headers=h).json()) == 2
    pools = {p["poolId"]: p for p in client.get("/api/v1/pools", headers=h).json()}
    assert pools["SYSTEM_LOAN_POOL"]["balance"] == 100_000_000 * 100_000_000
    status = client.get("/api/v1/system/status", headers=h).json()
    assert status["bootstrapped"] is True and status["userCount"] == 2
    assert status["checkpointBlock"] == recorded_history.events[-1].block_number
    assert_problem(client.get("/api/v1/users/nobody", headers=h), 404)
    assert_problem(client.get("/api/v1/accounts?limit=0", headers=h), 422)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_readiness_fails_with_a_problem_when_the_database_is_unreachable(tmp_path: Any) -> None:
    from gxlib.backend.db import make_engine

    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    settings = BackendSettings(database_url="sqlite://", api_tokens=TOKENS)
    with TestClient(create_app(settings, engine=dead, registry=CollectorRegistry())) as c:
        body = assert_problem(c.get("/readyz"), 503)
    assert body["checks"] == {"database": "unreachable"}
    dead.dispose()


def test_metrics_use_catalog_names_with_route_template_labels(client: TestClient,
                                                             registry: CollectorRegistry) -> None:
    response = client.post("/api/v1/commands", json=mint(), headers=auth(ADMIN))
    client.get(f"/api/v1/commands/{response.json()['commandId']}", headers=auth(ADMIN))
    client.get("/api/v1/commands/whatever")  # 401
    text = client.get("/metrics").text
    labels = {"service": "gx-api-test", "endpoint": "/api/v1/commands/{command_id}", "method": "GET"}
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "200"}) == 1
    assert registry.get_sample_value("http_requests_total", {**labels, "status": "401"}) == 1
    assert registry.get_sample_value("http_request_duration_ms_count", labels) == 2
    assert registry.get_sample_value("http_request_size_bytes_count",
                                     {"service": "gx-api-test", "endpoint": "/api/v1/commands"}) == 1
    assert registry.get_sample_value("db_pool_connections_max", {}) is not None
    assert "db_pool_connections_in_use" in text and "process_cpu_seconds_total" in text


def test_openapi_is_published_with_every_command_and_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("BootstrapSystemCommand", "InitializeCountryDataCommand", "MintCommand", "CreateUserCommand",
                 "DistributeGenesisCommand", "TransferCommand", "SubmitProposalCommand"):
        assert name in schemas
    assert schemas["MintPayload"]["properties"]["amount"]["maximum"] == 2**64 - 1
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/v1/commands" in spec["paths"] and "/readyz" in spec["paths"]
