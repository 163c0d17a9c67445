"""The command table: every type maps to a real chaincode function with the right arguments and identity."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from gxchaincode.contracts.admin import AdminContract
from gxchaincode.contracts.governance import GovernanceContract
from gxchaincode.contracts.identity import IdentityContract
from gxchaincode.contracts.tokenomics import TokenomicsContract
from gxlib.backend.commands import COMMANDS, CommandType, FabricIdentity, command_spec, validate_payload
from gxlib.backend.errors import InvalidPayloadError
from gxlib.backend.settings import ApiRole
from tests.unit.backend.chaincode_events import RecordedHistory

CONTRACTS = {c.__name__: c for c in (AdminContract, GovernanceContract, IdentityContract, TokenomicsContract)}
EXAMPLES: dict[CommandType, dict[str, Any]] = {
    CommandType.BOOTSTRAP_SYSTEM: {},
    CommandType.INITIALIZE_COUNTRY_DATA: {"countries": [{"code": "FR", "name": "France"}, {"code": "IT"}]},
    CommandType.MINT: {"accountId": "a", "amount": 5, "remark": "r"},
    CommandType.CREATE_USER: {"userId": "u", "countryCode": "US", "displayName": "U"},
    CommandType.DISTRIBUTE_GENESIS: {"userId": "u"},
    CommandType.TRANSFER: {"fromId": "a", "toId": "b", "amount": 5, "remark": ""},
    CommandType.SUBMIT_PROPOSAL: {"proposalId": "p", "title": "t", "description": "d", "proposerId": "u"},
}


def test_there_are_the_seven_spec_commands() -> None:
    assert set(COMMANDS) == set(CommandType) and len(COMMANDS) == 7


@pytest.mark.parametrize("kind", list(CommandType))
def test_each_command_calls_an_existing_function_with_its_parameter_count(kind: CommandType) -> None:
    spec = command_spec(kind)
    contract, function = spec.function.split(":")
    method = getattr(CONTRACTS[contract], function)
    parameters = [p for p in inspect.signature(method).parameters if p not in {"self", "ctx"}]
    assert len(spec.chaincode_args(validate_payload(kind, EXAMPLES[kind]))) == len(parameters)


def test_identities_and_roles_follow_spec_3_1() -> None:
    admin = {CommandType.BOOTSTRAP_SYSTEM, CommandType.INITIALIZE_COUNTRY_DATA, CommandType.MINT}
    for kind, spec in COMMANDS.items():
        assert spec.identity is (FabricIdentity.SUPER_ADMIN if kind in admin else FabricIdentity.SERVICE)
        assert spec.api_role is (ApiRole.ADMIN if kind in admin else ApiRole.OPERATOR)


def test_argument_order_follows_the_chaincode() -> None:
    assert command_spec("SUBMIT_PROPOSAL").chaincode_args(EXAMPLES[CommandType.SUBMIT_PROPOSAL]) == [
        "p", "t", "d", "u"]
    assert command_spec("CREATE_USER").chaincode_args(EXAMPLES[CommandType.CREATE_USER]) == ["u", "US", "U"]
    assert command_spec("TRANSFER").chaincode_args(EXAMPLES[CommandType.TRANSFER]) == ["a", "b", "5", ""]


def test_the_commands_run_on_the_real_chaincode(recorded_history: RecordedHistory) -> None:
    names = [e.event_name for e in recorded_history.events]
    assert names == ["SystemBootstrapped", "CountryInitialized", "UserCreated", "UserCreated", "GenesisDistributed",
                     "GenesisDistributed", "TransferEvent", "CoinsMinted", "ProposalSubmitted"]


@pytest.mark.parametrize(("kind", "payload", "parameter"), [
    ("MINT", {"accountId": "a", "amount": 2**64, "remark": "r"}, "amount"),
    ("MINT", {"accountId": "a b", "amount": 1, "remark": "r"}, "accountId"),
    ("TRANSFER", {"fromId": "a", "toId": "b", "amount": -1}, "amount"),
    ("INITIALIZE_COUNTRY_DATA", {"countries": []}, "countries"),
    ("INITIALIZE_COUNTRY_DATA", {"countries": [{"code": "US"}, {"code": "US"}]}, "payload"),
    ("CREATE_USER", {"userId": "u", "countryCode": "us"}, "countryCode"),
    ("SUBMIT_PROPOSAL", {"proposalId": "p", "title": "x" * 201, "description": "d", "proposerId": "u"}, "title"),
    ("NOPE", {}, "type"),
])
def test_invalid_payloads_name_the_parameter(kind: str, payload: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        validate_payload(kind, payload)
    assert info.value.parameter == parameter or (parameter == "payload" and "twice" in info.value.reason)
