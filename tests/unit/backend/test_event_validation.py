"""The projector's fast schema check (compiled) only ever accepts what the reference validator of the chaincode's
2020-12 schema accepts: a malformed event is never projected because the fast path was used."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gxchaincode.events import EVENT_TYPES, load_schema
from gxlib.backend.errors import MalformedEventError
from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.projector import fast_validator, parse_event
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
