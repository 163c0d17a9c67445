"""SPEC §9: one ID rule in the API and in the chaincode. The chaincode is its own project and cannot import gxlib,
so each spells the rule; this keeps the two spellings one rule."""

from __future__ import annotations

import re

import gxchaincode
from gxlib.backend import ids


def test_the_api_and_the_chaincode_hold_ids_to_the_same_rule() -> None:
    assert ids.LEDGER_ID_PATTERN == gxchaincode.LEDGER_ID_PATTERN == r"[A-Za-z0-9_.:-]{1,128}"
    for candidate in ("SYSTEM_USER_GENESIS_POOL", "gx-runbook-test-user", "a" * 128, "аdmin", "a b", "x" * 129, ""):
        api = ids.is_ledger_id(candidate)
        chaincode = re.fullmatch(gxchaincode.LEDGER_ID_PATTERN, candidate) is not None
        assert api == chaincode, candidate
