"""Every GX chaincode function in-process: success paths, each validation in order, roles, events."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from gxchaincode import events
from gxchaincode.amounts import PRECISION, UINT64_MAX
from gxchaincode.settings import BOOTSTRAP_POOLS
from gxshim.inmemory import Caller, InMemoryLedger, Outcome
from tests.unit.chaincode.conftest import Callers


def ok(outcome: Outcome) -> Any:
    assert outcome.ok, outcome.response.message
    return json.loads(outcome.response.payload) if outcome.response.payload else None


def refused(outcome: Outcome, message: str) -> None:
    assert not outcome.ok, f"expected refusal with {message!r}"
    assert message in outcome.response.message, outcome.response.message


def event_of(outcome: Outcome) -> dict[str, Any]:
    assert outcome.event_payload is not None
    payload = json.loads(outcome.event_payload)
    assert outcome.event_name == payload["eventType"]
    jsonschema.validate(payload, events.load_schema(payload["eventType"]))
    return payload


def balance(ledger: InMemoryLedger, caller: Caller, account: str) -> int:
    return int(ok(ledger.evaluate(caller, "TokenomicsContract:GetBalance", account))["balance"])


def bootstrap(ledger: InMemoryLedger, callers: Callers) -> dict[str, Any]:
    return event_of(ledger.submit(callers.super_admin, "AdminContract:BootstrapSystem"))


# --- Mint ------------------------------------------------------------------------------------------------------
def test_mint_credits_and_emits_coins_minted(ledger: InMemoryLedger, callers: Callers) -> None:
    outcome = ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "alice", str(5 * PRECISION), "airdrop")
    event = event_of(outcome)
    assert event == {"eventType": "CoinsMinted", "accountId": "alice", "amount": 5 * PRECISION, "amountCoins": 5,
                     "remark": "airdrop", "timestamp": event["timestamp"]}
    assert balance(ledger, callers.user, "alice") == 5 * PRECISION


@pytest.mark.parametrize(("args", "message"), [
    (["", "0", ""], "accountID cannot be empty"),
    (["alice", "0", ""], "amount must be greater than zero"),
    (["alice", "-5", "x"], "amount must be greater than zero"),
    (["alice", "12abc", "x"], "amount must be a whole number of precision units"),
    (["alice", "1.5", "x"], "amount must be a whole number of precision units"),
    (["alice", str(UINT64_MAX + 1), "x"], "exceeds the uint64 maximum"),
    (["alice", "100", ""], "remark cannot be empty - must document reason for minting"),
    (["alice", "100", "   "], "remark cannot be empty - must document reason for minting"),
])
def test_mint_validates_in_order_and_writes_nothing(ledger: InMemoryLedger, callers: Callers, args: list[str],
                                                    message: str) -> None:
    refused(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", *args), message)
    assert ledger.state == {}


def test_mint_by_a_plain_client_is_refused_naming_the_role(ledger: InMemoryLedger, callers: Callers) -> None:
    outcome = ledger.submit(callers.service, "TokenomicsContract:Mint", "alice", "100", "x")
    refused(outcome, "requires role gx_super_admin")
    assert outcome.response.status == 403
    assert ledger.state == {}


def test_msp_admin_of_the_trusted_issuer_is_the_fallback_super_admin(ledger: InMemoryLedger,
                                                                     callers: Callers) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.org1_admin, "TokenomicsContract:Mint", "bob", "100", "fallback role"))


def test_mint_beyond_uint64_balance_is_refused(ledger: InMemoryLedger, callers: Callers) -> None:
    ok(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "whale", str(UINT64_MAX), "max"))
    refused(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "whale", "1", "one more"),
            "arithmetic overflow")
    assert balance(ledger, callers.user, "whale") == UINT64_MAX


# --- BootstrapSystem --------------------------------------------------------------------------------------------
def test_bootstrap_mints_the_four_pools_once_in_one_event(ledger: InMemoryLedger, callers: Callers) -> None:
    event = bootstrap(ledger, callers)
    assert [(m["accountId"], m["amountCoins"]) for m in event["mints"]] == list(BOOTSTRAP_POOLS)
    assert event["countries"] == ["US", "CA", "GB"]
    for pool, coins in BOOTSTRAP_POOLS:
        assert balance(ledger, callers.user, pool) == coins * PRECISION
    status = ok(ledger.evaluate(callers.user, "AdminContract:GetSystemStatus"))
    assert status["bootstrapped"] is True
    assert status["pools"]["SYSTEM_USER_GENESIS_POOL"] == 500_000_000 * PRECISION
    before = dict(ledger.state)
    refused(ledger.submit(callers.super_admin, "AdminContract:BootstrapSystem"), "system already bootstrapped")
    assert ledger.state == before


def test_bootstrap_by_a_plain_client_is_refused_and_changes_nothing(ledger: InMemoryLedger, callers: Callers) -> None:
    refused(ledger.submit(callers.service, "AdminContract:BootstrapSystem"), "requires role gx_super_admin")
    assert ok(ledger.evaluate(callers.user, "AdminContract:GetSystemStatus"))["bootstrapped"] is False


def test_pools_above_the_threshold_start_the_velocity_tax_timer(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    pool = ok(ledger.evaluate(callers.user, "TokenomicsContract:GetAccount", "SYSTEM_LOAN_POOL"))
    assert pool["velocityTaxTimerStart"] is not None


# --- InitializeCountryData ------------------------------------------------------------------------------------
def test_initialize_countries_is_idempotent_per_country(ledger: InMemoryLedger, callers: Callers) -> None:
    first = event_of(ledger.submit(callers.super_admin, "AdminContract:InitializeCountryData",
                                   json.dumps(["US", {"code": "DE", "name": "Germany"}])))
    assert first["countries"] == ["US", "DE"] and first["alreadyInitialized"] == []
    second = event_of(ledger.submit(callers.super_admin, "AdminContract:InitializeCountryData", '["DE", "FR"]'))
    assert second["countries"] == ["FR"] and second["alreadyInitialized"] == ["DE"]


@pytest.mark.parametrize(("raw", "message"), [
    ("not json", "countriesJSON is not valid JSON"),
    ("[]", "must be a non-empty JSON array"),
    ('["usa"]', "is not a two-letter upper-case ISO 3166 code"),
    ('["US", "US"]', "listed twice"),
])
def test_initialize_countries_rejects_bad_input(ledger: InMemoryLedger, callers: Callers, raw: str,
                                                message: str) -> None:
    refused(ledger.submit(callers.super_admin, "AdminContract:InitializeCountryData", raw), message)
    assert ledger.state == {}


# --- users, genesis, transfers, proposals -----------------------------------------------------------------------
def test_create_user_needs_an_initialised_country_and_a_new_id(ledger: InMemoryLedger, callers: Callers) -> None:
    refused(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "US", "U One"), "not bootstrapped")
    bootstrap(ledger, callers)
    refused(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "ZZ", "U One"),
            "country ZZ is not initialised")
    refused(ledger.submit(callers.service, "IdentityContract:CreateUser", "", "US", "U One"),
            "userID cannot be empty")
    event = event_of(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "US", "U One"))
    assert event["userNumber"] == 1 and event["countryCode"] == "US"
    refused(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "CA", "again"),
            "user u1 already exists")
    user = ok(ledger.evaluate(callers.user, "IdentityContract:GetUser", "u1"))
    assert user["displayName"] == "U One" and user["genesisDistributed"] is False


def test_genesis_is_distributed_once_per_user_from_the_pool(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "GB", "U One"))
    event = event_of(ledger.submit(callers.service, "TokenomicsContract:DistributeGenesis", "u1"))
    assert event["tier"] == 1 and event["amountCoins"] == 500
    assert balance(ledger, callers.user, "u1") == 500 * PRECISION
    assert balance(ledger, callers.user, "SYSTEM_USER_GENESIS_POOL") == (500_000_000 - 500) * PRECISION
    refused(ledger.submit(callers.service, "TokenomicsContract:DistributeGenesis", "u1"), "already distributed")
    refused(ledger.submit(callers.service, "TokenomicsContract:DistributeGenesis", "ghost"),
            "user ghost does not exist")
    refused(ledger.submit(callers.user, "TokenomicsContract:DistributeGenesis", "u1"), "access denied")


def test_transfer_checks_ownership_and_balance(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    for user in ("u1", "u2"):
        ok(ledger.submit(callers.service, "IdentityContract:CreateUser", user, "US", user))
    ok(ledger.submit(callers.service, "TokenomicsContract:DistributeGenesis", "u1"))
    refused(ledger.submit(callers.user, "TokenomicsContract:Transfer", "u1", "u2", "1", "x"),
            "does not own account u1")
    refused(ledger.submit(callers.service, "TokenomicsContract:Transfer", "u1", "u2", str(501 * PRECISION), "x"),
            "insufficient balance")
    refused(ledger.submit(callers.service, "TokenomicsContract:Transfer", "u1", "u1", "1", "x"),
            "must be different accounts")
    refused(ledger.submit(callers.service, "TokenomicsContract:Transfer", "SYSTEM_LOAN_POOL", "u2", "1", "x"),
            "does not own account SYSTEM_LOAN_POOL")
    event = event_of(ledger.submit(callers.service, "TokenomicsContract:Transfer", "u1", "u2", str(PRECISION),
                                   "rent"))
    assert (event["fromId"], event["toId"], event["amountCoins"]) == ("u1", "u2", 1)
    assert balance(ledger, callers.user, "u2") == PRECISION
    ok(ledger.submit(callers.super_admin, "TokenomicsContract:Transfer", "SYSTEM_LOAN_POOL", "u2", "5", "loan"))


def test_proposals_need_a_registered_proposer(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.service, "IdentityContract:CreateUser", "u1", "US", "U One"))
    refused(ledger.submit(callers.service, "GovernanceContract:SubmitProposal", "p1", "T", "D", "ghost"),
            "only registered users may submit proposals")
    refused(ledger.submit(callers.service, "GovernanceContract:SubmitProposal", "p1", "", "D", "u1"),
            "title cannot be empty")
    event = event_of(ledger.submit(callers.service, "GovernanceContract:SubmitProposal", "p1", "Title", "Desc", "u1"))
    assert event["proposalId"] == "p1" and event["proposerId"] == "u1"
    refused(ledger.submit(callers.service, "GovernanceContract:SubmitProposal", "p1", "T", "D", "u1"),
            "proposal p1 already exists")


# --- routing and argument errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["NoSuchContract:Mint"], "unknown function 'NoSuchContract:Mint'"),
    (["TokenomicsContract:Burn"], "unknown function 'TokenomicsContract:Burn'"),
    (["TokenomicsContract:Mint", "alice", "100"], "expects 3 argument(s) (accountID, amount, remark), got 2"),
    (["AdminContract:BootstrapSystem", "extra"], "expects 0 argument(s)"),
])
def test_unknown_functions_and_wrong_argument_counts_are_named(ledger: InMemoryLedger, callers: Callers,
                                                               args: list[str], message: str) -> None:
    refused(ledger.submit(callers.super_admin, *args), message)
    assert ledger.state == {}


def test_queries_of_missing_records_say_what_is_missing(ledger: InMemoryLedger, callers: Callers) -> None:
    refused(ledger.evaluate(callers.user, "TokenomicsContract:GetBalance", "nobody"), "account nobody does not exist")
    refused(ledger.evaluate(callers.user, "TokenomicsContract:GetBalance", ""), "accountID cannot be empty")
    refused(ledger.evaluate(callers.user, "IdentityContract:GetUser", "nobody"), "user nobody does not exist")


def test_every_event_type_has_a_versioned_schema() -> None:
    for event_type in events.EVENT_TYPES:
        schema = events.load_schema(event_type)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["eventType"] == {"const": event_type}
        assert {"eventType", "timestamp"} <= set(schema["required"])
