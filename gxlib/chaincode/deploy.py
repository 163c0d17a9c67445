"""Deploy and upgrade the GX chaincode on the local network (SPEC §2.7), and report its state.

Upgrade = query the committed sequence → build each org's package → install on every peer → approve for every
org with sequence + 1 → check commit readiness → commit → restart the chaincode servers with the new package
IDs → verify the chaincode answers. Every step first looks whether its result is already there, so a repeated
deploy of the committed version changes nothing and a half-finished one is completed.

The lifecycle phases are :class:`gxlib.chaincode.lifecycle.ChaincodeLifecycle`'s (on the devnet's environment
document and channel); this module adds the local chaincode server processes. ``deploy()`` runs every phase in
one go; the phases are also public (``plan`` → ``install`` per org → ``approve`` per org → ``commit`` →
``restart_servers`` → ``wait_answering``/``metadata``), each with its read-only probe (``installed``,
``approvals``, ``committed``, ``servers_current``), so a runbook can show them one by one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import BaseModel

from gxlib.chaincode import servers
from gxlib.chaincode.lifecycle import (
    METADATA_FUNCTION,
    ChaincodeLifecycle,
    DeployError,
    DeployPlan,
    FabricNetwork,
    run_blocking,
    validate_version,
)
from gxlib.chaincode.servers import ChaincodeServer, chaincode_servers
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.fabric.errors import EvaluateError
from gxlib.fabric.lifecycle.client import Lifecycle
from gxlib.progress import Progress

# Re-exported: callers import the plan, the error and the helpers from here.
__all__ = ["METADATA_FUNCTION", "ChaincodeOperator", "ChaincodeStatus", "DeployError", "DeployPlan", "DeployReport",
           "ServerStatus", "devnet_network", "run_blocking", "validate_version"]


@dataclass
class DeployReport:
    version: str
    label: str
    sequence: int
    package_ids: dict[str, str]
    steps: list[tuple[str, str]] = field(default_factory=list)
    already_committed: bool = False

    def record(self, step: str, changed: bool) -> None:
        self.steps.append((step, "done" if changed else "already"))

    @property
    def changed(self) -> bool:
        return any(state == "done" for _, state in self.steps)


class ServerStatus(BaseModel):
    name: str
    org: str
    address: str
    pid: int | None
    package_id: str | None
    listening: bool


class ChaincodeStatus(BaseModel):
    name: str
    channel: str
    committed: bool
    version: str | None
    sequence: int | None
    approvals: dict[str, bool]
    installed: dict[str, list[str]]
    servers: list[ServerStatus]
    answering: bool

    @property
    def healthy(self) -> bool:
        return self.committed and self.answering and all(s.listening for s in self.servers)


def devnet_network(devnet: Devnet) -> FabricNetwork:
    """The devnet as a Fabric network: its channel and its environment document (``gx devnet env --json``)."""
    return FabricNetwork(devnet.settings.channel, devnet.environment)


class ChaincodeOperator(ChaincodeLifecycle[ChaincodeServer]):
    """Deploy/upgrade/status of one chaincode on a devnet, as each org's admin, with one local chaincode server
    process per org."""

    def __init__(self, devnet: Devnet, settings: ChaincodeSettings | None = None,
                 progress: Progress | None = None) -> None:
        settings = settings or ChaincodeSettings()
        super().__init__(devnet_network(devnet), chaincode_servers(devnet.layout, settings), settings,
                         progress or devnet.progress)
        self.devnet = devnet

    def servers_current(self, plan: DeployPlan) -> bool:
        """Whether every org's chaincode server runs the plan's package ID and listens."""
        return all(servers.running_package_id(s) == plan.package_ids[s.org_key] and servers.listening(s)
                   for s in self.servers)

    def server_package_ids(self) -> dict[str, str | None]:
        """org → the package ID its chaincode server runs with (None: not running)."""
        return {s.org_key: servers.running_package_id(s) for s in self.servers}

    def restart_servers(self, plan: DeployPlan) -> bool:
        """(Re)start each org's server that does not run the plan's package ID; False when none needed it."""
        return self._ensure_servers(plan.package_ids)

    # --- deploy: every phase in order -----------------------------------------------------------------------
    def deploy(self, version: str, label: str | None = None) -> DeployReport:
        return run_blocking(self._with_lifecycles(lambda lcs: self._deploy_with(validate_version(version), label,
                                                                                lcs)))

    async def _deploy_with(self, version: str, label: str | None, lifecycles: dict[str, Lifecycle]) -> DeployReport:
        plan = await self._plan(version, label, lifecycles)
        report = DeployReport(version, plan.label, plan.sequence, dict(plan.package_ids),
                              already_committed=plan.already_committed)
        if plan.already_committed:
            await self._require_committed_packages(plan, lifecycles)
            self.progress.info(f"{plan.name} {version} is already committed at sequence {plan.sequence}")
        else:
            for server in self.servers:
                report.record(f"install on {server.org_key}",
                              await self._install(plan, server, lifecycles[server.org_key]))
            approvals = await self._approvals(plan, lifecycles)
            for server in self.servers:
                report.record(f"approve for {server.msp_id}", await self._approve(plan, server, lifecycles, approvals))
            await self._commit(plan, lifecycles)
            report.record("commit", True)
        report.record("chaincode servers", self._ensure_servers(report.package_ids))
        await self._wait_answering()
        return report

    async def _require_committed_packages(self, plan: DeployPlan, lifecycles: dict[str, Lifecycle]) -> None:
        """A committed version runs only with the packages the peers installed for it: restarting the servers with
        other package IDs (e.g. a committed plaintext package, now that packages carry TLS) would take the
        chaincode down, so refuse and say how to move on."""
        missing = [org for org, found in (await self._installed(plan, lifecycles)).items() if not found]
        if missing:
            raise DeployError(
                f"{plan.name} {plan.version} is committed, but the package this gxlib builds for it is not installed "
                f"on the peer(s) of {', '.join(missing)} (its connection.json differs: address, dial timeout or "
                f"TLS settings changed since that version was deployed); the servers were left as they are",
                hint="deploy a new version (gx chaincode deploy --version <next>) to switch to the new packages")

    def _ensure_servers(self, package_ids: dict[str, str]) -> bool:
        changed = False
        for server in self.servers:
            wanted = package_ids[server.org_key]
            if servers.running_package_id(server) == wanted and servers.listening(server):
                continue
            with self.progress.task(f"start {server.name} on {server.address} ({wanted[:40]}…)"):
                servers.start(server, wanted, timeout_s=self.settings.startup_timeout_s)
            changed = True
        return changed

    # --- status ------------------------------------------------------------------------------------------------
    def status(self) -> ChaincodeStatus:
        return run_blocking(self._status())

    async def _status(self) -> ChaincodeStatus:
        admins = self._admins()
        lifecycles = {org: Lifecycle(gw, self.channel) for org, gw in admins.items()}
        try:
            first = lifecycles[self.servers[0].org_key]
            committed = await first.query_committed(self.settings.name)
            installed = {org: sorted(c.package_id for c in await lc.query_installed()
                                     if c.label.startswith(self.settings.label_prefix + "_"))
                         for org, lc in lifecycles.items()}
            answering = False
            if committed is not None:
                try:
                    await asyncio.wait_for(self._evaluate_metadata(self.servers[0].org_key), timeout=10)
                    answering = True
                except (EvaluateError, TimeoutError):
                    answering = False
        finally:
            for lifecycle in lifecycles.values():
                await lifecycle.close()
            for gateway in admins.values():
                await gateway.close()
        server_states = [ServerStatus(name=s.name, org=s.org_key, address=s.address, pid=processes.running_pid(s),
                                      package_id=servers.running_package_id(s), listening=servers.listening(s))
                         for s in self.servers]
        return ChaincodeStatus(
            name=self.settings.name, channel=self.channel, committed=committed is not None,
            version=committed.version if committed else None, sequence=committed.sequence if committed else None,
            approvals=committed.approvals if committed else {}, installed=installed, servers=server_states,
            answering=answering,
        )

    def stop_servers(self) -> dict[str, list[int]]:
        return {s.name: pids for s in self.servers if (pids := servers.stop(s))}
