"""R4: the API fuzzed from its own OpenAPI schema with schemathesis (valid and invalid requests for every
operation), on SQLite and on PostgreSQL: never a 5xx, every rejection problem+json, and nothing but a 202
writes to the outbox. Then SPEC §9's bad inputs one by one: each a 4xx, nothing written."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from schemathesis import GenerationMode
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gxlib.backend.api import create_app
from gxlib.backend.models import DeadLetter, OutboxCommand
from gxlib.backend.settings import BackendSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ADMIN, READER = "schemathesis-admin", "schemathesis-reader"
MAX_BODY = 4096
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def rows(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(OutboxCommand)) or 0) + int(
            session.scalar(select(func.count()).select_from(DeadLetter)) or 0)


def _app(engine: Engine) -> Any:
    settings_ = BackendSettings(database_url="sqlite://", api_tokens={ADMIN: "admin", READER: "reader"},
                                max_body_bytes=MAX_BODY)
    return create_app(settings_, engine=engine, registry=CollectorRegistry())


def _content_type(response: Any) -> str:
    value = response.headers.get("content-type", "")
    return str(value[0] if isinstance(value, list) else value)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_fuzzed_requests_from_the_openapi_schema_never_get_a_5xx_and_only_a_202_writes(
        engine: Engine, mode: GenerationMode) -> None:
    # Schemathesis' strategies driven by Hypothesis directly (its pytest plugin's lazy fixtures do not work with
    # the pytest in use): every operation of the published schema, valid (positive) or invalid (negative) data.
    schema = schemathesis.openapi.from_asgi("/openapi.json", _app(engine))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/commands", "/api/v1/commands/{command_id}"}
    cases = st.one_of(*(op.as_strategy(generation_mode=mode) for op in operations))
    seen: Counter[int] = Counter()

    @given(case=cases)
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        before = rows(engine)
        headers = dict(case.headers or {})
        headers.setdefault("Authorization", AUTH["Authorization"])
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert _content_type(response).startswith("application/problem+json"), (case.path, response.text)
        accepted_new = response.status_code == 202 and not response.json().get("duplicate", True)
        assert rows(engine) == before + (1 if accepted_new else 0), (response.status_code, response.text[:300])

    check()
    assert sum(seen.values()) >= 100, seen
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= status < 500 for status in seen), seen


GOOD_MINT = {"type": "MINT", "payload": {"accountId": "acct-1", "amount": 5, "remark": "r"}, "idempotencyKey": "k-1"}


def _mint(**payload: Any) -> dict[str, Any]:
    return {**GOOD_MINT, "payload": {**GOOD_MINT["payload"], **payload}}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD_MINT.items() if k != key}


# SPEC §9 "API": (what, body, headers) — each must be refused with a 4xx problem and write nothing.
BAD_INPUTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed JSON", b'{"type": "MINT", "payload": {', AUTH),
    ("not an object", b"[1, 2, 3]", AUTH),
    ("unknown command type", json.dumps({**GOOD_MINT, "type": "BURN"}).encode(), AUTH),
    ("missing type", json.dumps(_without("type")).encode(), AUTH),
    ("missing payload", json.dumps(_without("payload")).encode(), AUTH),
    ("missing idempotency key", json.dumps(_without("idempotencyKey")).encode(), AUTH),
    ("missing amount", json.dumps({**GOOD_MINT, "payload": {"accountId": "a", "remark": "r"}}).encode(), AUTH),
    ("amount as a string", json.dumps(_mint(amount="5")).encode(), AUTH),
    ("amount as a float", json.dumps(_mint(amount=5.5)).encode(), AUTH),
    ("amount as a boolean", json.dumps(_mint(amount=True)).encode(), AUTH),
    ("amount zero", json.dumps(_mint(amount=0)).encode(), AUTH),
    ("amount negative", json.dumps(_mint(amount=-1)).encode(), AUTH),
    ("amount beyond uint64", json.dumps(_mint(amount=2**64)).encode(), AUTH),
    ("empty account ID", json.dumps(_mint(accountId="")).encode(), AUTH),
    ("account ID with whitespace", json.dumps(_mint(accountId="a b")).encode(), AUTH),
    ("unknown payload field", json.dumps(_mint(extra=1)).encode(), AUTH),
    ("oversized body", json.dumps(_mint(remark="x" * (MAX_BODY + 10))).encode(), AUTH),
    ("no token", json.dumps(GOOD_MINT).encode(), {}),
    ("bad token", json.dumps(GOOD_MINT).encode(), {"Authorization": "Bearer not-a-token"}),
    ("not a bearer scheme", json.dumps(GOOD_MINT).encode(), {"Authorization": f"Basic {ADMIN}"}),
    ("reader token for an admin command", json.dumps(GOOD_MINT).encode(), {"Authorization": f"Bearer {READER}"}),
    ("same transfer accounts", json.dumps({"type": "TRANSFER", "idempotencyKey": "k-2", "payload": {
        "fromId": "a", "toId": "a", "amount": 1}}).encode(), AUTH),
]


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(_app(engine)) as test_client:
        yield test_client


@pytest.mark.parametrize(("what", "body", "headers"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_of_spec_9_gets_a_4xx_problem_and_writes_nothing(
        client: TestClient, engine: Engine, what: str, body: bytes, headers: dict[str, str]) -> None:
    response = client.post("/api/v1/commands", content=body, headers={"Content-Type": "application/json", **headers})
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == response.status_code
    assert rows(engine) == 0
    # The good command is still accepted afterwards (the refusal left nothing behind that blocks it).
    assert client.post("/api/v1/commands", json=GOOD_MINT, headers=AUTH).status_code == 202
    assert rows(engine) == 1
