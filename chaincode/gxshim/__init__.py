"""Our Fabric chaincode runtime: a chaincode-as-a-service gRPC server, the shim protocol, and contracts.

The pieces, in the order a transaction meets them: :mod:`server` (the peer dials it), :mod:`session` (one
stream: registration, single writer, routing of the peer's answers), :mod:`stub` (ledger calls of one
transaction), :mod:`contract` (``Contract:Function`` routing and argument parsing), :mod:`serve`
(``python -m gxshim``), :mod:`process` (a server as a local child process). Private data collections and
rich (CouchDB) queries are not supported.
"""

from gxshim.contract import Context, Contract, ContractChaincode, UInt64, evaluate, transaction
from gxshim.errors import (
    ArgumentError,
    ChaincodeError,
    InvalidKeyError,
    PeerError,
    ResponseTimeoutError,
    ShimError,
    StreamClosedError,
    UnknownFunctionError,
)
from gxshim.identity import ClientIdentity
from gxshim.response import Chaincode, Response
from gxshim.server import ChaincodeServer, ServerOptions, TLSConfig
from gxshim.stub import KV, ChaincodeStub, HistoryQueryIterator, KeyModification, PageInfo, StateQueryIterator

__all__ = [
    "KV",
    "ArgumentError",
    "Chaincode",
    "ChaincodeError",
    "ChaincodeServer",
    "ChaincodeStub",
    "ClientIdentity",
    "Context",
    "Contract",
    "ContractChaincode",
    "HistoryQueryIterator",
    "InvalidKeyError",
    "KeyModification",
    "PageInfo",
    "PeerError",
    "Response",
    "ResponseTimeoutError",
    "ServerOptions",
    "ShimError",
    "StateQueryIterator",
    "StreamClosedError",
    "TLSConfig",
    "UInt64",
    "UnknownFunctionError",
    "evaluate",
    "transaction",
]
