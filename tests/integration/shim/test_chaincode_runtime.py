"""Our chaincode runtime on the real devnet, driven by Fabric's own `peer chaincode invoke/query`.

A client we did not write checks what the peer sees: state, range queries over several batches and pages,
composite keys, the committed transaction's event, the creator's OUs and Fabric CA attributes, error
responses (ours and the peer's), and a chaincode server restart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from gxlib.devnet import processes
from gxlib.devnet.layout import Identity
from gxlib.devnet.network import Devnet
from gxlib.devnet.peercli import PeerCliError
from tests.integration.conftest import DeployedChaincode, orderer_args, peer_tls_args

pytestmark = pytest.mark.integration


def _args(*args: str) -> str:
    return json.dumps({"Args": list(args)})


def invoke(devnet: Devnet, cc: DeployedChaincode, fn: str, *args: str, org: str = "org1") -> str:
    """`peer chaincode invoke` on both peers, waiting for the commit; returns the CLI output."""
    return devnet.peer_cli(org).run("chaincode", "invoke", *orderer_args(devnet), "-C", cc.channel, "-n", cc.name,
                                    *peer_tls_args(devnet), "--waitForEvent", "-c", _args(cc.function(fn), *args))


def query(devnet: Devnet, cc: DeployedChaincode, fn: str, *args: str, org: str = "org1") -> str:
    out = devnet.peer_cli(org).run("chaincode", "query", "-C", cc.channel, "-n", cc.name,
                                   "-c", _args(cc.function(fn), *args))
    return out.strip()


def query_as(devnet: Devnet, cc: DeployedChaincode, identity: Identity, fn: str, *args: str,
             extra: tuple[str, ...] = ()) -> str:
    """`peer chaincode query` signed by ``identity`` (its org's peer) instead of the org admin."""
    cli = devnet.peer_cli(identity.org.key)
    env = {**os.environ, **cli.environment(), "CORE_PEER_MSPCONFIGPATH": str(identity.msp_dir)}
    proc = subprocess.run([str(cli.install.binary("peer")), "chaincode", "query", "-C", cc.channel, "-n", cc.name,
                           "-c", _args(cc.function(fn), *args), *extra],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def committed_txid(output: str) -> str:
    match = re.search(r"txid \[([0-9a-f]{64})\] committed with status \((\w+)\)", output)
    assert match, output
    assert match.group(2) == "VALID", output
    return match.group(1)


def chaincode_event_of(devnet: Devnet, cc: DeployedChaincode, txid: str, tmp_path: Path) -> tuple[str, bytes]:
    """Find ``txid`` in the newest blocks (fetched with `peer channel fetch`) and return its chaincode event."""
    block_file = str(tmp_path / f"{txid}.block")
    devnet.peer_cli("org1").run("channel", "fetch", "newest", block_file, *orderer_args(devnet), "-c", cc.channel)
    newest = common_pb2.Block()
    with open(block_file, "rb") as fh:
        newest.ParseFromString(fh.read())
    number = newest.header.number
    while number >= 0:
        block = newest if number == newest.header.number else common_pb2.Block()
        if block is not newest:
            devnet.peer_cli("org1").run("channel", "fetch", str(number), block_file, *orderer_args(devnet),
                                        "-c", cc.channel)
            with open(block_file, "rb") as fh:
                block.ParseFromString(fh.read())
        for raw in block.data.data:
            envelope = common_pb2.Envelope.FromString(raw)
            payload = common_pb2.Payload.FromString(envelope.payload)
            header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            if header.tx_id != txid:
                continue
            tx = transaction_pb2.Transaction.FromString(payload.data)
            action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(
                action.action.proposal_response_payload)
            cc_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
            event = chaincode_event_pb2.ChaincodeEvent.FromString(cc_action.events)
            return event.event_name, bytes(event.payload)
        number -= 1
    raise AssertionError(f"tx {txid} not found in the chain")


def test_put_commits_and_both_peers_read_it(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    committed_txid(invoke(devnet, test_chaincode, "Put", key, "hello"))
    for org in ("org1", "org2"):
        assert query(devnet, test_chaincode, "Get", key, org=org) == "hello"
    committed_txid(invoke(devnet, test_chaincode, "Del", key))
    with pytest.raises(PeerCliError, match=f"key '{key}' does not exist"):
        query(devnet, test_chaincode, "Get", key)


def test_history_for_key_lists_every_committed_change(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    key = f"h-{uuid.uuid4().hex[:8]}"
    txids = [committed_txid(invoke(devnet, test_chaincode, "Put", key, "one")),
             committed_txid(invoke(devnet, test_chaincode, "Put", key, "two")),
             committed_txid(invoke(devnet, test_chaincode, "Del", key))]
    history = json.loads(query(devnet, test_chaincode, "History", key))
    # The peer lists the newest change first.
    assert [(h["txId"], h["value"], h["isDelete"]) for h in history] == [
        (txids[2], "", True), (txids[1], "two", False), (txids[0], "one", False)]


def test_committed_transaction_carries_the_last_event_set(devnet: Devnet, test_chaincode: DeployedChaincode,
                                                          tmp_path: Path) -> None:
    key = f"ev-{uuid.uuid4().hex[:8]}"
    txid = committed_txid(invoke(devnet, test_chaincode, "Emit", key, "payload-1"))
    name, payload = chaincode_event_of(devnet, test_chaincode, txid, tmp_path)
    assert name == "TestEvent"
    body = json.loads(payload)
    assert body["key"] == key and body["payload"] == "payload-1"
    assert abs(body["timestamp"] - time.time()) < 120


def test_creator_attributes_and_ous_reach_the_chaincode(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    layout = devnet.layout
    who = json.loads(query_as(devnet, test_chaincode, layout.super_admin, "Whoami"))
    assert who["mspId"] == layout.super_admin.msp_id
    assert who["attrs"].get("gx_super_admin") == "true"
    assert "client" in who["ous"]
    admin = json.loads(query_as(devnet, test_chaincode, layout.admin("org2"), "Whoami"))
    assert admin["mspId"] == layout.admin("org2").msp_id
    assert "admin" in admin["ous"]
    assert "gx_super_admin" not in admin["attrs"]


def test_transient_data_and_timestamp_reach_the_chaincode(devnet: Devnet,
                                                          test_chaincode: DeployedChaincode) -> None:
    transient = json.dumps({"secret": "czNjcjN0"})  # base64 of "s3cr3t"
    info = json.loads(query_as(devnet, test_chaincode, devnet.layout.admin("org1"), "TxInfo",
                               extra=("--transient", transient)))
    assert info["transient"] == {"secret": "s3cr3t"}
    assert info["channel"] == test_chaincode.channel
    assert len(info["txId"]) == 64


def test_range_query_spans_several_peer_batches(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    prefix = f"rng-{uuid.uuid4().hex[:6]}-"
    # The peer returns at most 100 results per message; 150 keys need QUERY_STATE_NEXT.
    committed_txid(invoke(devnet, test_chaincode, "PutMany", prefix, "150"))
    rows = json.loads(query(devnet, test_chaincode, "Range", prefix, prefix + "~"))
    assert [k for k, _ in rows] == [f"{prefix}{i:04d}" for i in range(150)]
    assert rows[149][1] == "149"


def test_paginated_range_walks_pages_with_bookmarks(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    prefix = f"pg-{uuid.uuid4().hex[:6]}-"
    committed_txid(invoke(devnet, test_chaincode, "PutMany", prefix, "25"))
    seen: list[str] = []
    bookmark = ""
    for _ in range(5):
        page = json.loads(query(devnet, test_chaincode, "RangePage", prefix, prefix + "~", "10", bookmark))
        seen += page["keys"]
        assert page["count"] == len(page["keys"])
        bookmark = page["bookmark"]
        if len(page["keys"]) < 10:
            break
    assert seen == [f"{prefix}{i:04d}" for i in range(25)]


def test_composite_keys_are_queried_by_partial_key(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    kind = f"owner{uuid.uuid4().hex[:6]}"
    invoke(devnet, test_chaincode, "PutComposite", kind, '["alice","a1"]', "v1")
    invoke(devnet, test_chaincode, "PutComposite", kind, '["alice","a2"]', "v2")
    invoke(devnet, test_chaincode, "PutComposite", kind, '["bob","b1"]', "v3")
    found = json.loads(query(devnet, test_chaincode, "QueryComposite", kind, '["alice"]'))
    assert found == [[["alice", "a1"], "v1"], [["alice", "a2"], "v2"]]
    assert len(json.loads(query(devnet, test_chaincode, "QueryComposite", kind, "[]"))) == 3


def test_chaincode_error_is_the_endorsement_error_and_nothing_is_written(
        devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    with pytest.raises(PeerCliError, match="amount must be greater than zero"):
        invoke(devnet, test_chaincode, "Fail", "amount must be greater than zero")
    with pytest.raises(PeerCliError, match="does not exist"):
        query(devnet, test_chaincode, "Get", "fail-never-written")


def test_peer_error_reply_surfaces_as_an_exception_in_the_chaincode(
        devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    # The peer refuses a write after a paginated query with an ERROR message on the stream.
    caught = query(devnet, test_chaincode, "CatchPeerError", "pe-1")
    assert caught.startswith("PeerError(PUT_STATE):"), caught
    assert "Writes are not allowed" in caught
    with pytest.raises(PeerCliError, match="Writes are not allowed"):
        query(devnet, test_chaincode, "WriteAfterPagedQuery", "pe-2")


def test_unknown_function_and_wrong_argument_count_are_named(devnet: Devnet,
                                                             test_chaincode: DeployedChaincode) -> None:
    with pytest.raises(PeerCliError, match="unknown function 'TestContract:Nope'"):
        query(devnet, test_chaincode, "Nope")
    with pytest.raises(PeerCliError, match=r"TestContract:Put: expects 2 argument\(s\) \(key, value\), got 1"):
        query(devnet, test_chaincode, "Put", "only-key")
    with pytest.raises(PeerCliError, match="argument 'a' must be an integer"):
        query(devnet, test_chaincode, "Add", "x", "1")


def test_a_chaincode_cannot_invoke_itself_in_one_transaction(devnet: Devnet,
                                                            test_chaincode: DeployedChaincode) -> None:
    # SPEC §2.3 fact 1: the peer refuses the nested call, so BootstrapSystem must share code, not re-enter.
    with pytest.raises(PeerCliError, match=r"peer refused INVOKE_CHAINCODE: .*txid: [0-9a-f]+\(\S+\) exists"):
        query(devnet, test_chaincode, "InvokeChaincode", test_chaincode.name, '["TestContract:Add","1","2"]')


def test_get_metadata_lists_the_contract_functions(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    out = devnet.peer_cli("org1").run("chaincode", "query", "-C", test_chaincode.channel, "-n", test_chaincode.name,
                                      "-c", _args("org.hyperledger.fabric:GetMetadata"))
    meta = json.loads(out)
    names = {t["name"]: t for t in meta["contracts"]["TestContract"]["transactions"]}
    assert {f.split(":")[1] for f in test_chaincode.functions} <= set(names)
    assert names["Get"]["tags"] == ["evaluate"] and names["Put"]["tags"] == ["submit"]
    assert names["Add"]["parameters"] == [{"name": "a", "schema": {"type": "integer"}},
                                          {"name": "b", "schema": {"type": "integer"}}]


def test_chaincode_server_restart_the_peer_reconnects(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    server = test_chaincode.servers["org1"]
    old_pid = server.pid
    server.restart()
    assert server.pid != old_pid
    # The peer notices the broken stream, and dials again on the next invocation.
    deadline = time.monotonic() + 60
    while True:
        try:
            assert query(devnet, test_chaincode, "Add", "2", "3") == "5"
            break
        except PeerCliError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    key = f"after-restart-{uuid.uuid4().hex[:6]}"
    committed_txid(invoke(devnet, test_chaincode, "Put", key, "ok"))
    assert query(devnet, test_chaincode, "Get", key, org="org2") == "ok"


def test_peer_restart_the_peer_dials_the_running_chaincode_server_again(
        devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    # Runs last in this module: it restarts peer0 of org2 (the chaincode server keeps running).
    server = test_chaincode.servers["org2"]
    pid = server.pid
    processes.stop_node(devnet.layout.peer_of("org2"))
    devnet.up()  # starts the missing peer and waits until it is healthy and knows the other org
    deadline = time.monotonic() + 90
    while True:
        try:
            assert query(devnet, test_chaincode, "Add", "20", "22", org="org2") == "42"
            break
        except PeerCliError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert server.pid == pid and server.running
    key = f"after-peer-restart-{uuid.uuid4().hex[:6]}"
    committed_txid(invoke(devnet, test_chaincode, "Put", key, "ok"))
    assert query(devnet, test_chaincode, "Get", key, org="org2") == "ok"
