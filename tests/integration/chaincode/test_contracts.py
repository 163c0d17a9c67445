"""The GX contracts on the devnet's real peers, through the Gateway, as the super admin and the service
identity: success paths, validations with their exact messages, roles, events against their schemas."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from gxchaincode import events
from gxchaincode.amounts import PRECISION, UINT64_MAX
from gxchaincode.settings import BOOTSTRAP_POOLS
from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet.network import Devnet
from gxlib.fabric.errors import EndorseError
from gxlib.fabric.gateway import Gateway
from tests.integration.gx_fixtures import GxClient

pytestmark = pytest.mark.integration


def refused(client: GxClient, message: str, function: str, *args: str) -> EndorseError:
    height = client.network.block_height()
    with pytest.raises(EndorseError) as caught:
        client.submit(function, *args)
    assert message in caught.value.chaincode_message, caught.value.chaincode_message
    assert client.network.block_height() == height, "a refused transaction is never ordered"
    return caught.value


def test_bootstrap_mints_the_four_pools_and_succeeds_once(bootstrapped: dict[str, Any], super_admin: GxClient,
                                                          service: GxClient) -> None:
    # (the fixture checked the pool balances right after the bootstrap)
    assert [(m["accountId"], m["amountCoins"]) for m in bootstrapped["mints"]] == list(BOOTSTRAP_POOLS)
    assert bootstrapped["countries"] == ["US", "CA", "GB"]
    refused(super_admin, "system already bootstrapped", "AdminContract:BootstrapSystem")
    assert service.evaluate("AdminContract:GetSystemStatus")["bootstrapped"] is True


def test_only_the_trusted_issuer_msps_admin_and_attribute_holder_may_mint(
        devnet: Devnet, bootstrapped: dict[str, Any], super_admin: GxClient, service: GxClient) -> None:
    """SPEC §2.1 on the real peers: the bootstrapping super admin's MSP (Org1MSP) is the trusted issuer, so
    Org2's MSP admin is not a super admin; Org1's admin and the attribute holder are."""
    assert service.evaluate("AdminContract:GetSystemStatus")["trustedIssuerMSPs"] == ["Org1MSP"]
    org1_admin, org2_admin = GxClient(devnet, "admin:org1"), GxClient(devnet, "admin:org2")
    try:
        error = refused(org2_admin, "requires role gx_super_admin (certificate attribute gx_super_admin=true or an "
                        "MSP admin) of a trusted issuer MSP (Org1MSP)", "TokenomicsContract:Mint", "trust-org2",
                        "100", "not trusted")
        assert "Org2MSP is not a trusted issuer MSP" in error.chaincode_message
        assert error.chaincode_status == 403
        refused(org2_admin, "Org2MSP is not a trusted issuer MSP", "AdminContract:SetTrustedIssuerMSPs",
                '["Org2MSP"]')
        org1_admin.submit("TokenomicsContract:Mint", "trust-org1", "100", "trusted MSP admin")
        super_admin.submit("TokenomicsContract:Mint", "trust-org1", "100", "attribute holder")
        assert service.balance("trust-org1") == 200
        with pytest.raises(EndorseError, match="account trust-org2 does not exist"):
            service.evaluate("TokenomicsContract:GetBalance", "trust-org2")
    finally:
        org1_admin.close()
        org2_admin.close()


def test_mint_by_the_service_identity_is_refused_and_the_ledger_is_unchanged(
        bootstrapped: dict[str, Any], service: GxClient) -> None:
    error = refused(service, "access denied: TokenomicsContract:Mint requires role gx_super_admin",
                    "TokenomicsContract:Mint", "mallory", "100", "no")
    assert error.chaincode_status == 403
    with pytest.raises(EndorseError, match="account mallory does not exist"):
        service.evaluate("TokenomicsContract:GetBalance", "mallory")


@pytest.mark.parametrize(("args", "message"), [
    (("", "0", ""), "accountID cannot be empty"),
    (("acct", "0", ""), "amount must be greater than zero"),
    (("acct", "-3", "r"), "amount must be greater than zero"),
    (("acct", "ten", "r"), "amount must be a whole number of precision units"),
    (("acct", str(UINT64_MAX + 1), "r"), "exceeds the uint64 maximum"),
    (("acct", "100", ""), "remark cannot be empty - must document reason for minting"),
])
def test_mint_validates_in_order_with_the_exact_message(super_admin: GxClient, args: tuple[str, ...],
                                                        message: str) -> None:
    refused(super_admin, message, "TokenomicsContract:Mint", *args)


@pytest.mark.parametrize(("function", "args", "message"), [
    ("NoSuchContract:Mint", (), "unknown function 'NoSuchContract:Mint'"),
    ("TokenomicsContract:Burn", (), "unknown function 'TokenomicsContract:Burn'"),
    ("TokenomicsContract:Mint", ("a", "1"), "expects 3 argument(s) (accountID, amount, remark), got 2"),
    ("IdentityContract:CreateUser", ("", "US", "x"), "userID cannot be empty"),
])
def test_bad_calls_name_the_problem(super_admin: GxClient, function: str, args: tuple[str, ...],
                                    message: str) -> None:
    refused(super_admin, message, function, *args)


def test_mint_credits_the_account(super_admin: GxClient) -> None:
    event = super_admin.submit("TokenomicsContract:Mint", "peer-alice", str(3 * PRECISION), "integration")
    assert event is not None and event["amountCoins"] == 3
    assert super_admin.balance("peer-alice") == 3 * PRECISION


def test_users_genesis_transfers_and_proposals(bootstrapped: dict[str, Any], super_admin: GxClient,
                                               service: GxClient) -> None:
    for user in ("peer-u1", "peer-u2"):
        service.submit("IdentityContract:CreateUser", user, "US", user)
    refused(service, "user peer-u1 already exists", "IdentityContract:CreateUser", "peer-u1", "CA", "again")
    refused(service, "country ZZ is not initialised", "IdentityContract:CreateUser", "peer-u3", "ZZ", "x")
    genesis = service.submit("TokenomicsContract:DistributeGenesis", "peer-u1")
    assert genesis is not None and genesis["amount"] == service.balance("peer-u1")
    refused(service, "genesis allocation already distributed to user peer-u1",
            "TokenomicsContract:DistributeGenesis", "peer-u1")
    refused(service, "insufficient balance", "TokenomicsContract:Transfer", "peer-u1", "peer-u2",
            str(genesis["amount"] + 1), "too much")
    refused(service, "does not own account peer-alice", "TokenomicsContract:Transfer", "peer-alice", "peer-u2",
            "1", "not mine")
    service.submit("TokenomicsContract:Transfer", "peer-u1", "peer-u2", str(PRECISION), "rent")
    assert service.balance("peer-u2") == PRECISION
    proposal = service.submit("GovernanceContract:SubmitProposal", "peer-p1", "Title", "Description", "peer-u2")
    assert proposal is not None and proposal["proposerId"] == "peer-u2"


def test_countries_initialise_idempotently(super_admin: GxClient) -> None:
    first = super_admin.submit("AdminContract:InitializeCountryData", '["DE"]')
    again = super_admin.submit("AdminContract:InitializeCountryData", '["DE", "FR"]')
    assert first is not None and again is not None
    assert first["countries"] == ["DE"] and again == {**again, "countries": ["FR"], "alreadyInitialized": ["DE"]}


async def _events(devnet: Devnet, until_block: int) -> list[Any]:
    env = devnet.environment()
    found = []
    async with Gateway.from_environment(env, "service") as gateway:
        stream = gateway.network(env["channel"]).chaincode_events("gxtv3", start_block=0)
        async for event in stream:
            found.append(event)
            if event.block_number >= until_block:
                break
    return found


def test_every_emitted_event_matches_its_versioned_schema(devnet: Devnet, service: GxClient,
                                                          gx_deployed: DeployReport) -> None:
    marker = service.submit("IdentityContract:CreateUser", "peer-schema-marker", "GB", "last event")
    assert marker is not None
    height = service.network.block_height()
    seen = asyncio.run(asyncio.wait_for(_events(devnet, height - 1), timeout=60))
    assert len({e.event_name for e in seen}) >= 5
    for event in seen:
        payload = json.loads(event.payload)
        assert payload["eventType"] == event.event_name
        jsonschema.validate(payload, events.load_schema(event.event_name))
