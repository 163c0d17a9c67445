"""Deploy and upgrade the GX chaincode on the local network (SPEC §2.7), and report its state.

Upgrade = query the committed sequence → build each org's package → install on every peer → approve for every
org with sequence + 1 → check commit readiness → commit → restart the chaincode servers with the new package
IDs → verify the chaincode answers. Every step first looks whether its result is already there, so a repeated
deploy of the committed version changes nothing and a half-finished one is completed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

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
from gxlib.fabric.lifecycle.definition import ChaincodeDefinition
from gxlib.fabric.lifecycle.package import ConnectionInfo, build_ccaas_package, package_id
from gxlib.progress import Progress

METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


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

    def package_for(self, server: ChaincodeServer, version: str) -> tuple[bytes, str]:
        """The org's CCaaS package for ``version`` (its connection.json points at the org's server) and its ID."""
        label = self.settings.label(version)
        package = build_ccaas_package(label, ConnectionInfo(address=server.address,
                                                            dial_timeout=self.settings.dial_timeout))
        return package, package_id(label, package)

    def _admins(self) -> dict[str, Gateway]:
        env = self.devnet.environment()
        return {s.org_key: Gateway.from_environment(env, f"admin:{s.org_key}") for s in self.servers}

    # --- deploy ------------------------------------------------------------------------------------------------
    def deploy(self, version: str) -> DeployReport:
        return asyncio.run(self._deploy(validate_version(version)))

    async def _deploy(self, version: str) -> DeployReport:
        admins = self._admins()
        lifecycles = {org: Lifecycle(gw, self.channel) for org, gw in admins.items()}
        try:
            return await self._deploy_with(version, lifecycles)
        finally:
            for lifecycle in lifecycles.values():
                await lifecycle.close()
            for gateway in admins.values():
                await gateway.close()

    async def _deploy_with(self, version: str, lifecycles: dict[str, Lifecycle]) -> DeployReport:
        name = self.settings.name
        packages = {s.org_key: self.package_for(s, version) for s in self.servers}
        first = lifecycles[self.servers[0].org_key]
        committed = await first.query_committed(name)
        if committed is not None and committed.version == version:
            report = DeployReport(version, self.settings.label(version), committed.sequence,
                                  {org: pid for org, (_, pid) in packages.items()}, already_committed=True)
            self.progress.info(f"{name} {version} is already committed at sequence {committed.sequence}")
        else:
            sequence = 1 if committed is None else committed.sequence + 1
            report = DeployReport(version, self.settings.label(version), sequence,
                                  {org: pid for org, (_, pid) in packages.items()})
            definition = ChaincodeDefinition(name, version, sequence)
            for server in self.servers:
                package, pkg_id = packages[server.org_key]
                lifecycle = lifecycles[server.org_key]
                with self.progress.task(f"install {report.label} on {server.org_key}'s peer"):
                    installed = {c.package_id for c in await lifecycle.query_installed()}
                    if pkg_id not in installed:
                        got = await lifecycle.install(package)
                        if got != pkg_id:
                            raise DeployError(f"{server.org_key}'s peer installed {got}, expected {pkg_id}")
                    report.record(f"install on {server.org_key}", pkg_id not in installed)
            approvals = await first.check_commit_readiness(definition)
            for server in self.servers:
                approved = approvals.get(server.msp_id, False)
                if not approved:
                    with self.progress.task(f"approve {name} {version} (sequence {sequence}) for {server.msp_id}"):
                        await lifecycles[server.org_key].approve(definition, packages[server.org_key][1])
                report.record(f"approve for {server.msp_id}", not approved)
            approvals = await first.check_commit_readiness(definition)
            missing = [org for org, ok in approvals.items() if not ok]
            if missing:
                raise DeployError(f"commit readiness: {', '.join(missing)} have not approved {name} {version}")
            with self.progress.task(f"commit {name} {version} at sequence {sequence} on {self.channel}"):
                await first.commit(definition, sorted(approvals))
            report.record("commit", True)
        restarted = self._ensure_servers(report.package_ids)
        report.record("chaincode servers", restarted)
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
        return asyncio.run(self._status())

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
