"""The result a chaincode returns for one transaction (Fabric's ``peer.Response``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fabric_protos.peer import proposal_response_pb2

if TYPE_CHECKING:  # the stub returns Responses from invoke_chaincode
    from gxshim.stub import ChaincodeStub

OK = 200
ERROR_THRESHOLD = 400  # statuses from here on are errors for the endorser
ERROR = 500


@dataclass(frozen=True)
class Response:
    """Status, message and payload of a transaction; status >= 400 makes the endorsement fail with ``message``."""

    status: int = OK
    message: str = ""
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status < ERROR_THRESHOLD

    def to_proto(self) -> proposal_response_pb2.Response:
        return proposal_response_pb2.Response(status=self.status, message=self.message, payload=self.payload)


def success(payload: bytes = b"") -> Response:
    return Response(OK, "", payload)


def error(message: str, status: int = ERROR) -> Response:
    return Response(status, message, b"")


class Chaincode(Protocol):
    """What the runtime calls: ``init`` for an INIT message (``--isInit``), ``invoke`` for a TRANSACTION.

    Both run on a worker thread; they may block on the stub's state calls. An exception escaping them becomes
    an error response (status 500) carrying the exception's message.
    """

    def init(self, stub: ChaincodeStub) -> Response: ...

    def invoke(self, stub: ChaincodeStub) -> Response: ...
