"""Property test of POST /api/v1/commands: whatever the body, never a 5xx; anything but 202 writes nothing;
every rejection is problem+json."""

from __future__ import annotations

import json
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gxlib.backend.api import create_app
from gxlib.backend.commands import CommandType
from gxlib.backend.models import OutboxCommand
from gxlib.backend.settings import BackendSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ADMIN = "fuzz-admin"
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
payload_keys = st.sampled_from(["accountId", "amount", "remark", "userId", "countryCode", "displayName", "fromId",
                                "toId", "proposalId", "title", "description", "proposerId", "countries"])
payloads = st.dictionaries(payload_keys, json_values, max_size=6)
commands = st.fixed_dictionaries({"type": st.one_of(st.sampled_from([t.value for t in CommandType]), st.text()),
                                  "payload": st.one_of(payloads, json_values),
                                  "idempotencyKey": st.one_of(st.text(max_size=40), json_values)})
bodies = st.one_of(commands.map(lambda c: json.dumps(c).encode()), st.binary(max_size=200),
                   json_values.map(lambda v: json.dumps(v).encode()))


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxCommand)) or 0)


def test_no_body_causes_a_server_error_or_a_stray_row(engine: Engine) -> None:
    app = create_app(BackendSettings(database_url="sqlite://", api_tokens={ADMIN: "admin"}), engine=engine,
                     registry=CollectorRegistry())
    client = TestClient(app)
    accepted: set[str] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def check(body: bytes) -> None:
        before = count(engine)
        response = client.post("/api/v1/commands", content=body,
                               headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
        assert response.status_code < 500, response.text
        if response.status_code == 202:
            accepted.add(response.json()["commandId"])
            assert count(engine) == len(accepted)
        else:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert count(engine) == before

    check()
    client.close()


