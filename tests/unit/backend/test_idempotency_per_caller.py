"""Idempotency keys belong to their caller (SPEC §3.4): a predictable key used by one caller cannot block or
hijack another caller's command, a caller's repeat still returns its original, and commands enqueued before
the keys were scoped (schema 0001) stay idempotent across the upgrade."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alembic import command
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from gxlib.backend.api import create_app
from gxlib.backend.db import _alembic_config, current_revision, head_revision, make_engine, migrate
from gxlib.backend.errors import IdempotencyConflictError
from gxlib.backend.models import CommandStatus, OutboxCommand
from gxlib.backend.outbox import Outbox
from gxlib.backend.settings import BackendSettings
from tests.unit.backend.helpers import mint_payload
from tests.unit.backend.test_api import TestClient, assert_problem, auth, rows

ADMIN, OPERATOR, OTHER_OPERATOR = "admin-token-9", "operator-token-9", "operator-token-10"
RUNBOOK_KEY = "03-bootstrap-system:gxchannel-local:BOOTSTRAP_SYSTEM"  # what runbook 03 sends: predictable


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    settings = BackendSettings(database_url="sqlite://", api_tokens={ADMIN: "admin", OPERATOR: "operator",
                                                                      OTHER_OPERATOR: "operator"})
    with TestClient(create_app(settings, engine=engine, registry=CollectorRegistry())) as c:
        yield c


def create_user(key: str, user: str = "mallory") -> dict[str, Any]:
    return {"type": "CREATE_USER", "idempotencyKey": key, "payload": {"userId": user, "countryCode": "US"}}


def test_an_operator_taking_the_admins_predictable_key_does_not_block_the_admins_command(client: TestClient,
                                                                                         engine: Engine) -> None:
    squatted = client.post("/api/v1/commands", json=create_user(RUNBOOK_KEY), headers=auth(OPERATOR))
    assert squatted.status_code == 202
    boot = client.post("/api/v1/commands", json={"type": "BOOTSTRAP_SYSTEM", "payload": {},
                                                 "idempotencyKey": RUNBOOK_KEY}, headers=auth(ADMIN))
    assert boot.status_code == 202, boot.text
    assert boot.json()["duplicate"] is False and boot.json()["type"] == "BOOTSTRAP_SYSTEM"
    assert boot.json()["commandId"] != squatted.json()["commandId"]
    assert rows(engine) == 2


def test_the_same_key_from_two_tokens_of_the_same_role_is_two_commands(client: TestClient, engine: Engine) -> None:
    first = client.post("/api/v1/commands", json=create_user("k", "alice"), headers=auth(OPERATOR)).json()
    second = client.post("/api/v1/commands", json=create_user("k", "bob"), headers=auth(OTHER_OPERATOR)).json()
    assert first["commandId"] != second["commandId"] and not second["duplicate"]
    assert rows(engine) == 2


def test_a_callers_repeat_still_returns_its_original_and_a_changed_repeat_is_still_409(client: TestClient,
                                                                                       engine: Engine) -> None:
    first = client.post("/api/v1/commands", json=create_user("k", "alice"), headers=auth(OPERATOR)).json()
    again = client.post("/api/v1/commands", json=create_user("k", "alice"), headers=auth(OPERATOR)).json()
    assert again["commandId"] == first["commandId"] and again["duplicate"] is True
    conflict = assert_problem(client.post("/api/v1/commands", json=create_user("k", "bob"),
                                          headers=auth(OPERATOR)), 409)
    assert conflict["commandId"] == first["commandId"]
    assert rows(engine) == 1


def test_the_token_itself_is_never_stored(client: TestClient, engine: Engine) -> None:
    client.post("/api/v1/commands", json=create_user("k"), headers=auth(OPERATOR))
    with Session(engine) as session:
        caller = session.scalar(select(OutboxCommand.caller))
    assert caller and OPERATOR not in caller


def test_racing_repeats_of_one_caller_write_one_row(engine: Engine) -> None:
    outbox = Outbox(engine)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: outbox.enqueue("MINT", mint_payload(), "race", caller="token:a"),
                                range(16)))
    assert len({r.command.id for r in results}) == 1 and sum(r.created for r in results) == 1
    assert outbox.enqueue("MINT", mint_payload(), "race", caller="token:b").created


# --- upgrading a database of schema 0001 ----------------------------------------------------------------------
def _schema_0001_with_a_command_and_a_dead_letter(url: str) -> tuple[Engine, str]:
    engine = make_engine(url)
    migrate(engine, "0001_initial")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    command_id = str(uuid.uuid4())
    values = {"id": command_id, "payload": json.dumps(mint_payload()), "now": now}
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO outbox_commands (id, command_type, payload, idempotency_key, status, attempts, "
            "next_attempt_at, created_at, updated_at) VALUES (:id, 'MINT', :payload, 'old-key', 'DLQ', 10, :now, "
            ":now, :now)"), values)
        connection.execute(text(
            "INSERT INTO outbox_dlq (command_id, command_type, payload, idempotency_key, final_status, attempts, "
            "created_at, moved_at) VALUES (:id, 'MINT', :payload, 'old-key', 'DLQ', 10, :now, :now)"), values)
    return engine, command_id


def test_commands_from_before_the_upgrade_stay_idempotent_for_every_caller(
        new_database_url: Callable[[], str]) -> None:
    engine, old_id = _schema_0001_with_a_command_and_a_dead_letter(new_database_url())
    try:
        assert migrate(engine) == head_revision()
        outbox = Outbox(engine)
        for caller in ("token:admin", "token:operator"):
            repeat = outbox.enqueue("MINT", mint_payload(), "old-key", caller=caller)
            assert repeat.command.id == old_id and not repeat.created
        with pytest.raises(IdempotencyConflictError):
            outbox.enqueue("MINT", {**mint_payload(), "amount": 7}, "old-key", caller="token:admin")
        assert outbox.get(old_id).status == CommandStatus.DLQ
        assert [letter.command_id for letter in outbox.dead_letters()] == [old_id]  # kept through the upgrade
        assert outbox.enqueue("MINT", mint_payload(), "new-key", caller="token:admin").created
    finally:
        engine.dispose()


def test_the_upgrade_can_be_undone_while_no_key_is_shared_by_two_callers(
        new_database_url: Callable[[], str]) -> None:
    engine, old_id = _schema_0001_with_a_command_and_a_dead_letter(new_database_url())
    try:
        migrate(engine)
        Outbox(engine).enqueue("MINT", mint_payload(), "new-key", caller="token:admin")
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0001_initial")
        assert current_revision(engine) == "0001_initial"
        with Session(engine) as session:
            keys = set(session.execute(text("SELECT idempotency_key FROM outbox_commands")).scalars())
            letters = list(session.execute(text("SELECT command_id FROM outbox_dlq")).scalars())
        assert keys == {"old-key", "new-key"} and letters == [old_id]
    finally:
        engine.dispose()


def test_a_caller_finds_its_own_command_by_key_and_not_another_callers(client: TestClient) -> None:
    posted = client.post("/api/v1/commands", json=create_user("runbook-04.mint", "alice"),
                         headers=auth(OPERATOR)).json()
    found = client.get("/api/v1/commands", params={"idempotencyKey": "runbook-04.mint"}, headers=auth(OPERATOR))
    assert found.status_code == 200 and [c["commandId"] for c in found.json()] == [posted["commandId"]]
    assert found.json()[0]["status"] == "PENDING"
    other = client.get("/api/v1/commands", params={"idempotencyKey": "runbook-04.mint"},
                       headers=auth(OTHER_OPERATOR))
    assert other.status_code == 200 and other.json() == [], "another caller's key says nothing about its command"
    never = client.get("/api/v1/commands", params={"idempotencyKey": "never-used"}, headers=auth(OPERATOR))
    assert never.json() == []
    assert_problem(client.get("/api/v1/commands", params={"idempotencyKey": "а-cyrillic"}, headers=auth(OPERATOR)),
                   422)
