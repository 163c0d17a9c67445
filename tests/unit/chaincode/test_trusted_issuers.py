"""SPEC §2.1: the super-admin role counts only from the MSPs the ledger trusts as issuers (recorded at bootstrap,
changed by AdminContract:SetTrustedIssuerMSPs); another organisation's admin or attribute holder is refused."""

from __future__ import annotations

import pytest

from gxshim.inmemory import Caller, InMemoryLedger
from tests.unit.chaincode.conftest import Callers
from tests.unit.chaincode.test_contracts import balance, bootstrap, event_of, ok, refused

SUPER_ADMIN_CALLS = [
    ("TokenomicsContract:Mint", ("carol", "100", "x")),
    ("AdminContract:InitializeCountryData", ('["DE"]',)),
    ("AdminContract:SetTrustedIssuerMSPs", ('["Org2MSP"]',)),
]


def org2_attribute_holder(callers: Callers) -> Caller:
    """A certificate with gx_super_admin=true presented as Org2's: what Org2's own CA registrar could issue."""
    return Caller("Org2MSP", callers.super_admin.cert_pem)


def trusted(ledger: InMemoryLedger, callers: Callers) -> list[str] | None:
    found = ok(ledger.evaluate(callers.user, "AdminContract:GetSystemStatus"))["trustedIssuerMSPs"]
    return None if found is None else list(found)


def test_bootstrap_records_the_callers_msp_as_the_trusted_issuer(ledger: InMemoryLedger, callers: Callers) -> None:
    assert trusted(ledger, callers) is None
    bootstrap(ledger, callers)
    assert trusted(ledger, callers) == ["Org1MSP"]


@pytest.mark.parametrize(("function", "args"), SUPER_ADMIN_CALLS, ids=[f for f, _ in SUPER_ADMIN_CALLS])
def test_another_organisations_admin_is_not_a_super_admin(ledger: InMemoryLedger, callers: Callers, function: str,
                                                          args: tuple[str, ...]) -> None:
    bootstrap(ledger, callers)
    state = dict(ledger.state)
    outcome = ledger.submit(callers.org_admin, function, *args)
    refused(outcome, "of a trusted issuer MSP (Org1MSP)")
    refused(outcome, "Org2MSP is not a trusted issuer MSP")
    assert outcome.response.status == 403
    assert ledger.state == state


def test_another_organisations_admin_cannot_move_the_pools(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    refused(ledger.submit(callers.org_admin, "TokenomicsContract:Transfer", "SYSTEM_LOAN_POOL", "carol", "1", "x"),
            "does not own account SYSTEM_LOAN_POOL")


def test_another_organisations_attribute_holder_is_not_a_super_admin(ledger: InMemoryLedger,
                                                                     callers: Callers) -> None:
    bootstrap(ledger, callers)
    refused(ledger.submit(org2_attribute_holder(callers), "TokenomicsContract:Mint", "carol", "100", "x"),
            "Org2MSP is not a trusted issuer MSP")


def test_the_trusted_msps_admin_and_attribute_holder_still_are(ledger: InMemoryLedger, callers: Callers) -> None:
    bootstrap(ledger, callers)
    ok(ledger.submit(callers.org1_admin, "TokenomicsContract:Mint", "carol", "100", "x"))
    ok(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "carol", "100", "x"))
    refused(ledger.submit(callers.service, "TokenomicsContract:Mint", "carol", "100", "x"),
            "holds neither the attribute nor the admin role")
    assert balance(ledger, callers.user, "carol") == 200


def test_before_bootstrap_an_msp_admin_may_only_bootstrap(ledger: InMemoryLedger, callers: Callers) -> None:
    refused(ledger.submit(callers.org_admin, "TokenomicsContract:Mint", "carol", "100", "x"),
            "before BootstrapSystem an MSP admin may only bootstrap")
    assert ledger.state == {}
    ok(ledger.submit(callers.org_admin, "AdminContract:BootstrapSystem"))
    assert trusted(ledger, callers) == ["Org2MSP"]
    ok(ledger.submit(callers.org_admin, "TokenomicsContract:Mint", "carol", "100", "x"))
    refused(ledger.submit(callers.super_admin, "TokenomicsContract:Mint", "carol", "100", "x"),
            "Org1MSP is not a trusted issuer MSP")


def test_a_trusted_super_admin_changes_the_trusted_issuers_with_an_event(ledger: InMemoryLedger,
                                                                          callers: Callers) -> None:
    bootstrap(ledger, callers)
    event = event_of(ledger.submit(callers.org1_admin, "AdminContract:SetTrustedIssuerMSPs", '["Org1MSP","Org2MSP"]'))
    assert (event["mspIds"], event["previousMspIds"], event["changedByMspId"]) == (
        ["Org1MSP", "Org2MSP"], ["Org1MSP"], "Org1MSP")
    ok(ledger.submit(callers.org_admin, "TokenomicsContract:Mint", "carol", "100", "x"))
    ok(ledger.submit(callers.org_admin, "AdminContract:SetTrustedIssuerMSPs", '["Org2MSP"]'))
    refused(ledger.submit(callers.org1_admin, "TokenomicsContract:Mint", "carol", "100", "x"),
            "Org1MSP is not a trusted issuer MSP")


@pytest.mark.parametrize(("raw", "message"), [
    ("Org1MSP", "mspIDsJSON is not valid JSON"),
    ("[]", "mspIDsJSON must be a non-empty JSON array"),
    ('{"msp": "Org1MSP"}', "mspIDsJSON must be a non-empty JSON array"),
    ('["Org1MSP", "Org1MSP"]', "lists an MSP ID twice"),
    ('["Org\\u200b1MSP"]', "must be 1-128 ASCII letters"),
    ("[1]", "must be 1-128 ASCII letters"),
])
def test_trusted_issuer_lists_are_validated(ledger: InMemoryLedger, callers: Callers, raw: str,
                                            message: str) -> None:
    bootstrap(ledger, callers)
    state = dict(ledger.state)
    refused(ledger.submit(callers.super_admin, "AdminContract:SetTrustedIssuerMSPs", raw), message)
    assert ledger.state == state


def test_trusted_issuers_cannot_be_set_before_bootstrap(ledger: InMemoryLedger, callers: Callers) -> None:
    refused(ledger.submit(callers.super_admin, "AdminContract:SetTrustedIssuerMSPs", '["Org1MSP"]'),
            "system is not bootstrapped")
    assert ledger.state == {}
