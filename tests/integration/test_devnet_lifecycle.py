"""Networks that are created, broken and removed by the test itself (beside the session network)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from gxlib.devnet import processes
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.network import PortBusyError
from tests.conftest import BASE_TEST_OFFSET, make_devnet

pytestmark = pytest.mark.integration
OFFSET = BASE_TEST_OFFSET + 100


def _fabric_processes_under(root: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(b"FABRIC_CFG_PATH=") and item.split(b"=", 1)[1].decode().startswith(str(root)):
                found.append(int(entry.name))
    return found


def test_busy_port_stops_up_and_names_the_port(fabric_install: FabricInstall, tmp_path: Path) -> None:
    net = make_devnet(tmp_path, OFFSET)
    busy = net.layout.peer_of("org2").operations_port
    with socket.socket() as blocker:
        blocker.bind((net.layout.peers[1].host, busy))
        blocker.listen()
        with pytest.raises(PortBusyError) as caught:
            net.up()
    assert str(busy) in caught.value.message and "peer0-org2" in caught.value.message
    assert caught.value.hint and "GX_DEVNET_PORT_OFFSET" in caught.value.hint
    assert _fabric_processes_under(tmp_path) == [], "nothing is started when a port is taken"


def test_half_created_network_is_completed_then_down_leaves_no_process(fabric_install: FabricInstall,
                                                                        tmp_path: Path) -> None:
    net = make_devnet(tmp_path, OFFSET)
    try:
        net.up()
        # Simulate a crash half-way through: one node gone, another's pid file lost.
        processes.stop_node(net.layout.orderer)
        net.layout.peer_of("org1").pid_file.unlink()
        report = net.up()
        assert ("node processes", "done") in report.steps
        assert ("genesis block", "already") in report.steps
        assert net.status().all_healthy
        # The peer whose pid file was lost kept running: `up` found it instead of starting a second one.
        assert len(processes.node_pids(net.layout.peer_of("org1"))) == 1
    finally:
        stopped = net.down()
    assert set(stopped) == {"orderer0", "peer0-org1", "peer0-org2"}
    assert _fabric_processes_under(tmp_path) == []
    for node in net.layout.nodes:
        for port in node.ports.values():
            assert processes.port_is_free(node.host, port), (node.name, port)
    assert not net.status().all_healthy
    net.down(purge=True)
    assert not tmp_path.exists() or not os.listdir(tmp_path)
