"""How POST /api/v1/commands reads a request (SPEC §9): the role first, then the media type, then UTF-8 JSON with
unique keys, then the schema, where IDs follow the one ledger ID rule. Every refusal is problem+json and writes
nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from gxlib.backend.api import create_app
from gxlib.backend.settings import BackendSettings
from tests.unit.backend.test_api import (
    ADMIN,
    OPERATOR,
    READER,
    TOKENS,
    TestClient,
    assert_problem,
    auth,
    client,
    mint,
    registry,
    rows,
)

__all__ = ["client", "registry"]  # fixtures shared with test_api

COMMANDS = "/api/v1/commands"
JSON = {"Content-Type": "application/json"}


def post(client: Any, body: bytes, token: str, content_type: str | None = "application/json") -> Any:
    headers = auth(token)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(COMMANDS, content=body, headers=headers)


# --- the role before the body --------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    json.dumps(mint(amount="not a number", accountId="")).encode(),  # a malformed MINT
    json.dumps(mint()).encode(),  # a well-formed MINT
    b'{"type": "MINT", ',  # not even JSON
    json.dumps({"type": "CREATE_USER", "payload": {}, "idempotencyKey": "k"}).encode(),
], ids=["malformed MINT", "valid MINT", "broken JSON", "malformed CREATE_USER"])
def test_a_reader_is_refused_with_403_whatever_the_body(client: Any, engine: Engine, body: bytes) -> None:
    problem = assert_problem(post(client, body, READER), 403)
    assert "reader" in problem["detail"]
    assert "errors" not in problem  # no field details leak to a caller who may not submit at all
    assert rows(engine) == 0


def test_an_operator_posting_a_malformed_admin_command_gets_403_not_field_details(client: Any,
                                                                                  engine: Engine) -> None:
    body = json.dumps(mint(amount=-5, accountId="a b", remark="")).encode()
    problem = assert_problem(post(client, body, OPERATOR), 403)
    assert "MINT" in problem["detail"] and "admin" in problem["detail"]
    assert "errors" not in problem
    assert rows(engine) == 0


def test_an_admin_posting_the_same_malformed_command_gets_the_field_details(client: Any) -> None:
    body = json.dumps(mint(amount=-5)).encode()
    problem = assert_problem(post(client, body, ADMIN), 422)
    assert any(error["loc"][-1] == "amount" for error in problem["errors"])


# --- media type and encoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml",
                                          "application/json; charset=utf-16", "application/merge-patch+json"])
def test_a_body_of_another_media_type_is_415_naming_the_type(client: Any, engine: Engine, content_type: str) -> None:
    problem = assert_problem(post(client, json.dumps(mint()).encode(), ADMIN, content_type), 415)
    assert problem["contentType"] == content_type
    assert content_type.split(";")[0] in problem["detail"] and "application/json" in problem["detail"]
    assert rows(engine) == 0


def test_a_body_without_a_content_type_is_415(client: Any, engine: Engine) -> None:
    problem = assert_problem(post(client, json.dumps(mint()).encode(), ADMIN, content_type=None), 415)
    assert "application/json" in problem["detail"]
    assert rows(engine) == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON; Charset=UTF-8"])
def test_json_with_or_without_the_utf8_charset_is_accepted(client: Any, content_type: str) -> None:
    response = post(client, json.dumps(mint()).encode(), ADMIN, content_type)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "latin-1"])
def test_a_body_that_is_not_utf8_is_refused(client: Any, engine: Engine, encoding: str) -> None:
    body = json.dumps(mint(remark="café"), ensure_ascii=False).encode(encoding)
    problem = assert_problem(post(client, body, ADMIN), 400)
    assert "UTF-8" in problem["detail"]
    assert rows(engine) == 0


def test_a_utf8_byte_order_mark_is_refused(client: Any, engine: Engine) -> None:
    problem = assert_problem(post(client, b"\xef\xbb\xbf" + json.dumps(mint()).encode(), ADMIN), 400)
    assert "byte order mark" in problem["detail"]
    assert rows(engine) == 0


def test_utf8_text_in_free_text_fields_is_kept(client: Any) -> None:
    response = post(client, json.dumps(mint(remark="café ☕"), ensure_ascii=False).encode(), ADMIN)
    assert response.status_code == 202, response.text
    view = client.get(response.headers["location"], headers=auth(READER)).json()
    assert view["payload"]["remark"] == "café ☕"


# --- JSON shape ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "key"), [
    (b'{"type": "MINT", "type": "BOOTSTRAP_SYSTEM", "payload": {}, "idempotencyKey": "k"}', "type"),
    (b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "alice", "amount": 1, "amount": 9, '
     b'"remark": "r"}}', "payload.amount"),
    (b'{"type": "INITIALIZE_COUNTRY_DATA", "idempotencyKey": "k", "payload": {"countries": '
     b'[{"code": "US", "code": "FR"}]}}', "payload.countries[0].code"),
], ids=["top level", "payload", "nested in a list"])
def test_a_duplicate_json_key_is_400_naming_the_key(client: Any, engine: Engine, body: bytes, key: str) -> None:
    problem = assert_problem(post(client, body, ADMIN), 400)
    assert problem["key"] == key and key in problem["detail"]
    assert rows(engine) == 0


@pytest.mark.parametrize(("what", "body"), [
    ("NaN", b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "a", "remark": "r", "amount": NaN}}'),
    ("Infinity", b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "a", "remark": "r", '
                 b'"amount": Infinity}}'),
    ("an empty body", b""),
    ("a lone surrogate escape", b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "a", '
                                b'"remark": "\\ud800", "amount": 1}}'),
])
def test_json_that_is_not_plain_json_is_a_400_problem(client: Any, engine: Engine, what: str, body: bytes) -> None:
    response = post(client, body, ADMIN)
    assert_problem(response, 400)
    assert rows(engine) == 0, what


@pytest.mark.parametrize(("what", "body"), [
    ("an integer of 5000 digits", b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "a", '
                                  b'"remark": "r", "amount": ' + b"9" * 5000 + b"}}"),
    ("nesting 20000 deep", b"[" * 20_000 + b"]" * 20_000),
])
def test_json_beyond_what_python_parses_is_a_400_problem_not_a_server_error(engine: Engine, what: str,
                                                                            body: bytes) -> None:
    settings = BackendSettings(database_url="sqlite://", api_tokens=TOKENS)  # the default 64 KiB body limit
    with TestClient(create_app(settings, engine=engine, registry=CollectorRegistry())) as roomy:
        assert_problem(post(roomy, body, ADMIN), 400)
    assert rows(engine) == 0, what


# --- IDs and amounts (SPEC §9: printable ASCII letters, digits and _ - . : only, 1-128) ---------------------
HOMOGLYPH_AND_INVISIBLE_IDS = [
    ("Cyrillic a", "\u0430dmin"),
    ("Greek omicron", "b\u03bfb"),
    ("right-to-left override", "alice\u202egnp.exe"),
    ("zero-width space", "ali\u200bce"),
    ("zero-width joiner", "ali\u200dce"),
    ("byte order mark", "\ufeffalice"),
    ("fullwidth letters", "\uff41lice"),
    ("non-breaking space", "ali\u00a0ce"),
    ("at sign", "alice@example"),
    ("slash", "a/b"),
    ("space", "a b"),
    ("129 characters", "a" * 129),
    ("trailing newline", "alice\n"),
]


@pytest.mark.parametrize(("what", "value"), HOMOGLYPH_AND_INVISIBLE_IDS,
                         ids=[w for w, _ in HOMOGLYPH_AND_INVISIBLE_IDS])
@pytest.mark.parametrize("field", ["accountId", "idempotencyKey"])
def test_ids_outside_the_ascii_rule_are_refused(client: Any, engine: Engine, what: str, value: str,
                                                field: str) -> None:
    command = mint(**({"accountId": value} if field == "accountId" else {}))
    if field == "idempotencyKey":
        command["idempotencyKey"] = value
    problem = assert_problem(post(client, json.dumps(command).encode(), ADMIN), 422)
    assert field in problem["detail"], problem
    assert rows(engine) == 0


@pytest.mark.parametrize("kind_and_payload", [
    ("CREATE_USER", {"userId": "\u0430lice", "countryCode": "US"}),
    ("DISTRIBUTE_GENESIS", {"userId": "alice\u200b"}),
    ("TRANSFER", {"fromId": "alice", "toId": "b\u043eb", "amount": 1}),
    ("SUBMIT_PROPOSAL", {"proposalId": "p\u202e1", "title": "t", "description": "d", "proposerId": "alice"}),
], ids=lambda k: k[0])
def test_every_command_applies_the_id_rule(client: Any, engine: Engine, kind_and_payload: tuple[str, Any]) -> None:
    kind, payload = kind_and_payload
    body = json.dumps({"type": kind, "payload": payload, "idempotencyKey": f"k-{kind}"}).encode()
    assert_problem(post(client, body, ADMIN), 422)
    assert rows(engine) == 0


@pytest.mark.parametrize("value", ["alice", "SYSTEM_USER_GENESIS_POOL", "user:42", "a.b-c_d", "9", "A" * 128])
def test_ids_inside_the_rule_are_accepted(client: Any, value: str) -> None:
    command = mint(key=value, accountId=value)
    assert post(client, json.dumps(command).encode(), ADMIN).status_code == 202


@pytest.mark.parametrize("amount", ["500", "0500", "+500", " 500", "5e2", "500.0", "-0"])
def test_amount_strings_are_refused_whatever_their_form(client: Any, engine: Engine, amount: str) -> None:
    assert_problem(post(client, json.dumps(mint(amount=amount)).encode(), ADMIN), 422)
    assert rows(engine) == 0


@pytest.mark.parametrize("raw", [b"0500", b"+500", b"-0", b"5e2", b"500.0", b"5E+2"])
def test_amount_numbers_in_a_non_canonical_form_are_refused(client: Any, engine: Engine, raw: bytes) -> None:
    body = (b'{"type": "MINT", "idempotencyKey": "k", "payload": {"accountId": "a", "remark": "r", "amount": '
            + raw + b"}}")
    response = post(client, body, ADMIN)
    assert 400 <= response.status_code < 500 and response.status_code != 403, response.text
    assert_problem(response, response.status_code)
    assert rows(engine) == 0


@pytest.mark.parametrize("path", ["/api/v1/users/\u0430lice", "/api/v1/accounts/ali%E2%80%8Bce",
                                  "/api/v1/accounts/a%00b"])
def test_read_model_paths_apply_the_id_rule(client: Any, path: str) -> None:
    assert_problem(client.get(path, headers=auth(READER)), 422)


def test_the_openapi_schema_documents_the_id_rule_and_the_new_refusals(client: Any) -> None:
    from gxlib.backend.ids import LEDGER_ID_PATTERN

    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert LEDGER_ID_PATTERN in schemas["MintPayload"]["properties"]["accountId"]["pattern"]
    assert LEDGER_ID_PATTERN in schemas["MintCommand"]["properties"]["idempotencyKey"]["pattern"]
    responses = spec["paths"][COMMANDS]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "415", "422"} <= set(responses)
