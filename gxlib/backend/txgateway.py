"""The submitter's seam to Fabric: a small protocol the Fabric Gateway client implements.

It follows the Gateway's fine-grained flow (proposal → endorse → submit → commit status) so that each step
can be retried on its own, and so that the transaction ID and signed envelope exist — and are stored in the
outbox — before anything reaches the orderer:

1. ``prepare(request)``: build the proposal (the tx ID is fixed here, from nonce + creator), endorse it on the
   peers with the identity the request names, and return the signed transaction envelope. Nothing is on the
   ledger yet. A chaincode error raises :class:`EndorsementRejectedError`.
2. ``submit(prepared)``: send that envelope to the orderer. Re-sending the *same* envelope is safe: Fabric
   refuses a second transaction with a committed ID (``DUPLICATE_TXID``).
3. ``status(tx_id, timeout_s)``: the commit status of a transaction *by its ID*; ``UNKNOWN`` when the peer has
   not seen it committed within ``timeout_s`` (never sent, or still in flight).

Transport failures (unavailable, deadline exceeded) of any step raise :class:`TransportError`; they count
towards the circuit breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gxlib.backend.commands import FabricIdentity
from gxlib.backend.errors import BackendError

# Validation codes (fabric-protos peer.TxValidationCode names) after which a NEW transaction may succeed.
RETRY_WITH_NEW_TX_CODES = frozenset({"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"})


@dataclass(frozen=True)
class TxRequest:
    """What to invoke: ``function`` is ``Contract:Function``, ``args`` its string arguments."""

    command_id: str
    function: str
    args: tuple[str, ...]
    identity: FabricIdentity


@dataclass(frozen=True)
class PreparedTx:
    """An endorsed, signed transaction that has not been sent yet."""

    tx_id: str
    envelope: bytes


class TxState(StrEnum):
    COMMITTED = "committed"  # valid, in block ``block_number``
    INVALID = "invalid"  # in a block but invalidated; ``validation_code`` says why
    UNKNOWN = "unknown"  # not (yet) committed as far as the peer knows


@dataclass(frozen=True)
class TxStatus:
    tx_id: str
    state: TxState
    block_number: int | None = None
    validation_code: str | None = None  # e.g. VALID, MVCC_READ_CONFLICT, ENDORSEMENT_POLICY_FAILURE

    @property
    def retry_with_new_tx(self) -> bool:
        return self.state is TxState.INVALID and self.validation_code in RETRY_WITH_NEW_TX_CODES


class TxGatewayError(BackendError):
    """Root of the errors a :class:`TxGateway` raises; carries the command ID and tx ID when known."""

    def __init__(self, message: str, *, command_id: str | None = None, tx_id: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.command_id = command_id
        self.tx_id = tx_id


class EndorsementRejectedError(TxGatewayError):
    """The chaincode returned an error while endorsing: a business rejection, never retried."""

    def __init__(self, chaincode_message: str, *, command_id: str | None = None, tx_id: str | None = None,
                 status: int = 500) -> None:
        super().__init__(f"chaincode rejected the transaction: {chaincode_message}", command_id=command_id,
                         tx_id=tx_id)
        self.chaincode_message = chaincode_message
        self.status = status


class EndorsementMismatchError(TxGatewayError):
    """The endorsing peers answered but their results differ ("ProposalResponsePayloads do not match": the state
    the chaincode read moved between the two endorsements, e.g. one peer had committed a block the other had not
    yet). Nothing was decided and the Gateway is reachable: endorse again later with a new proposal."""

    def __init__(self, message: str, *, command_id: str | None = None, tx_id: str | None = None) -> None:
        super().__init__(f"endorsements differ: {message}", command_id=command_id, tx_id=tx_id,
                         hint="transient under contention; the submitter endorses again with a new transaction")


class TransportError(TxGatewayError):
    """The gateway could not be reached or did not answer in time (gRPC UNAVAILABLE / DEADLINE_EXCEEDED)."""

    def __init__(self, message: str, *, code: str = "UNAVAILABLE", command_id: str | None = None,
                 tx_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}", command_id=command_id, tx_id=tx_id,
                         hint="the submitter retries with backoff; check the peer's Gateway endpoint")
        self.code = code


class TxGateway(Protocol):
    """What the outbox-submitter needs from Fabric. Implementations must be safe to call concurrently."""

    async def prepare(self, request: TxRequest) -> PreparedTx:
        """Endorse ``request`` and return the signed envelope (tx ID fixed). Raises EndorsementRejectedError,
        TransportError."""
        ...

    async def submit(self, prepared: PreparedTx) -> None:
        """Send the envelope to the orderer (idempotent per tx ID). Raises TransportError."""
        ...

    async def status(self, tx_id: str, timeout_s: float) -> TxStatus:
        """Commit status of ``tx_id``, waiting up to ``timeout_s`` for it to commit. Raises TransportError."""
        ...
