"""The one ledger ID rule (SPEC §9) that the API applies and the chaincode copies."""

from __future__ import annotations

import re

import pytest

from gxlib.backend.ids import LEDGER_ID_ANCHORED, LEDGER_ID_PATTERN, is_ledger_id


def test_the_rule_is_exported_verbatim_for_the_chaincode_drift_check() -> None:
    assert LEDGER_ID_PATTERN == r"[A-Za-z0-9_.:-]{1,128}"
    assert f"^{LEDGER_ID_PATTERN}$" == LEDGER_ID_ANCHORED


@pytest.mark.parametrize("value", ["alice", "SYSTEM_USER_GENESIS_POOL", "user:42", "a.b-c_d", "0", "Z" * 128])
def test_ascii_letters_digits_and_four_marks_are_ids(value: str) -> None:
    assert is_ledger_id(value) and re.fullmatch(LEDGER_ID_PATTERN, value)


@pytest.mark.parametrize("value", ["", "a" * 129, "\u0430dmin", "ali\u200bce", "\ufeffalice", "alice\u202e",
                                   "alice\n", "a b", "a/b", "a@b", "a\x00b", "caf\u00e9", None, 42])
def test_anything_else_is_not_an_id(value: object) -> None:
    assert not is_ledger_id(value)
