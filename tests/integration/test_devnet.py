"""The local Fabric network, checked from the outside: health, channel membership, Fabric's own CLI."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from gxlib.devnet import health, processes
from gxlib.devnet.network import Devnet

pytestmark = pytest.mark.integration


def _peer_cli_in_shell(devnet: Devnet, org: str, command: str) -> str:
    """Run a shell command after `eval "$(gx devnet env --peer-cli ORG)"`, as an operator would."""
    gx = f"{sys.executable} -m gxlib.cli"
    script = f'eval "$({gx} devnet env --peer-cli {org} --state-dir {devnet.layout.root})" && {command}'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_three_nodes_are_up_and_healthy(devnet: Devnet) -> None:
    status = devnet.status()
    assert [(n.name, n.role) for n in status.nodes] == [
        ("orderer0", "orderer"), ("peer0-org1", "peer"), ("peer0-org2", "peer")]
    assert status.all_healthy, [(n.name, n.detail) for n in status.nodes]
    assert all(n.pid for n in status.nodes)


def test_both_peers_joined_the_channel_at_the_orderers_height(devnet: Devnet) -> None:
    status = devnet.status()
    heights = {n.name: n.ledger_height for n in status.nodes}
    assert heights["peer0-org1"] == heights["peer0-org2"] == heights["orderer0"]
    assert heights["orderer0"] is not None and heights["orderer0"] >= 1


@pytest.mark.parametrize("org", ["org1", "org2"])
def test_fabric_peer_cli_agrees_with_status(devnet: Devnet, org: str) -> None:
    output = _peer_cli_in_shell(devnet, org, f"peer channel getinfo -c {devnet.settings.channel}")
    info, _ = json.JSONDecoder().raw_decode(output.split("Blockchain info:", 1)[1].strip())
    reported = {n.name: n.ledger_height for n in devnet.status().nodes}
    assert info["height"] == reported[devnet.layout.peer_of(org).name]
    joined = _peer_cli_in_shell(devnet, org, "peer channel list")
    assert devnet.settings.channel in joined.split("Channels peers has joined:", 1)[1].split()


def test_each_peer_reaches_the_other_org_through_anchor_peers(devnet: Devnet) -> None:
    for peer in devnet.layout.peers:
        assert health.gossip_peers_known(peer, devnet.settings.channel) == len(devnet.layout.peers) - 1


def test_env_json_gives_a_client_everything_it_needs(devnet: Devnet) -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "devnet", "env", "--json", "--state-dir",
                             str(devnet.layout.root)], capture_output=True, text=True, check=True)
    env = json.loads(result.stdout)
    assert env["channel"] == devnet.settings.channel
    assert {p["endpoint"] for p in env["peers"]} == {p.endpoint for p in devnet.layout.peers}
    by_name = {i["name"]: i for i in env["identities"]}
    assert by_name[env["roles"]["super_admin"]]["attributes"] == {"gx_super_admin": "true"}
    assert by_name[env["roles"]["service"]]["attributes"] == {}
    for ident in env["identities"]:
        for key in ("cert_file", "key_file", "tls_cert_file", "tls_ca_file"):
            assert os.path.exists(ident[key]), (ident["name"], key)


def test_second_up_is_a_no_op(devnet: Devnet) -> None:
    before = devnet.status()
    config_mtimes = {n.name: n.config_file.stat().st_mtime_ns for n in devnet.layout.nodes}
    report = devnet.up()
    assert not report.changed, report.steps
    after = devnet.status()
    assert [n.pid for n in after.nodes] == [n.pid for n in before.nodes]
    assert [n.ledger_height for n in after.nodes] == [n.ledger_height for n in before.nodes]
    assert {n.name: n.config_file.stat().st_mtime_ns for n in devnet.layout.nodes} == config_mtimes


def test_status_command_exits_zero_and_shows_every_node(devnet: Devnet) -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "devnet", "status", "--state-dir",
                             str(devnet.layout.root)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for node in devnet.layout.nodes:
        assert node.name in result.stdout


def test_logs_command_prints_the_node_log(devnet: Devnet) -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "devnet", "logs", "peer0-org1", "-n", "5",
                             "--state-dir", str(devnet.layout.root)], capture_output=True, text=True, check=True)
    assert len(result.stdout.strip().splitlines()) == 5


def test_a_node_that_dies_is_unhealthy_with_its_log_tail_and_up_restarts_it(devnet: Devnet) -> None:
    victim = devnet.layout.peer_of("org2")
    pid = processes.running_pid(victim)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    processes.stop_node(victim, timeout_s=5)  # waits until it is gone
    dead = {n.name: n for n in devnet.status().nodes}[victim.name]
    assert dead.healthy is False and dead.running is False
    assert dead.log_tail, "an unhealthy node shows the end of its log"
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "devnet", "status", "--state-dir",
                             str(devnet.layout.root)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "log tail" in result.stdout

    report = devnet.up()
    assert ("node processes", "done") in report.steps
    assert ("crypto material", "already") in report.steps
    status = devnet.status()
    assert status.all_healthy
    heights = {n.ledger_height for n in status.nodes}
    assert len(heights) == 1


def test_logs_follow_prints_lines_as_they_are_written(devnet: Devnet) -> None:
    node = devnet.layout.peer_of("org1")
    follower = subprocess.Popen([sys.executable, "-m", "gxlib.cli", "devnet", "logs", node.name, "-f", "-n", "1",
                                 "--state-dir", str(devnet.layout.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        follower.stdout.readline()  # the one line of history
        marker = f"gx-test-marker-{os.getpid()}"
        time.sleep(1.0)  # the follower has seeked to the end by now
        with node.log_file.open("a") as log:
            log.write(marker + "\n")
        deadline = time.monotonic() + 15
        seen = ""
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                seen += follower.stdout.readline()
        assert marker in seen
    finally:
        follower.terminate()
        follower.wait(timeout=10)
