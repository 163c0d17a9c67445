"""Typed errors of the Fabric client, each carrying what an operator needs: the tx ID, the peer, the gRPC status.

The classes map onto what the caller does next (SPEC §3.2):

- :class:`EndorseError` — the chaincode (or endorsement) refused the proposal: a business rejection, not retried.
- :class:`SubmitError` — the orderer did not accept the endorsed transaction.
- :class:`CommitError` — the transaction was ordered but the peer invalidated it; ``code`` says why
  (``MVCC_READ_CONFLICT`` → retry with a new tx ID, ``DUPLICATE_TXID`` → it was committed before).
- :class:`TransportError` (:class:`UnavailableError`, :class:`DeadlineExceededError`) — the connection failed;
  retry with backoff; these are what a circuit breaker counts.

:func:`error_from_rpc` turns a ``grpc.RpcError`` into one of these, reading the Gateway's per-peer details from
the ``grpc-status-details-bin`` trailer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2
from google.rpc import status_pb2

from gxlib.errors import GxError

_DETAILS_TRAILER = "grpc-status-details-bin"
# The Gateway wraps a chaincode's error as "chaincode response 500, <message>" (Fabric 2.4+).
_CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)
# The Gateway's per-peer detail when two endorsements disagree (fabric internal/pkg/gateway, endorsement plan).
_PAYLOAD_MISMATCH = "ProposalResponsePayloads do not match"


@dataclass(frozen=True)
class ErrorDetail:
    """What one peer or orderer said about a failed request."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.address} ({self.msp_id}): {self.message}"


class FabricError(GxError):
    """Any failure talking to Fabric. ``tx_id`` is the transaction concerned, if there is one."""

    def __init__(self, message: str, *, tx_id: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tx_id = tx_id


class RpcFailure(FabricError):
    """A gRPC call failed; carries the status code, the server's message and per-peer details."""

    def __init__(self, message: str, *, code: grpc.StatusCode, server_message: str = "",
                 details: tuple[ErrorDetail, ...] = (), tx_id: str | None = None, hint: str | None = None) -> None:
        if details:
            message += "\n" + "\n".join(f"  - {d}" for d in details)
        super().__init__(message, tx_id=tx_id, hint=hint)
        self.code = code
        self.server_message = server_message
        self.details = details


class TransportError(RpcFailure):
    """The connection to the Gateway failed or timed out; the request may or may not have been processed."""


class UnavailableError(TransportError):
    """The peer (or the orderer behind it) could not be reached (gRPC ``UNAVAILABLE``)."""


class DeadlineExceededError(TransportError):
    """No answer within the deadline (gRPC ``DEADLINE_EXCEEDED``)."""


class EndorseError(RpcFailure):
    """The proposal was not endorsed. ``chaincode_message`` is the chaincode's own error text, when it sent one."""

    @property
    def chaincode_status(self) -> int | None:
        for detail in self.details:
            match = _CHAINCODE_RESPONSE.search(detail.message)
            if match:
                return int(match.group(1))
        return None

    @property
    def chaincode_message(self) -> str:
        for detail in self.details:
            match = _CHAINCODE_RESPONSE.search(detail.message)
            if match:
                return match.group(2)
        match = _CHAINCODE_RESPONSE.search(self.server_message)
        return match.group(2) if match else self.server_message

    @property
    def payloads_differ(self) -> bool:
        """The endorsing peers answered but their results differ, and no chaincode refused.

        The state the chaincode read was not the same on every peer: typically one peer had committed a block the
        other had not yet (a transaction that reads what the previous one wrote, endorsed right after it committed
        on the Gateway's own peer). Nothing was decided; endorsing again with a new proposal is safe.
        """
        return self.chaincode_status is None and any(_PAYLOAD_MISMATCH in d.message for d in self.details)


class EvaluateError(EndorseError):
    """An evaluate (query) was refused; same details as an endorsement error."""


class SubmitError(RpcFailure):
    """The endorsed transaction was not accepted by the ordering service."""


class CommitStatusError(RpcFailure):
    """The commit status of a transaction could not be obtained."""


class EventsError(RpcFailure):
    """The event stream failed for a reason other than transport."""


class CommitError(FabricError):
    """The transaction was committed to a block but invalidated by the peers (validation code other than VALID)."""

    def __init__(self, tx_id: str, code: str, block_number: int) -> None:
        super().__init__(f"transaction {tx_id} failed to commit with status {code} (block {block_number})",
                         tx_id=tx_id, hint=_COMMIT_HINTS.get(code))
        self.code = code
        self.block_number = block_number


class ProposalResponseError(FabricError):
    """A peer answered a proposal sent straight to it (not through the Gateway) with a non-success status."""

    def __init__(self, peer: str, operation: str, status: int, message: str, *, tx_id: str | None = None) -> None:
        super().__init__(f"{operation} on {peer} failed with status {status}: {message}", tx_id=tx_id)
        self.peer = peer
        self.operation = operation
        self.status = status
        self.server_message = message


_COMMIT_HINTS = {
    "MVCC_READ_CONFLICT": "a key read by this transaction changed before it committed; retry with a new transaction",
    "PHANTOM_READ_CONFLICT": "a range read by this transaction changed before it committed; retry with a new "
                             "transaction",
    "DUPLICATE_TXID": "a transaction with this ID was committed before; look up the first one's status",
    "ENDORSEMENT_POLICY_FAILURE": "the endorsements do not satisfy the chaincode's endorsement policy",
}

_BY_OPERATION: dict[str, type[RpcFailure]] = {
    "endorse": EndorseError,
    "evaluate": EvaluateError,
    "submit": SubmitError,
    "commit status": CommitStatusError,
    "events": EventsError,
}


def error_details(error: grpc.RpcError) -> tuple[ErrorDetail, ...]:
    """The Gateway's per-peer ``ErrorDetail`` messages attached to a failed call (empty if there are none)."""
    trailers = _trailing_metadata(error)
    raw = next((value for key, value in trailers if key == _DETAILS_TRAILER), None)
    if not raw:
        return ()
    status = status_pb2.Status()
    status.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
    found = []
    for packed in status.details:
        detail = gateway_pb2.ErrorDetail()
        if packed.Unpack(detail):
            found.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
    return tuple(found)


def error_from_rpc(error: grpc.RpcError, operation: str, *, endpoint: str, tx_id: str | None = None) -> RpcFailure:
    """Map a failed gRPC call of ``operation`` (endorse, evaluate, submit, commit status, events) to a typed error.

    ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` become transport errors whatever the operation; everything else the
    error class of the operation.
    """
    code = _code(error)
    server_message = _details_text(error)
    details = error_details(error)
    where = f"{operation} via {endpoint}" + (f" for transaction {tx_id}" if tx_id else "")
    message = f"{where} failed: {code.name}: {server_message}"
    cls: type[RpcFailure]
    if code is grpc.StatusCode.UNAVAILABLE:
        cls = UnavailableError
        hint = "the Gateway peer or the node behind it is down or unreachable; retry with backoff"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        cls = DeadlineExceededError
        hint = "no answer in time; the request may still have been processed — check the transaction status"
    else:
        cls = _BY_OPERATION.get(operation, RpcFailure)
        hint = None
    return cls(message, code=code, server_message=server_message, details=details, tx_id=tx_id, hint=hint)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details_text(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    value = details() if callable(details) else None
    return str(value or "")


def _trailing_metadata(error: grpc.RpcError) -> list[tuple[str, str | bytes]]:
    trailing = getattr(error, "trailing_metadata", None)
    value = trailing() if callable(trailing) else None
    return [(item[0], item[1]) for item in value or ()]
