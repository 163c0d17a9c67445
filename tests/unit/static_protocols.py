"""Static protocol checks: each implementation, and each test fake, returned as the protocol it stands in for.

Nothing here runs. mypy checks this module (``make typecheck``; tests/unit/test_typecheck.py runs it too), so a
method whose parameters or return type drift from its protocol fails the build. ``isinstance`` against a
``runtime_checkable`` protocol would only compare method names.
"""

from __future__ import annotations

from gxlib.backend.arrivals import CommandArrivals, PostgresArrivals
from gxlib.backend.eventsource import EventSource
from gxlib.backend.fabric_events import FabricEventSource
from gxlib.backend.fabric_tx import FabricTxGateway
from gxlib.backend.txgateway import TxGateway
from gxlib.fabric.checkpoint import Checkpointer, FileCheckpointer, InMemoryCheckpointer
from gxlib.fabric.signer import EcdsaSigner, Signer
from gxshim.contract import ContractChaincode
from gxshim.response import Chaincode
from gxshim.session import StreamSession
from gxshim.stub import PeerLink
from tests.unit.backend.chaincode_events import ListEventSource
from tests.unit.backend.fakefabric import FakeFabric
from tests.unit.backend.helpers import FakeArrivals


def postgres_arrivals_are_command_arrivals(arrivals: PostgresArrivals) -> CommandArrivals:
    return arrivals


def fake_arrivals_are_command_arrivals(arrivals: FakeArrivals) -> CommandArrivals:
    return arrivals


def fake_fabric_is_a_tx_gateway(fake: FakeFabric) -> TxGateway:
    return fake


def fabric_tx_gateway_is_a_tx_gateway(gateway: FabricTxGateway) -> TxGateway:
    return gateway


def list_event_source_is_an_event_source(source: ListEventSource) -> EventSource:
    return source


def fabric_event_source_is_an_event_source(source: FabricEventSource) -> EventSource:
    return source


def in_memory_checkpointer_is_a_checkpointer(checkpointer: InMemoryCheckpointer) -> Checkpointer:
    return checkpointer


def file_checkpointer_is_a_checkpointer(checkpointer: FileCheckpointer) -> Checkpointer:
    return checkpointer


def ecdsa_signer_is_a_signer(signer: EcdsaSigner) -> Signer:
    return signer


def stream_session_is_a_peer_link(session: StreamSession) -> PeerLink:
    return session


def contract_chaincode_is_a_chaincode(chaincode: ContractChaincode) -> Chaincode:
    return chaincode
