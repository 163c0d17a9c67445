"""SPEC §9 in the chaincode: IDs are unambiguous ASCII, amounts have one canonical decimal form, and every refusal
names the argument — for every ID argument of every contract function, with nothing written."""

from __future__ import annotations

import re

import pytest

import gxchaincode
from gxchaincode.amounts import UINT64_MAX
from gxchaincode.settings import POOL_IDS
from gxshim.inmemory import InMemoryLedger
from tests.unit.chaincode.conftest import Callers
from tests.unit.chaincode.test_contracts import bootstrap, ok, refused

# Each looks like an ordinary ID on screen but is another string.
AMBIGUOUS_IDS = {
    "bidi override": "alice\u202eecila",
    "zero-width space": "ali\u200bce",
    "zero-width joiner": "alice\u200d",
    "byte order mark": "\ufeffalice",
    "cyrillic a (homoglyph)": "\u0430lice",
    "greek omicron (homoglyph)": "b\u03bfb",
    "fullwidth digit": "user\uff11",
    "inner space": "ali ce",
    "leading space": " alice",
    "newline": "alice\n",
    "slash": "alice/bob",
    "composite-key separator": "alice\x00bob",
    "129 characters": "a" * 129,
}

# (function, arguments before the ID, ID argument name, arguments after it); evaluate or submit.
ID_ARGUMENTS = [
    ("TokenomicsContract:Mint", [], "accountID", ["100", "x"]),
    ("TokenomicsContract:Transfer", [], "fromID", ["SYSTEM_LOAN_POOL", "1", "x"]),
    ("TokenomicsContract:Transfer", ["SYSTEM_LOAN_POOL"], "toID", ["1", "x"]),
    ("TokenomicsContract:DistributeGenesis", [], "userID", []),
    ("TokenomicsContract:GetBalance", [], "accountID", []),
    ("TokenomicsContract:GetAccount", [], "accountID", []),
    ("IdentityContract:CreateUser", [], "userID", ["US", "name"]),
    ("IdentityContract:GetUser", [], "userID", []),
    ("GovernanceContract:SubmitProposal", [], "proposalID", ["T", "D", "u1"]),
    ("GovernanceContract:SubmitProposal", ["p1", "T", "D"], "proposerID", []),
]
EVALUATE = {"TokenomicsContract:GetBalance", "TokenomicsContract:GetAccount", "IdentityContract:GetUser"}


def test_the_id_rule_is_the_one_the_spec_names() -> None:
    assert gxchaincode.LEDGER_ID_PATTERN == r"[A-Za-z0-9_.:-]{1,128}"


@pytest.mark.parametrize("bad_id", list(AMBIGUOUS_IDS.values()), ids=list(AMBIGUOUS_IDS))
@pytest.mark.parametrize(("function", "before", "name", "after"), ID_ARGUMENTS,
                         ids=[f"{f}-{n}" for f, _, n, _ in ID_ARGUMENTS])
def test_every_id_argument_refuses_ambiguous_ids_naming_the_argument(
        ledger: InMemoryLedger, callers: Callers, function: str, before: list[str], name: str, after: list[str],
        bad_id: str) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.super_admin, "IdentityContract:CreateUser", "u1", "US", "U One"))
    state = dict(ledger.state)
    args = [*before, bad_id, *after]
    call = ledger.evaluate if function in EVALUATE else ledger.submit
    outcome = call(callers.super_admin, function, *args)
    refused(outcome, f"{name} must be 1-128 characters of ASCII letters, digits and _ - . : only")
    assert ledger.state == state


def test_refused_ids_show_their_invisible_characters_escaped(ledger: InMemoryLedger, callers: Callers) -> None:
    outcome = ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "ali\u200bce", "100", "x")
    refused(outcome, r"'ali\u200bce'")


@pytest.mark.parametrize("good_id", ["gx-runbook-test-user", "a", "A" * 128, "org1:user_7.v-2", *POOL_IDS])
def test_ids_in_use_by_the_system_and_the_runbooks_still_pass(ledger: InMemoryLedger, callers: Callers,
                                                              good_id: str) -> None:
    ok(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", good_id, "100", "x"))
    assert ok(ledger.evaluate(callers.user, "TokenomicsContract:GetBalance", good_id))["balance"] == 100


def test_the_runbooks_test_user_can_be_created(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.service, "IdentityContract:CreateUser", "gx-runbook-test-user", "US", "Runbook"))


@pytest.mark.parametrize("amount", [" 100", "100 ", "0100", "00", "+100", "1_000", "1e3", "١٠٠", "１００", "0x64",
                                   "100\n", ""])
def test_amounts_have_one_canonical_decimal_form(ledger: InMemoryLedger, callers: Callers, amount: str) -> None:
    refused(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "alice", amount, "x"),
            "amount must be a whole number of precision units")
    assert ledger.state == {}


@pytest.mark.parametrize("amount", ["9" * 5000, "1" + "0" * 20, "-" + "9" * 5000])
def test_huge_amounts_are_refused_naming_the_argument(ledger: InMemoryLedger, callers: Callers, amount: str) -> None:
    outcome = ledger.submit(callers.super_admin, "TokenomicsContract:Transfer", "SYSTEM_LOAN_POOL", "u1", amount, "x")
    assert not outcome.ok
    assert re.search(r"\bamount (has \d+ digits and exceeds the uint64 maximum|must be greater than zero)",
                     outcome.response.message), outcome.response.message
    assert "4300" not in outcome.response.message


def test_the_largest_uint64_amount_is_still_accepted(ledger: InMemoryLedger, callers: Callers) -> None:
    ok(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "alice", str(UINT64_MAX), "x"))
