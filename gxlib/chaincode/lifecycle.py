"""The chaincode lifecycle on a Fabric network, as each org's admin (SPEC §2.7): plan → install → approve →
commit readiness → commit → the chaincode answers.

What it needs is *a Fabric network* — the environment document (peers, orderer, org MSPs, admin identities; the
JSON of ``gx devnet env --json``) and the channel — plus where each org's peer reaches its chaincode server (the
address a CCaaS package's connection.json holds). Running the chaincode servers is not its job: the local
profile starts processes (:class:`gxlib.chaincode.deploy.ChaincodeOperator`), Kubernetes rolls Deployments
(:mod:`gxlib.runbook.kubernetes_chaincode`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from gxlib.config import ChaincodeSettings
from gxlib.devnet.crypto import ChaincodeTLS
from gxlib.errors import GxError
from gxlib.fabric.errors import EvaluateError, TransportError
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


class FabricNetworkError(GxError):
    """The Fabric network's environment document cannot be read or lacks what the lifecycle needs."""


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


def validate_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise DeployError(f"version {version!r} is not valid: use letters, digits, '.', '_', '+', '-' "
                          "(e.g. 1.0), at most 64 characters")
    return version


class ChaincodeEndpoint(Protocol):
    """Where one org's peer reaches the org's chaincode server (what the org's package points at)."""

    @property
    def name(self) -> str: ...
    @property
    def org_key(self) -> str: ...
    @property
    def msp_id(self) -> str: ...
    @property
    def address(self) -> str: ...


E = TypeVar("E", bound=ChaincodeEndpoint)


def connection_info(address: str, dial_timeout: str, tls: ChaincodeTLS | None) -> ConnectionInfo:
    """What the org's package tells its peer: the address, and with ``tls`` (an endpoint's ``tls`` attribute)
    TLS against the org's TLS CA with the peer's client pair (SPEC §10); the material is issued on first use."""
    if tls is None:
        return ConnectionInfo(address=address, dial_timeout=dial_timeout)
    tls.ensure()
    return ConnectionInfo(address=address, dial_timeout=dial_timeout, tls_required=True, client_auth_required=True,
                          root_cert=tls.ca_cert.read_text(), client_cert=tls.client_cert.read_text(),
                          client_key=tls.client_key.read_text())


@dataclass(frozen=True)
class FabricNetwork:
    """A Fabric network as a client sees it: the channel and the environment document (read on every use, so a
    devnet's document is always current)."""

    channel: str
    load: Callable[[], dict[str, Any]]

    def environment(self) -> dict[str, Any]:
        return self.load()

    @classmethod
    def from_document(cls, document: dict[str, Any], channel: str) -> FabricNetwork:
        check_environment_document(document, "the environment document")
        return cls(channel, lambda: document)

    @classmethod
    def from_file(cls, path: Path, channel: str) -> FabricNetwork:
        """The network of an environment document file (FabricNetworkError when unreadable or incomplete)."""
        try:
            document = json.loads(Path(path).read_text())
        except OSError as exc:
            raise FabricNetworkError(f"cannot read the Fabric network file {path}: {exc.strerror or exc}",
                                     hint="write it with `gx devnet env --json > FILE` (local) or from the "
                                          "environment's connection profile") from exc
        except ValueError as exc:
            raise FabricNetworkError(f"the Fabric network file {path} is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise FabricNetworkError(f"the Fabric network file {path} is not a JSON object")
        check_environment_document(document, str(path))
        if document.get("channel") not in (None, channel):
            raise FabricNetworkError(f"channel {channel!r} is not the channel of the Fabric network in {path} "
                                     f"({document['channel']!r})", hint="set the channel parameter")
        return cls(channel, lambda: document)


def check_environment_document(document: dict[str, Any], where: str) -> None:
    """FabricNetworkError unless ``document`` names peers, identities and every peer org's admin."""
    missing = [key for key in ("peers", "identities", "roles") if not document.get(key)]
    if missing:
        raise FabricNetworkError(f"{where} lacks {', '.join(missing)}: it must have the shape of "
                                 "`gx devnet env --json` (peers, orderer, identities, roles.org_admins)")
    admins = document["roles"].get("org_admins") or {}
    without = sorted({str(p.get("org")) for p in document["peers"]} - set(admins))
    if without:
        raise FabricNetworkError(f"{where} names no admin identity for org(s) {', '.join(without)} "
                                 "(roles.org_admins)")


def peer_orgs(document: dict[str, Any]) -> dict[str, str]:
    """org key → MSP ID of every peer org in an environment document, in the document's order."""
    return {str(p["org"]): str(p["msp_id"]) for p in document.get("peers", [])}


class ChaincodeLifecycle(Generic[E]):
    """The lifecycle phases of one chaincode on ``network``, as each org's admin; ``servers`` are where each org's
    peer reaches its chaincode server (one per peer org)."""

    def __init__(self, network: FabricNetwork, servers: Sequence[E], settings: ChaincodeSettings,
                 progress: Progress) -> None:
        self.network = network
        self.servers: list[E] = list(servers)
        self.settings = settings
        self.progress = progress

    @property
    def channel(self) -> str:
        return self.network.channel

    def package_for(self, server: ChaincodeEndpoint, version: str, label: str | None = None) -> tuple[bytes, str]:
        """The org's CCaaS package for ``version`` (its connection.json points at the org's server) and its ID;
        the label defaults to ``<label_prefix>_<version>``."""
        label = label or self.settings.label(version)
        package = build_ccaas_package(label, connection_info(server.address, self.settings.dial_timeout,
                                                             getattr(server, "tls", None)))
        return package, package_id(label, package)

    def _admins(self) -> dict[str, Gateway]:
        env = self.network.environment()
        return {s.org_key: Gateway.from_environment(env, f"admin:{s.org_key}") for s in self.servers}

    def _server(self, org_key: str) -> E:
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

    # --- the phases of an upgrade, one by one -----------------------------------------------------------------
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

    async def _install(self, plan: DeployPlan, server: E, lifecycle: Lifecycle) -> bool:
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

    async def _approve(self, plan: DeployPlan, server: E, lifecycles: dict[str, Lifecycle],
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

    async def _evaluate_metadata(self, org_key: str) -> dict[str, Any]:
        env = self.network.environment()
        async with Gateway.from_environment(env, f"admin:{org_key}") as gateway:
            contract = gateway.network(self.channel).contract(self.settings.name)
            msp_id = self._server(org_key).msp_id
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
                    # TransportError: the peer is still dialling the server (a roll just replaced the pods
                    # behind a Service and the node's proxy rules lag) and the call timed out first.
                    except (EvaluateError, TransportError) as exc:
                        if time.monotonic() > deadline:
                            raise DeployError(f"{self.settings.name} does not answer on {server.org_key}'s peer: "
                                              f"{exc}") from exc
                        await asyncio.sleep(0.5)
