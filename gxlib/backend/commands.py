"""The seven command types of SPEC §3.1: payload models, the chaincode function each calls, and with which
Fabric identity. Payload validation mirrors the chaincode's argument checks (uint64 amounts, non-empty IDs),
so that nothing the chaincode would reject for its shape ever reaches the outbox."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from gxlib.backend.errors import InvalidPayloadError
from gxlib.backend.ids import LEDGER_ID_ANCHORED, LEDGER_ID_DESCRIPTION, MAX_LEDGER_ID_LENGTH
from gxlib.backend.settings import ApiRole

UINT64_MAX = 2**64 - 1
MAX_TEXT = 1000

# 1 ≤ amount ≤ 2**64-1 in precision units, a JSON integer (not a string, float or boolean). JSON's grammar gives
# an integer one canonical decimal form (no "+", no leading zeros, no spaces inside; "-0" and "1e2" are not
# integers here), which is the form the chaincode gets (str(int)); amount strings are refused, so "0500" or
# " 500" never arrive.
Amount = Annotated[StrictInt, Field(ge=1, le=UINT64_MAX, description="precision units (1 coin = 10^8), uint64; "
                                                                      "a JSON integer")]
# Ledger IDs: the one rule of gxlib.backend.ids (SPEC §9).
LedgerId = Annotated[str, Field(min_length=1, max_length=MAX_LEDGER_ID_LENGTH, pattern=LEDGER_ID_ANCHORED,
                                description=LEDGER_ID_DESCRIPTION)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2, upper case")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]


class CommandType(StrEnum):
    BOOTSTRAP_SYSTEM = "BOOTSTRAP_SYSTEM"
    INITIALIZE_COUNTRY_DATA = "INITIALIZE_COUNTRY_DATA"
    MINT = "MINT"
    CREATE_USER = "CREATE_USER"
    DISTRIBUTE_GENESIS = "DISTRIBUTE_GENESIS"
    TRANSFER = "TRANSFER"
    SUBMIT_PROPOSAL = "SUBMIT_PROPOSAL"


class FabricIdentity(StrEnum):
    """Which of the submitter's Fabric identities signs the transaction (SPEC §3.1)."""

    SUPER_ADMIN = "super_admin"
    SERVICE = "service"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="after")
    def _no_nul_characters(self) -> Payload:
        # Fabric args and PostgreSQL text both choke on NUL; refuse it here rather than fail later.
        for name, value in self:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name} must not contain NUL characters")
        return self


class BootstrapSystemPayload(Payload):
    pass


class CountryEntry(Payload):
    code: CountryCode
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")] | None = None


class InitializeCountryDataPayload(Payload):
    countries: Annotated[list[CountryEntry], Field(min_length=1, max_length=250)]

    @model_validator(mode="after")
    def _codes_are_unique(self) -> InitializeCountryDataPayload:
        codes = [c.code for c in self.countries]
        if len(set(codes)) != len(codes):
            raise ValueError("countries lists a code twice")
        return self


class MintPayload(Payload):
    accountId: LedgerId
    amount: Amount
    remark: NonEmptyText


class CreateUserPayload(Payload):
    userId: LedgerId
    countryCode: CountryCode
    displayName: Text = ""


class DistributeGenesisPayload(Payload):
    userId: LedgerId


class TransferPayload(Payload):
    fromId: LedgerId
    toId: LedgerId
    amount: Amount
    remark: Text = ""

    @model_validator(mode="after")
    def _distinct_accounts(self) -> TransferPayload:
        if self.fromId == self.toId:
            raise ValueError("fromId and toId must be different accounts")
        return self


class SubmitProposalPayload(Payload):
    proposalId: LedgerId
    title: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
    description: Annotated[str, Field(min_length=1, max_length=10_000, pattern=r"\S")]
    proposerId: LedgerId


def _countries_json(p: InitializeCountryDataPayload) -> list[str]:
    entries = [{"code": c.code, "name": c.name or c.code} for c in p.countries]
    return [json.dumps(entries, separators=(",", ":"))]


@dataclass(frozen=True)
class CommandSpec:
    """How a command type becomes a chaincode transaction."""

    type: CommandType
    function: str  # Contract:Function
    identity: FabricIdentity
    api_role: ApiRole  # the least API role that may submit it
    payload_model: builtins.type[Payload]  # `type` alone is the field above
    to_args: Callable[[Any], list[str]]

    def chaincode_args(self, payload: dict[str, Any]) -> list[str]:
        """The string arguments of the chaincode function, in its parameter order."""
        return self.to_args(self.payload_model.model_validate(payload, strict=False))


COMMANDS: dict[CommandType, CommandSpec] = {spec.type: spec for spec in (
    CommandSpec(CommandType.BOOTSTRAP_SYSTEM, "AdminContract:BootstrapSystem", FabricIdentity.SUPER_ADMIN,
                ApiRole.ADMIN, BootstrapSystemPayload, lambda p: []),
    CommandSpec(CommandType.INITIALIZE_COUNTRY_DATA, "AdminContract:InitializeCountryData", FabricIdentity.SUPER_ADMIN,
                ApiRole.ADMIN, InitializeCountryDataPayload, _countries_json),
    CommandSpec(CommandType.MINT, "TokenomicsContract:Mint", FabricIdentity.SUPER_ADMIN, ApiRole.ADMIN,
                MintPayload, lambda p: [p.accountId, str(p.amount), p.remark]),
    CommandSpec(CommandType.CREATE_USER, "IdentityContract:CreateUser", FabricIdentity.SERVICE, ApiRole.OPERATOR,
                CreateUserPayload, lambda p: [p.userId, p.countryCode, p.displayName]),
    CommandSpec(CommandType.DISTRIBUTE_GENESIS, "TokenomicsContract:DistributeGenesis", FabricIdentity.SERVICE,
                ApiRole.OPERATOR, DistributeGenesisPayload, lambda p: [p.userId]),
    CommandSpec(CommandType.TRANSFER, "TokenomicsContract:Transfer", FabricIdentity.SERVICE, ApiRole.OPERATOR,
                TransferPayload, lambda p: [p.fromId, p.toId, str(p.amount), p.remark]),
    CommandSpec(CommandType.SUBMIT_PROPOSAL, "GovernanceContract:SubmitProposal", FabricIdentity.SERVICE,
                ApiRole.OPERATOR, SubmitProposalPayload,
                lambda p: [p.proposalId, p.title, p.description, p.proposerId]),
)}


def command_spec(command_type: CommandType | str) -> CommandSpec:
    return COMMANDS[CommandType(command_type)]


def validate_payload(command_type: CommandType | str, payload: Any) -> dict[str, Any]:
    """The payload in canonical form (what the outbox stores), or :class:`InvalidPayloadError` naming the
    first offending parameter."""
    try:
        kind = CommandType(command_type)
    except ValueError:
        raise InvalidPayloadError(str(command_type), "type", "unknown command type") from None
    try:
        model = COMMANDS[kind].payload_model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        parameter = ".".join(str(part) for part in first["loc"]) or "payload"
        raise InvalidPayloadError(kind.value, parameter, first["msg"]) from None
    return model.model_dump(mode="json", exclude_none=True)
