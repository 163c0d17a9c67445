"""The shim against a protocol-level fake peer over real gRPC on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fabric_protos.peer import chaincode_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2

from gxshim import (
    ChaincodeServer,
    Context,
    Contract,
    ContractChaincode,
    PeerError,
    ServerOptions,
    ShimError,
    StreamClosedError,
    evaluate,
    transaction,
)
from gxshim.session import StreamSession, _TxSlot
from gxshim.stub import ChaincodeStub
from tests.integration.testcc import TestContract
from tests.unit.shim.conftest import PACKAGE_ID, make_cert
from tests.unit.shim.fakepeer import FakePeer, signed_proposal

T = shim_pb2.ChaincodeMessage.Type
Serve = Callable[..., ChaincodeServer]
Peers = Callable[..., FakePeer]


class Probe(Contract):
    """Functions that make several sequential requests and report what they saw."""

    entered = threading.Event()
    release = threading.Event()

    @transaction
    def Transfer(self, ctx: Context, src: str, dst: str, amount: int) -> dict[str, int]:
        a = int(ctx.stub.get_state(src) or b"0")
        b = int(ctx.stub.get_state(dst) or b"0")
        ctx.stub.put_state(src, str(a - amount))
        ctx.stub.put_state(dst, str(b + amount))
        return {src: a - amount, dst: b + amount}

    @evaluate
    def Read(self, ctx: Context, key: str) -> str:
        return (ctx.stub.get_state(key) or b"").decode()

    @evaluate
    def ReadCatching(self, ctx: Context, key: str) -> str:
        try:
            ctx.stub.get_state(key)
        except PeerError as exc:
            return f"caught {exc.request}: {exc.peer_message}"
        return "no error"

    @evaluate
    def Blocked(self, ctx: Context, key: str) -> str:
        Probe.entered.set()
        return (ctx.stub.get_state(key) or b"").decode()


def test_chaincode_registers_with_the_package_id_and_becomes_ready(serve: Serve, peers: Peers) -> None:
    peer = peers(serve())
    assert peer.registered_name == PACKAGE_ID
    assert peer.received[0].type == T.REGISTER


def test_put_then_get_roundtrip_and_completed_carries_payload(serve: Serve, peers: Peers) -> None:
    peer = peers(serve())
    put = peer.invoke("TestContract:Put", "k1", "v1")
    assert put.type == T.COMPLETED and put.response.status == 200
    assert peer.state["k1"] == b"v1"
    got = peer.invoke("TestContract:Get", "k1")
    assert got.response.payload == b"v1"
    assert peer.invoke("TestContract:Del", "k1").response.status == 200
    assert "k1" not in peer.state


def test_two_hundred_concurrent_transactions_on_one_stream_all_complete_correctly(
        serve: Serve, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
    writers: set[int] = set()
    original = StreamSession.outbound

    def recording_outbound(self: StreamSession) -> Iterator[shim_pb2.ChaincodeMessage]:
        for msg in original(self):
            writers.add(threading.get_ident())
            yield msg

    monkeypatch.setattr(StreamSession, "outbound", recording_outbound)
    workers: set[int] = set()
    monkeypatch.setattr(Probe, "before_transaction", lambda self, ctx, fn: workers.add(threading.get_ident()))
    server = serve(ContractChaincode([Probe()]), ServerOptions(max_workers=64, response_timeout_s=10))
    peer = peers(server)
    for i in range(200):
        peer.state[f"src{i}"] = b"100"
    keys = [peer.start_tx("Probe:Transfer", f"src{i}", f"dst{i}", str(i)) for i in range(200)]
    results = [peer.result(k, timeout_s=30) for k in keys]
    assert [json.loads(r.response.payload) for r in results] == [{f"src{i}": 100 - i, f"dst{i}": i}
                                                                 for i in range(200)]
    assert peer.violations == []  # never two requests pending for one tx, never a reply for an unknown tx
    assert peer.state["dst199"] == b"199"
    assert len(server.sessions) == 1
    assert len(workers) > 1  # transactions ran on many threads ...
    assert len(writers) == 1  # ... and every message left through one writer


def test_answers_are_routed_by_channel_and_txid(serve: Serve, peers: Peers) -> None:
    peer = peers(serve(ContractChaincode([Probe()])))
    # The same txid on two channels is two transactions; each must get its own answers.
    peer.state["k"] = b"value"
    keys = [peer.start_tx("Probe:Read", "k", channel=f"ch{i}", txid="same-txid") for i in range(20)]
    for key in keys:
        assert peer.result(key).response.payload == b"value"
    assert peer.violations == []


def test_duplicate_txid_on_one_channel_is_refused_while_the_first_runs(serve: Serve, peers: Peers) -> None:
    peer = peers(serve(ContractChaincode([Probe()])), respond=False)
    Probe.entered.clear()
    first = peer.start_tx("Probe:Blocked", "k", txid="dup")
    assert Probe.entered.wait(5)
    second = peer.start_tx("Probe:Blocked", "k", txid="dup")
    result = peer.result(second)
    assert result.type == T.ERROR and b"already running" in result.raw.payload
    del first


def test_peer_error_reply_raises_in_the_chaincode(serve: Serve, peers: Peers) -> None:
    peer = peers(serve(ContractChaincode([Probe()])))
    peer.error_for = lambda msg: "no ledger context" if msg.type == T.GET_STATE else None
    caught = peer.invoke("Probe:ReadCatching", "k")
    assert caught.response.payload == b"caught GET_STATE: no ledger context"
    uncaught = peer.invoke("Probe:Read", "k")
    assert uncaught.type == T.COMPLETED
    assert uncaught.response.status == 500
    assert "peer refused GET_STATE: no ledger context" in uncaught.response.message


def test_range_query_follows_the_peer_batches(serve: Serve, peers: Peers) -> None:
    peer = peers(serve(), batch_size=3)
    for i in range(10):
        peer.state[f"r{i:02d}"] = str(i).encode()
    peer.state["s00"] = b"outside"
    rows = json.loads(peer.invoke("TestContract:Range", "r", "s").response.payload)
    assert rows == [[f"r{i:02d}", str(i)] for i in range(10)]
    nexts = [m for m in peer.received if m.type == T.QUERY_STATE_NEXT]
    assert len(nexts) == 3  # 10 rows in batches of 3


def test_iterator_closed_early_sends_query_state_close(serve: Serve, peers: Peers) -> None:
    class Early(Contract):
        @evaluate
        def First(self, ctx: Context) -> str:
            with ctx.stub.get_state_by_range("", "") as results:
                return next(iter(results)).key

    peer = peers(serve(ContractChaincode([Early()])), batch_size=2)
    for i in range(5):
        peer.state[f"k{i}"] = b"x"
    assert peer.invoke("Early:First").response.payload == b"k0"
    assert [m.type for m in peer.received].count(T.QUERY_STATE_CLOSE) == 1


def test_event_creator_timestamp_and_transient_reach_the_chaincode(serve: Serve, peers: Peers) -> None:
    peer = peers(serve())
    cert = make_cert(attrs={"gx_super_admin": "true", "hf.EnrollmentID": "SuperAdmin"})
    proposal = signed_proposal("Org1MSP", cert, txid="tx-who", channel="ch", transient={"secret": b"s3"})
    who = json.loads(peer.invoke("TestContract:Whoami", txid="tx-who", proposal=proposal).response.payload)
    assert who["mspId"] == "Org1MSP"
    assert who["ous"] == ["client", "org1"]
    assert who["attrs"] == {"gx_super_admin": "true", "hf.EnrollmentID": "SuperAdmin"}
    info = json.loads(peer.invoke("TestContract:TxInfo", txid="tx-info", proposal=signed_proposal(
        "Org1MSP", cert, txid="tx-info", channel="ch", transient={"secret": b"s3"})).response.payload)
    assert info["transient"] == {"secret": "s3"}
    emitted = peer.invoke("TestContract:Emit", "e1", "hello", txid="tx-ev",
                          proposal=signed_proposal("Org1MSP", cert, txid="tx-ev", channel="ch"))
    assert emitted.event is not None
    name, payload = emitted.event
    assert name == "TestEvent"  # the later SetEvent replaced the earlier one
    assert json.loads(payload)["payload"] == "hello"


def test_init_message_is_answered(serve: Serve, peers: Peers) -> None:
    peer = peers(serve())
    result = peer.invoke(init=True)
    assert result.type == T.COMPLETED and result.response.status == 200


def test_stream_loss_fails_waiting_transactions_and_a_new_stream_registers(serve: Serve, peers: Peers) -> None:
    server = serve(ContractChaincode([Probe()]), ServerOptions(response_timeout_s=30))
    first = peers(server, respond=False)
    Probe.entered.clear()
    first.start_tx("Probe:Blocked", "k")
    assert Probe.entered.wait(5)
    first.close()  # the peer restarts: the stream breaks with a transaction waiting on GET_STATE
    deadline = time.monotonic() + 5
    while server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.sessions == []
    second = peers(server)
    assert second.registered_name == PACKAGE_ID
    second.state["k"] = b"again"
    assert second.invoke("Probe:Read", "k").response.payload == b"again"


def test_request_after_stream_closed_raises_stream_closed() -> None:
    with ThreadPoolExecutor(1) as pool:
        session = StreamSession(PACKAGE_ID, ContractChaincode([TestContract()]), pool)
        outside = ChaincodeStub(session, "c", "not-running", chaincode_pb2.ChaincodeInput(), None)
        with pytest.raises(ShimError, match="outside a running transaction"):
            outside.get_state("k")
        session._slots[("c", "t")] = _TxSlot()  # a transaction in flight when the stream ends
        session.close("peer went away")
        with pytest.raises(StreamClosedError, match="peer went away"):
            ChaincodeStub(session, "c", "t", chaincode_pb2.ChaincodeInput(), None).get_state("k")


def test_peer_keepalive_pings_do_not_get_the_stream_dropped(serve: Serve, peers: Peers) -> None:
    # Like Fabric's peer (a ping every 60 s, permitted without calls) but faster; the server permits pings
    # down to 0.5 s here the way it permits the peer's 60 s pings by default.
    server = serve(options=ServerOptions(min_ping_interval_s=0.5))
    pinging = [("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_permit_without_calls", 1),
               ("grpc.http2.max_pings_without_data", 0)]
    peer = peers(server, channel_options=pinging)
    time.sleep(6)
    assert not peer.ended.is_set(), peer.stream_error
    assert peer.invoke("TestContract:Add", "1", "2").response.payload == b"3"


def test_a_server_that_polices_pings_strictly_drops_the_peer(serve: Serve, peers: Peers) -> None:
    # The failure the default gRPC policy causes with Fabric's peer, reproduced fast: pings more frequent than
    # the server allows end the stream with GOAWAY (too_many_pings).
    server = serve(options=ServerOptions(min_ping_interval_s=60))
    pinging = [("grpc.keepalive_time_ms", 1000), ("grpc.keepalive_permit_without_calls", 1),
               ("grpc.http2.max_pings_without_data", 0)]
    peer = peers(server, channel_options=pinging)
    assert peer.ended.wait(15), "the strict server did not drop the pinging peer"
    assert "too many pings" in str(peer.stream_error).lower(), peer.stream_error


def test_default_server_options_permit_fabric_peer_keepalive() -> None:
    options = dict(ServerOptions().grpc_options())
    fabric_peer_ping_interval_ms = 60_000  # comm.DefaultKeepaliveOptions.ClientInterval, used for CCaaS dials
    assert options["grpc.http2.min_ping_interval_without_data_ms"] < fabric_peer_ping_interval_ms
    assert options["grpc.keepalive_permit_without_calls"] == 1


def test_invoke_chaincode_returns_the_callee_response_and_a_refusal_raises(serve: Serve, peers: Peers) -> None:
    peer = peers(serve())
    called = json.loads(peer.invoke("TestContract:InvokeChaincode", "othercc", '["Fn","a"]').response.payload)
    assert called == {"status": 200, "message": "", "payload": "Fn|a"}
    spec = next(m for m in peer.received if m.type == T.INVOKE_CHAINCODE)
    assert chaincode_pb2.ChaincodeSpec.FromString(spec.payload).chaincode_id.name == "othercc"
    refused = peer.invoke("TestContract:InvokeChaincode", "self", '["Fn"]').response
    assert refused.status == 500 and "peer refused INVOKE_CHAINCODE: txid:" in refused.message
