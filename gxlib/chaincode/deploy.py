"""Deploy and upgrade the GX chaincode on the local network (SPEC §2.7), and report its state.

Upgrade = query the committed sequence → build each org's package → install on every peer → approve for every
org with sequence + 1 → check commit readiness → commit → restart the chaincode servers with the new package
IDs → verify the chaincode answers. Every step first looks whether its result is already there, so a repeated
deploy of the committed version changes nothing and a half-finished one is completed.

``deploy()`` runs every phase in one go; the phases are also public (``plan`` → ``install`` per org →
``approve`` per org → ``commit`` → ``restart_servers`` → ``wait_answering``/``metadata``), each with its read-only
probe (``installed``, ``approvals``, ``committed``, ``servers_current``), so a runbook can show them one by one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from gxlib.chaincode import servers
from gxlib.chaincode.servers import ChaincodeServer, chaincode_servers
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.errors import GxError
from gxlib.fabric.errors import EvaluateError
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.lifecycle.client import Lifecycle
from gxlib.fabric.lifecycle.definition import ChaincodeDefinition, CommittedChaincode
from gxlib.fabric.lifecycle.package import ConnectionInfo, build_ccaas_package, package_id
from gxlib.progress import Progress

T = TypeVar("T")

METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code — also inside Jupyter, whose event loop already runs in
    this thread (there the coroutine gets its own loop in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-chaincode") as pool:
        return pool.submit(asyncio.run, coro).result()


class DeployError(GxError):
    """A deploy step failed; the message names the step and the org."""


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


@dataclass(frozen=True)
class DeployPlan:
    """What deploying ``version`` means on the channel now: the committed definition, the next sequence, and
    each org's package (bytes) and package ID."""

    name: str
    channel: str
    version: str
    label: str
    committed_version: str | None
    committed_sequence: int | None
    packages: dict[str, bytes] = field(repr=False)
    package_ids: dict[str, str]

    @property
    def already_committed(self) -> bool:
        return self.committed_version == self.version

    @property
    def sequence(self) -> int:
        """The committed sequence when this version is committed; otherwise the next one (committed + 1, or 1)."""
        if self.already_committed and self.committed_sequence is not None:
            return self.committed_sequence
        return (self.committed_sequence or 0) + 1

    def definition(self) -> ChaincodeDefinition:
        return ChaincodeDefinition(self.name, self.version, self.sequence)


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


def validate_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise DeployError(f"version {version!r} is not valid: use letters, digits, '.', '_', '+', '-' "
                          "(e.g. 1.0), at most 64 characters")
    return version


class ChaincodeOperator:
    """Deploy/upgrade/status of one chaincode on a devnet, as each org's admin."""

    def __init__(self, devnet: Devnet, settings: ChaincodeSettings | None = None,
                 progress: Progress | None = None) -> None:
        self.devnet = devnet
        self.settings = settings or ChaincodeSettings()
        self.progress = progress or devnet.progress
        self.servers = chaincode_servers(devnet.layout, self.settings)

    @property
    def channel(self) -> str:
        return self.devnet.settings.channel

    def package_for(self, server: ChaincodeServer, version: str, label: str | None = None) -> tuple[bytes, str]:
        """The org's CCaaS package for ``version`` (its connection.json points at the org's server) and its ID;
        the label defaults to ``<label_prefix>_<version>``."""
        label = label or self.settings.label(version)
        package = build_ccaas_package(label, ConnectionInfo(address=server.address,
                                                            dial_timeout=self.settings.dial_timeout))
        return package, package_id(label, package)

    def _admins(self) -> dict[str, Gateway]:
        env = self.devnet.environment()
        return {s.org_key: Gateway.from_environment(env, f"admin:{s.org_key}") for s in self.servers}

    def _server(self, org_key: str) -> ChaincodeServer:
        for server in self.servers:
            if server.org_key == org_key:
                return server
        raise KeyError(f"no peer org {org_key!r}; known: {', '.join(s.org_key for s in self.servers)}")

    async def _with_lifecycles(self, phase: Callable[[dict[str, Lifecycle]], Awaitable[T]]) -> T:
        """Run ``phase`` with one admin Lifecycle client per org, closed afterwards."""
        admins = self._admins()
        lifecycles = {org: Lifecycle(gw, self.channel) for org, gw in admins.items()}
        try:
            return await phase(lifecycles)
        finally:
            for lifecycle in lifecycles.values():
                await lifecycle.close()
            for gateway in admins.values():
                await gateway.close()

    def _phase(self, phase: Callable[[dict[str, Lifecycle]], Awaitable[T]]) -> T:
        return run_blocking(self._with_lifecycles(phase))

    # --- the phases of an upgrade, one by one (a runbook shows each; deploy() runs them all) ---------------
    def plan(self, version: str, label: str | None = None) -> DeployPlan:
        """Query the committed definition and build each org's package: what a deploy of ``version`` does."""
        return self._phase(lambda lcs: self._plan(validate_version(version), label, lcs))

    def installed(self, plan: DeployPlan) -> dict[str, bool]:
        """Org → whether the org's peer has the plan's package installed."""
        return self._phase(lambda lcs: self._installed(plan, lcs))

    def install(self, plan: DeployPlan, org_key: str) -> bool:
        """Install the org's package on its peer; False when it was already there."""
        return self._phase(lambda lcs: self._install(plan, self._server(org_key), lcs[org_key]))

    def approvals(self, plan: DeployPlan) -> dict[str, bool]:
        """MSP ID → whether the org approved the plan's definition (the commit readiness); all True once the
        plan's version is committed."""
        return self._phase(lambda lcs: self._approvals(plan, lcs))

    def approve(self, plan: DeployPlan, org_key: str) -> bool:
        """Approve the plan's definition for the org (with its package ID); False when it already had."""
        return self._phase(lambda lcs: self._approve(plan, self._server(org_key), lcs, None))

    def commit(self, plan: DeployPlan) -> None:
        """Commit the plan's definition, after checking that every org approved it."""
        self._phase(lambda lcs: self._commit(plan, lcs))

    def committed(self, org_key: str | None = None) -> CommittedChaincode | None:
        """The committed definition as the org's peer (default: the first org's) sees it."""
        org = org_key or self.servers[0].org_key
        return self._phase(lambda lcs: lcs[org].query_committed(self.settings.name))

    def servers_current(self, plan: DeployPlan) -> bool:
        """Whether every org's chaincode server runs the plan's package ID and listens."""
        return all(servers.running_package_id(s) == plan.package_ids[s.org_key] and servers.listening(s)
                   for s in self.servers)

    def restart_servers(self, plan: DeployPlan) -> bool:
        """(Re)start each org's server that does not run the plan's package ID; False when none needed it."""
        return self._ensure_servers(plan.package_ids)

    def metadata(self, org_key: str) -> dict[str, Any]:
        """The chaincode's ``GetMetadata`` answer through the org's peer (its contracts and transactions)."""
        return run_blocking(self._evaluate_metadata(org_key))

    def wait_answering(self) -> None:
        """Wait until the chaincode answers on every org's peer (DeployError after the startup timeout)."""
        run_blocking(self._wait_answering())

    async def _plan(self, version: str, label: str | None, lifecycles: dict[str, Lifecycle]) -> DeployPlan:
        label = label or self.settings.label(version)
        packages = {s.org_key: self.package_for(s, version, label) for s in self.servers}
        committed = await lifecycles[self.servers[0].org_key].query_committed(self.settings.name)
        return DeployPlan(
            name=self.settings.name, channel=self.channel, version=version, label=label,
            committed_version=committed.version if committed else None,
            committed_sequence=committed.sequence if committed else None,
            packages={org: package for org, (package, _) in packages.items()},
            package_ids={org: pkg_id for org, (_, pkg_id) in packages.items()},
        )

    async def _installed(self, plan: DeployPlan, lifecycles: dict[str, Lifecycle]) -> dict[str, bool]:
        found = {}
        for server in self.servers:
            installed = {c.package_id for c in await lifecycles[server.org_key].query_installed()}
            found[server.org_key] = plan.package_ids[server.org_key] in installed
        return found

    async def _install(self, plan: DeployPlan, server: ChaincodeServer, lifecycle: Lifecycle) -> bool:
        pkg_id = plan.package_ids[server.org_key]
        with self.progress.task(f"install {plan.label} on {server.org_key}'s peer"):
            installed = {c.package_id for c in await lifecycle.query_installed()}
            if pkg_id in installed:
                return False
            got = await lifecycle.install(plan.packages[server.org_key])
            if got != pkg_id:
                raise DeployError(f"{server.org_key}'s peer installed {got}, expected {pkg_id}")
        return True

    async def _approvals(self, plan: DeployPlan, lifecycles: dict[str, Lifecycle]) -> dict[str, bool]:
        if plan.already_committed:
            return {s.msp_id: True for s in self.servers}
        return await lifecycles[self.servers[0].org_key].check_commit_readiness(plan.definition())

    async def _approve(self, plan: DeployPlan, server: ChaincodeServer, lifecycles: dict[str, Lifecycle],
                       approvals: dict[str, bool] | None) -> bool:
        approvals = approvals if approvals is not None else await self._approvals(plan, lifecycles)
        if approvals.get(server.msp_id, False):
            return False
        with self.progress.task(f"approve {plan.name} {plan.version} (sequence {plan.sequence}) for {server.msp_id}"):
            await lifecycles[server.org_key].approve(plan.definition(), plan.package_ids[server.org_key])
        return True

    async def _commit(self, plan: DeployPlan, lifecycles: dict[str, Lifecycle]) -> None:
        # Each approval is confirmed on the approving org's own peer; the peer asked here may be a block behind,
        # so give it a moment before deciding an org has not approved.
        deadline = time.monotonic() + 15.0
        while True:
            approvals = await self._approvals(plan, lifecycles)
            missing = [org for org, ok in approvals.items() if not ok]
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        if missing:
            raise DeployError(f"commit readiness: {', '.join(missing)} have not approved {plan.name} {plan.version}")
        with self.progress.task(f"commit {plan.name} {plan.version} at sequence {plan.sequence} on {self.channel}"):
            await lifecycles[self.servers[0].org_key].commit(plan.definition(), sorted(approvals))

    # --- deploy: every phase in order -----------------------------------------------------------------------
    def deploy(self, version: str, label: str | None = None) -> DeployReport:
        return run_blocking(self._with_lifecycles(lambda lcs: self._deploy_with(validate_version(version), label,
                                                                                lcs)))

    async def _deploy_with(self, version: str, label: str | None, lifecycles: dict[str, Lifecycle]) -> DeployReport:
        plan = await self._plan(version, label, lifecycles)
        report = DeployReport(version, plan.label, plan.sequence, dict(plan.package_ids),
                              already_committed=plan.already_committed)
        if plan.already_committed:
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

    async def _evaluate_metadata(self, org_key: str) -> dict[str, Any]:
        env = self.devnet.environment()
        async with Gateway.from_environment(env, f"admin:{org_key}") as gateway:
            contract = gateway.network(self.channel).contract(self.settings.name)
            msp_id = self.devnet.layout.org(org_key).msp_id
            return dict(json.loads(await contract.evaluate(METADATA_FUNCTION, target_organizations=[msp_id])))

    async def _wait_answering(self) -> None:
        """Wait until every org's peer gets an answer from its chaincode server (the peer dials it on first use)."""
        deadline = time.monotonic() + self.settings.startup_timeout_s
        with self.progress.task(f"waiting for {self.settings.name} to answer on every org's peer"):
            for server in self.servers:
                while True:
                    try:
                        await self._evaluate_metadata(server.org_key)
                        break
                    except EvaluateError as exc:
                        if time.monotonic() > deadline:
                            raise DeployError(f"{self.settings.name} does not answer on {server.org_key}'s peer: "
                                              f"{exc}") from exc
                        await asyncio.sleep(0.5)

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
