"""The projector's fast schema check (compiled) only ever accepts what the reference validator of the chaincode's
2020-12 schema accepts: a malformed event is never projected because the fast path was used."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gxchaincode.events import EVENT_TYPES, load_schema
from gxlib.backend.errors import MalformedEventError
from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.projector import fast_validator, json_payload, parse_event
from tests.unit.backend.chaincode_events import RecordedHistory

ODD_VALUES: list[Any] = [None, "", "x", " ", -1, 0, 1, 1.0, 1.5, True, False, 2**64 - 1, 2**64, [], [""], {}, "0" * 300]


def _variants(payload: dict[str, Any]) -> list[dict[str, Any]]:
    variants = [payload, {**payload, "surprise": 1}]
    for key, value in payload.items():
        variants.append({k: v for k, v in payload.items() if k != key})
        variants += [{**payload, key: odd} for odd in ODD_VALUES]
        if isinstance(value, list) and value:
            variants += [{**payload, key: [odd]} for odd in ODD_VALUES]
            if isinstance(value[0], dict):
                variants += [{**payload, key: [{**value[0], inner: odd}]} for inner in value[0] for odd in ODD_VALUES]
    return variants


def test_every_chaincode_event_schema_has_a_fast_check_that_accepts_what_the_chaincode_emits(
        recorded_history: RecordedHistory) -> None:
    assert all(fast_validator(event.event_name)(json.loads(event.payload)) for event in recorded_history.events)
    assert {event.event_name for event in recorded_history.events} <= set(EVENT_TYPES)


def test_the_fast_check_accepts_nothing_the_reference_refuses(recorded_history: RecordedHistory) -> None:
    seen = set()
    checked = 0
    for event in recorded_history.events:
        if event.event_name in seen:
            continue
        seen.add(event.event_name)
        reference = Draft202012Validator(load_schema(event.event_name))
        fast = fast_validator(event.event_name)
        for variant in _variants(json.loads(event.payload)):
            try:
                if not fast(json.loads(json.dumps(variant))):
                    continue
            except Exception:  # parse_event treats it as refused, too
                continue
            assert reference.is_valid(variant), (event.event_name, variant)
            checked += 1
    assert checked > 0 and len(seen) >= 5


@pytest.mark.parametrize("change", [{"amount": 1.5}, {"amount": True}, {"amount": 2**64}, {"remark": ""}])
def test_a_payload_the_fast_check_refuses_is_explained_by_the_reference(recorded_history: RecordedHistory,
                                                                        change: dict[str, Any]) -> None:
    mint = next(e for e in recorded_history.events if e.event_name == "CoinsMinted")
    payload = {**json.loads(mint.payload), **change}
    event = ChaincodeEvent(mint.block_number, mint.tx_index, mint.tx_id, mint.event_name, json.dumps(payload).encode())
    with pytest.raises(MalformedEventError, match=next(iter(change))):
        parse_event(event)


def _typed(value: Any) -> Any:
    """``value`` with each scalar paired with its type (1 == 1.0 == True, but an amount must stay an int)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value), value if value == value else "nan")


ODD_TEXTS = [b'{"amount":18446744073709551616}', b'{"amount":18446744073709551617}',
             b'{"a":[{"b":' + b"9" * 40 + b"}]}", b'{"a":-9223372036854775809}', b'{"a":1e400}', b'{"a":NaN}',
             b'\xef\xbb\xbf{"a":1}', b'{"a":"\\ud800"}',
             '{"a": 1}'.encode("utf-16"), b'{"a":1.0}', b'{"a":[1,2.5]}', b'{"a":1,"a":2}', b"[]", b'"x"', b"7"]


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_payloads_are_parsed_exactly_as_json_loads_parses_them(text: bytes) -> None:
    assert _typed(json_payload(text)) == _typed(json.loads(text))


@pytest.mark.parametrize("text", [b'{"a":', b"\xff", b"{'a': 1}", b""])
def test_a_payload_json_loads_refuses_is_refused_with_its_error(text: bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)):
        json_payload(text)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=12)


@given(JSON_VALUES)
def test_any_json_text_is_parsed_exactly_as_json_loads_parses_it(value: Any) -> None:
    text = json.dumps(value).encode()
    assert _typed(json_payload(text)) == _typed(json.loads(text))


def test_a_recorded_history_parses_alike(recorded_history: RecordedHistory) -> None:
    assert all(_typed(json_payload(e.payload)) == _typed(json.loads(e.payload)) for e in recorded_history.events)


def test_an_amount_beyond_uint64_is_refused_with_its_exact_digits(recorded_history: RecordedHistory) -> None:
    mint = next(e for e in recorded_history.events if e.event_name == "CoinsMinted")
    text = json.dumps({**json.loads(mint.payload), "amount": 2**64 + 1}).encode()
    event = ChaincodeEvent(mint.block_number, mint.tx_index, mint.tx_id, mint.event_name, text)
    with pytest.raises(MalformedEventError, match=f"amount: {2**64 + 1} is greater than"):
        parse_event(event)
