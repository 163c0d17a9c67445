"""``gx devnet``: bring the local Fabric network up, report its state, take it down.

``up`` is idempotent and completes a half-created network: every step first checks whether its result is
already there (crypto, genesis block, node configs, running nodes, orderer and peer channel membership)
and only does what is missing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel

from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet import channel, crypto, health, processes
from gxlib.devnet.binaries import FABRIC_RELEASE, FabricInstall, ensure_fabric, fabric_install
from gxlib.devnet.layout import DevnetLayout, Identity, Node, NodeRole
from gxlib.devnet.nodeconfig import node_environment, write_node_config
from gxlib.devnet.peercli import PeerCli
from gxlib.errors import GxError
from gxlib.progress import Progress


class DevnetError(GxError):
    """A devnet operation failed."""


class PortBusyError(DevnetError):
    def __init__(self, node: str, purpose: str, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} ({node} {purpose}) is already in use by another process",
            hint="stop whatever listens there, or move the devnet with GX_DEVNET_PORT_OFFSET=<n> "
            "(or the per-node port settings)",
        )
        self.node = node
        self.port = port


class NodeDiedError(DevnetError):
    def __init__(self, node: Node, tail: str) -> None:
        super().__init__(f"{node.name} exited during start-up; last lines of {node.log_file}:\n{tail}")
        self.node = node.name


class SettingsMismatchError(DevnetError):
    pass


# --- status model (also the --json schema) ---------------------------------------------------------------
class NodeStatus(BaseModel):
    name: str
    role: str
    msp_id: str
    pid: int | None
    running: bool
    healthy: bool
    endpoints: dict[str, str]
    ledger_height: int | None
    detail: str | None = None
    log_file: str
    log_tail: str | None = None


class DevnetStatus(BaseModel):
    state_dir: str
    channel: str
    fabric_release: str
    created: bool
    nodes: list[NodeStatus]

    @property
    def all_healthy(self) -> bool:
        return bool(self.nodes) and all(n.healthy for n in self.nodes)


@dataclass
class UpReport:
    """What ``up`` did: each step is 'done' (changed something) or 'already' (found it in place)."""

    steps: list[tuple[str, str]] = field(default_factory=list)

    def record(self, step: str, changed: bool) -> None:
        self.steps.append((step, "done" if changed else "already"))

    @property
    def changed(self) -> bool:
        return any(state == "done" for _, state in self.steps)


def _comparable(settings: DevnetSettings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    data.pop("state_dir", None)
    data.pop("startup_timeout_s", None)
    return data


class Devnet:
    """One local network, described by settings and living in ``settings.state_dir``."""

    def __init__(self, settings: DevnetSettings, build: FabricBuildSettings | None = None,
                 progress: Progress | None = None) -> None:
        self.build_settings = build or FabricBuildSettings()
        self.progress = progress or Progress()
        self._mismatch: dict[str, tuple[Any, Any]] = {}
        self.settings = self._settings_in_force(settings)
        self.layout = DevnetLayout(self.settings)

    def _settings_in_force(self, requested: DevnetSettings) -> DevnetSettings:
        """Settings the network was created with, if it exists; the requested ones otherwise."""
        stored_file = DevnetLayout(requested).settings_file
        if not stored_file.exists():
            return requested
        stored = DevnetSettings.model_validate({**json.loads(stored_file.read_text()),
                                                "state_dir": requested.state_dir,
                                                "startup_timeout_s": requested.startup_timeout_s})
        self._mismatch = {k: (v, _comparable(requested).get(k)) for k, v in _comparable(stored).items()
                          if _comparable(requested).get(k) != v}
        return stored

    @property
    def install(self) -> FabricInstall:
        return fabric_install(self.build_settings)

    def peer_cli(self, org_key: str) -> PeerCli:
        self.layout.peer_of(org_key)  # raises a KeyError naming the known orgs
        return PeerCli(self.install, self.layout, org_key)

    # --- up ------------------------------------------------------------------------------------------------
    def up(self) -> UpReport:
        mismatch = self._mismatch
        if mismatch:
            listed = "; ".join(f"{k}: network has {old!r}, asked for {new!r}" for k, (old, new) in mismatch.items())
            raise SettingsMismatchError(
                f"the devnet in {self.layout.root} was created with other settings ({listed})",
                hint="use the same settings, or `gx devnet down --purge` first to recreate it",
            )
        report = UpReport()
        install = ensure_fabric(self.build_settings, self.progress)
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True)
        if not layout.settings_file.exists():
            layout.settings_file.write_text(json.dumps(_comparable(self.settings), indent=2))

        with self.progress.task("crypto material (CAs, MSPs with NodeOUs, TLS)"):
            report.record("crypto material", crypto.generate_crypto(layout))
        with self.progress.task(f"genesis block of {self.settings.channel}"):
            report.record("genesis block", channel.create_genesis_block(install, layout))
        changed_configs = [write_node_config(install, layout, node) for node in layout.nodes]
        report.record("node configuration", any(changed_configs))

        started = self._start_missing_nodes(install)
        report.record("node processes", bool(started))
        for node in layout.nodes:
            self._wait_healthy(node)

        with self.progress.task(f"orderer joins {self.settings.channel}"):
            report.record("orderer joined channel", channel.join_orderer(layout))
        self.progress.wait_until(f"orderer {layout.orderer.name} to lead the channel (Raft)",
                                 self._orderer_active, timeout_s=self.settings.startup_timeout_s)
        for peer in layout.peers:
            with self.progress.task(f"{peer.name} joins {self.settings.channel}"):
                report.record(f"{peer.name} joined channel", channel.join_peer(self.peer_cli(peer.org.key), layout))
        for peer in layout.peers:
            self.progress.wait_until(
                f"{peer.name} to learn the other orgs' peers through the anchor peers",
                partial(self._knows_other_peers, peer), timeout_s=self.settings.startup_timeout_s,
            )
        return report

    def _start_missing_nodes(self, install: FabricInstall) -> list[Node]:
        missing = [n for n in self.layout.nodes if processes.running_pid(n) is None]
        for node in missing:
            for purpose, port in node.ports.items():
                if not processes.port_is_free(node.host, port):
                    raise PortBusyError(node.name, purpose, node.host, port)
        for node in missing:
            with self.progress.task(f"starting {node.name}"):
                command = ([str(install.binary("orderer"))] if node.role is NodeRole.ORDERER
                           else [str(install.binary("peer")), "node", "start"])
                pid = processes.start_node(node, command, node_environment(self.layout, node))
                self.progress.info(f"  {node.name} pid {pid}, log {node.log_file}")
        return missing

    def _wait_healthy(self, node: Node) -> None:
        def probe() -> tuple[bool, str | None]:
            if processes.has_exited(node):
                raise NodeDiedError(node, processes.log_tail(node, 30))
            state = health.check_health(node)
            if not state.healthy:
                return False, state.detail
            # /healthz answers before the node's gRPC listener accepts connections (seen after a peer restart).
            if not health.tls_handshake_succeeds(node.host, node.listen_port, str(node.identity.tls_ca_file)):
                return False, f"{node.endpoint} does not complete a TLS handshake yet"
            return True, None

        self.progress.wait_until(f"{node.name} /healthz and {node.endpoint}", probe,
                                 timeout_s=self.settings.startup_timeout_s)

    def _orderer_active(self) -> tuple[bool, str | None]:
        info = channel.orderer_channel_info(self.layout)
        if info is None:
            return False, "not joined"
        return info.get("status") == "active" and info.get("height", 0) >= 1, json.dumps(info)

    def _knows_other_peers(self, peer: Node) -> tuple[bool, str | None]:
        if processes.running_pid(peer) is None:
            raise NodeDiedError(peer, processes.log_tail(peer, 30))
        known = health.gossip_peers_known(peer, self.settings.channel)
        wanted = len(self.layout.peers) - 1
        return known is not None and known >= wanted, f"knows {known} of {wanted} other peers"

    # --- status --------------------------------------------------------------------------------------------
    def status(self) -> DevnetStatus:
        nodes = [self._node_status(node) for node in self.layout.nodes]
        return DevnetStatus(state_dir=str(self.layout.root), channel=self.settings.channel,
                            fabric_release=FABRIC_RELEASE, created=self.layout.settings_file.exists(), nodes=nodes)

    def _node_status(self, node: Node) -> NodeStatus:
        pid = processes.running_pid(node)
        endpoints = {"listen": node.endpoint, "operations": node.operations_url}
        if node.admin_url:
            endpoints["admin"] = node.admin_url
        if node.chaincode_port:
            endpoints["chaincode"] = f"{node.host}:{node.chaincode_port}"
        if pid is None:
            state = health.Health(False, "not running")
            height = None
        else:
            state = health.check_health(node)
            height = health.ledger_height(node, self.settings.channel) if state.healthy else None
        tail = None
        if not state.healthy and node.log_file.exists():
            tail = processes.log_tail(node, 15)
        return NodeStatus(name=node.name, role=node.role.value, msp_id=node.org.msp_id, pid=pid,
                          running=pid is not None, healthy=state.healthy, endpoints=endpoints,
                          ledger_height=height, detail=state.detail, log_file=str(node.log_file), log_tail=tail)

    # --- down ----------------------------------------------------------------------------------------------
    def down(self, *, purge: bool = False) -> dict[str, list[int]]:
        """Stop every node (SIGTERM, then SIGKILL); with ``purge`` also delete the state directory."""
        stopped: dict[str, list[int]] = {}
        # Backend services, chaincode servers — anything started inside the state directory — go first, then
        # the Fabric nodes.
        node_pids = {pid for node in self.layout.nodes for pid in processes.node_pids(node)}
        others = [p for p in processes.pids_under(self.layout.root) if p not in node_pids]
        if others:
            processes.stop_pids(others)
            stopped["chaincode servers and backend services"] = others
        for node in reversed(self.layout.nodes):
            pids = processes.stop_node(node)
            if pids:
                stopped[node.name] = pids
        if purge and self.layout.root.exists():
            shutil.rmtree(self.layout.root)
        return stopped

    # --- env -----------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        """What a client needs: endpoints, TLS CA files and the MSP of every identity."""
        layout = self.layout
        install = self.install

        def identity(ident: Identity) -> dict[str, Any]:
            return {
                "name": ident.name, "org": ident.org.key, "msp_id": ident.msp_id, "role": ident.role.value,
                "msp_dir": str(ident.msp_dir), "cert_file": str(ident.cert_file), "key_file": str(ident.key_file),
                "tls_cert_file": str(ident.tls_cert_file), "tls_key_file": str(ident.tls_key_file),
                "tls_ca_file": str(ident.tls_ca_file), "attributes": ident.attributes,
            }

        orderer = layout.orderer
        return {
            "state_dir": str(layout.root),
            "channel": self.settings.channel,
            "fabric": {"release": FABRIC_RELEASE, "bin_dir": str(install.bin_dir),
                       "config_dir": str(install.config_dir), "ccaas_builder_dir": str(install.builder_dir)},
            "orderer": {
                "name": orderer.name, "msp_id": orderer.org.msp_id, "endpoint": orderer.endpoint,
                "admin_url": orderer.admin_url, "operations_url": orderer.operations_url,
                "tls_ca_file": str(orderer.org.tls_ca_cert_file),
                "tls_server_name": orderer.identity.name,
            },
            "peers": [{
                "name": peer.name, "org": peer.org.key, "msp_id": peer.org.msp_id, "endpoint": peer.endpoint,
                "operations_url": peer.operations_url, "chaincode_address": f"{peer.host}:{peer.chaincode_port}",
                "tls_ca_file": str(peer.org.tls_ca_cert_file), "tls_server_name": peer.identity.name,
                "gateway_concurrency_limit": self.settings.gateway_concurrency_limit,
            } for peer in layout.peers],
            "identities": [identity(i) for org in layout.orgs for i in layout.users(org)],
            "roles": {"super_admin": layout.super_admin.name, "service": layout.service_identity.name,
                      "org_admins": {o.key: layout.admin(o.key).name for o in layout.peer_orgs}},
        }

