"""Request and response bodies of the API. The command request is a union discriminated by ``type``, so the
OpenAPI schema carries every payload's exact shape."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from gxlib.backend.commands import COMMANDS, CommandType
from gxlib.backend.ids import LEDGER_ID_ANCHORED, LEDGER_ID_DESCRIPTION, MAX_LEDGER_ID_LENGTH
from gxlib.backend.outbox import CommandRecord

IdempotencyKey = Annotated[str, Field(min_length=1, max_length=MAX_LEDGER_ID_LENGTH, pattern=LEDGER_ID_ANCHORED,
                                      description="client-chosen, " + LEDGER_ID_DESCRIPTION + "; a repeat by the "
                                                  "same caller returns the original command")]


def _command_model(kind: CommandType) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in kind.value.split("_")) + "Command"
    model: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        type=(Literal[kind.value], ...),  # type: ignore[arg-type]  # a Literal built at run time from the enum
        payload=(COMMANDS[kind].payload_model, ...),
        idempotencyKey=(IdempotencyKey, ...),
    )
    return model


COMMAND_MODELS = tuple(_command_model(kind) for kind in CommandType)
if TYPE_CHECKING:
    class CommandRequest(BaseModel):
        """What every model in COMMAND_MODELS has: the static view of the union below."""

        type: str
        payload: BaseModel
        idempotencyKey: str
else:
    CommandRequest = Annotated[Union[COMMAND_MODELS], Field(discriminator="type")]  # noqa: UP007


class CommandAccepted(BaseModel):
    commandId: str
    type: CommandType
    status: str
    idempotencyKey: str
    duplicate: bool = Field(description="true: the idempotency key was known; this is the original command")
    location: str


class CommandView(BaseModel):
    commandId: str
    type: CommandType
    status: str
    payload: dict[str, Any]
    idempotencyKey: str
    attempts: int
    fabricTxId: str | None
    blockNumber: int | None
    errorCode: str | None
    errorMessage: str | None
    createdAt: dt.datetime
    firstSubmittedAt: dt.datetime | None
    committedAt: dt.datetime | None
    nextAttemptAt: dt.datetime

    @classmethod
    def of(cls, r: CommandRecord) -> CommandView:
        return cls(commandId=r.id, type=CommandType(r.command_type), status=r.status, payload=r.payload,
                   idempotencyKey=r.idempotency_key, attempts=r.attempts, fabricTxId=r.fabric_tx_id,
                   blockNumber=r.block_number, errorCode=r.error_code, errorMessage=r.error_message,
                   createdAt=r.created_at, firstSubmittedAt=r.first_submitted_at, committedAt=r.committed_at,
                   nextAttemptAt=r.next_attempt_at)


class UserView(BaseModel):
    userId: str
    countryCode: str
    displayName: str
    userNumber: int
    genesisDistributed: bool
    genesisAmount: int | None
    genesisTier: int | None
    createdAt: dt.datetime


class AccountView(BaseModel):
    accountId: str
    balance: int = Field(description="precision units (uint64)")
    balanceCoins: int
    updatedAt: dt.datetime


class PoolView(BaseModel):
    poolId: str
    balance: int
    minted: int
    updatedAt: dt.datetime


class SystemStatusView(BaseModel):
    bootstrapped: bool
    userCount: int
    countries: list[str]
    pools: dict[str, int]
    checkpointBlock: int | None
    checkpointTxIndex: int | None
    outbox: dict[str, int]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
