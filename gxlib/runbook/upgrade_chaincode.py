"""Runbook 02 · upgrade chaincode (SPEC §8.2, §2.7), one method per section of
``notebooks/02-upgrade-chaincode.ipynb``: plan → packages → install → approve → commit readiness → commit →
restart the servers → verify.

The logic of each phase is :class:`gxlib.chaincode.deploy.ChaincodeOperator`'s (the same code as
``gx chaincode deploy``); this module puts each phase behind ``rb.step`` with its read-only probe, so a second run
of the committed version reports "already done" everywhere and a dry run shows the plan (next sequence, package
IDs) without touching the ledger. On Kubernetes (env=devnet/testnet/mainnet) the same interface
(``ChaincodeLifecycleOperator``) is :class:`gxlib.platform.kubernetes_chaincode.KubernetesChaincodeOperator`: the same
lifecycle code on the env's Fabric network (``fabric_network_file``), the chaincode servers rolled through
``gxlib.platform``; when the cluster or the network cannot be reached the run records why and stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gxlib.chaincode.deploy import ChaincodeOperator, DeployPlan
from gxlib.chaincode.lifecycle import ChaincodeEndpoint
from gxlib.config import ChaincodeSettings, Environment
from gxlib.devnet.network import Devnet
from gxlib.fabric.errors import FabricError
from gxlib.fabric.lifecycle.definition import CommittedChaincode
from gxlib.platform.chaincode_image import LoadedImage, NodeImages, choose
from gxlib.platform.kubernetes_chaincode import KubernetesChaincodeOperator, kubernetes_operator
from gxlib.platform.probes import Endpoint, kubernetes_api_endpoint
from gxlib.platform.settings import platform_settings
from gxlib.runbook.display import show_table
from gxlib.runbook.endpoint_checks import check_endpoints, devnet_endpoints, network_file_endpoints
from gxlib.runbook.parameters import UpgradeChaincodeParameters
from gxlib.runbook.section import RunbookSection
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps_backend import ledger_height, local_devnet

# A function every version of the GX chaincode has: the runbook's proof that the new version answers.
PROBE_FUNCTION = ("TokenomicsContract", "Mint")


class ChaincodeLifecycleOperator(Protocol):
    """The phases of an upgrade as runbook 02 drives them (``ChaincodeOperator`` is the local implementation,
    ``KubernetesChaincodeOperator`` the one of devnet/testnet/mainnet)."""

    @property
    def servers(self) -> Sequence[ChaincodeEndpoint]: ...

    def plan(self, version: str, label: str | None = None) -> DeployPlan: ...
    def installed(self, plan: DeployPlan) -> dict[str, bool]: ...
    def install(self, plan: DeployPlan, org_key: str) -> bool: ...
    def approvals(self, plan: DeployPlan) -> dict[str, bool]: ...
    def approve(self, plan: DeployPlan, org_key: str) -> bool: ...
    def commit(self, plan: DeployPlan) -> None: ...
    def committed(self, org_key: str | None = None) -> CommittedChaincode | None: ...
    def servers_current(self, plan: DeployPlan) -> bool: ...
    def restart_servers(self, plan: DeployPlan) -> bool: ...
    def server_package_ids(self) -> dict[str, str | None]: ...
    def metadata(self, org_key: str) -> dict[str, Any]: ...


def lists_function(metadata: dict[str, Any], contract: str, function: str) -> bool:
    transactions = metadata.get("contracts", {}).get(contract, {}).get("transactions", [])
    return any(t.get("name") == function for t in transactions)


class UpgradeChaincode(RunbookSection[UpgradeChaincodeParameters]):
    """Runbook 02, section by section; after a stop (platform or devnet unavailable) later sections do nothing."""

    parameters = UpgradeChaincodeParameters

    def __init__(self, rb: Runbook, operator: ChaincodeLifecycleOperator | None = None,
                 devnet: Devnet | None = None) -> None:
        super().__init__(rb)
        self.operator = operator
        self.devnet = devnet
        self.plan: DeployPlan | None = None
        self.height_before: int | None = None
        self.servers_before: dict[str, str | None] = {}

    def ready(self) -> bool:
        return self.plan is not None and self.operator is not None

    # --- 1. committed definition + plan ----------------------------------------------------------------------
    def query_committed(self) -> DeployPlan | None:
        """Find the platform, query the committed definition and plan the upgrade (next sequence, package IDs)."""
        if self.operator is None and not self._find_operator():
            return None
        assert self.operator is not None
        plan = self.operator.plan(self.params.chaincode_version, self.params.package_label())
        self.plan = plan
        self.height_before = ledger_height(self.devnet) if self.devnet is not None else None
        self.servers_before = self.operator.server_package_ids()
        show_table("The committed definition and the plan", [
            {"what": "chaincode", "value": f"{plan.name} on {plan.channel}"},
            {"what": "committed", "value": f"version {plan.committed_version}, sequence {plan.committed_sequence}"
             if plan.committed_version is not None else "nothing committed yet"},
            {"what": "new definition", "value": f"version {plan.version}, sequence {plan.sequence}"
             + (" (already committed: nothing to do)" if plan.already_committed else "")},
            {"what": "package label", "value": plan.label},
            {"what": "ledger height", "value": self.height_before if self.height_before is not None else "unknown"},
        ], ("what", "value"))
        return plan

    def endpoints(self) -> list[Endpoint]:
        """What the run would use: the local devnet's orderer and peers (none when no devnet was created there), or
        the Kubernetes API server and the orderer and peers of ``fabric_network_file``."""
        params = self.params
        if params.env is Environment.LOCAL:
            return devnet_endpoints(params.devnet_state_dir)
        found = [kubernetes_api_endpoint(platform_settings(params.kubeconfig, params.kube_context))]
        if params.fabric_network_file is not None:
            found += network_file_endpoints(params.fabric_network_file)
        return found

    def _find_operator(self) -> bool:
        """The local devnet's operator (env=local) or the Kubernetes one; False after recording why there is none.
        A dry run first checks that every endpoint the run would use answers, and fails naming each that does not."""
        params = self.params
        if self.rb.dry_run and not check_endpoints(self, self.endpoints()):
            return False
        if params.env is Environment.LOCAL:
            with self.unless_unavailable("devnet up"):
                self.devnet = local_devnet(params, self.rb.progress)
                self.operator = ChaincodeOperator(self.devnet, ChaincodeSettings(name=params.chaincode_name),
                                                  self.rb.progress)
                self.rb.checks.record("devnet up", True, measured="every node healthy")
            return self.operator is not None
        with self.unless_unavailable("platform available", fails_dry_run=True), \
                self.rb.progress.task(f"reaching {params.env.value}: Fabric network, API server, Deployments"):
            assert params.fabric_network_file is not None  # required off local by the parameters
            operator = kubernetes_operator(params.env, platform_settings(params.kubeconfig, params.kube_context),
                                           fabric_network_file=params.fabric_network_file,
                                           channel=params.channel_name(), chaincode_name=params.chaincode_name,
                                           chaincode_addresses=params.chaincode_addresses,
                                           restart_timeout_s=params.restart_timeout_s, progress=self.rb.progress)
            self.operator = operator
            host = operator.cluster_api.api.configuration.host
            deployments = ", ".join(f"{s.namespace}/{s.name}" for s in operator.servers)
            self.rb.checks.record("platform available", True, measured=f"API server {host}; {deployments}",
                                  expected="API server answers, chaincode Deployments and Services exist")
        return self.operator is not None

    # --- 2. packages -------------------------------------------------------------------------------------------
    def build_packages(self) -> None:
        """Show each org's CCaaS package: label, package ID, size, the server its connection.json points at."""
        if self.skip_section("packages"):
            return
        assert self.plan is not None and self.operator is not None
        show_table("Packages (chaincode as a service: one per org, built in memory)", [
            {"org": s.org_key, "label": self.plan.label, "package ID": self.plan.package_ids[s.org_key],
             "bytes": len(self.plan.packages[s.org_key]), "chaincode server": s.address,
             "server runs now": self.servers_before.get(s.org_key)}
            for s in self.operator.servers],
            ("org", "label", "package ID", "bytes", "chaincode server", "server runs now"))
        if isinstance(self.operator, KubernetesChaincodeOperator):
            self._chaincode_image(self.operator)

    def _chaincode_image(self, operator: KubernetesChaincodeOperator) -> None:
        """The image the chaincode servers roll to (``chaincode_image``): on this machine's node, built from
        chaincode/Dockerfile unless cached and imported unless the node has it (a step: "already done" when it
        does); a given reference is used as is; ``keep`` leaves the Deployments' image."""
        with self.unless_unavailable("chaincode image", fails_dry_run=True):
            image = choose(self.params.chaincode_image, operator.cluster_api.api.configuration.host,
                           NodeImages(progress=self.rb.progress))
        if self.stopped is not None:
            return
        operator.use_image(image.reference)
        node = image.node
        if node is None:
            if image.reference is None:
                self.rb.checks.skip("chaincode image", image.reason)
            else:
                self.rb.checks.record("chaincode image", True, measured=image.reference, expected=image.reason)
            return
        loaded: list[LoadedImage] = []
        self.rb.step("chaincode image on the node",
                     changes=f"build {node.reference} from chaincode/Dockerfile (unless the image cache has it) and "
                             "import it into the node's containerd",
                     is_done=node.on_node, apply=lambda: loaded.append(node.load()))
        if self.rb.dry_run and not loaded and not node.on_node():
            self.rb.checks.skip("chaincode image", f"dry run: {node.reference} would be built and imported")
            return
        how = (f"built in {loaded[0].archive.parent} ({loaded[0].compressed_size / 2**20:.0f} MiB compressed)"
               if loaded and loaded[0].built else "from the image cache" if loaded else "already on the node")
        self.rb.checks.record("chaincode image", node.on_node(), measured=f"{node.reference}: {how}",
                              expected=image.reason)

    # --- 3. install ----------------------------------------------------------------------------------------------
    def install(self) -> None:
        if self.skip_section("install"):
            return
        assert self.plan is not None and self.operator is not None
        plan, operator = self.plan, self.operator
        for server in operator.servers:
            org = server.org_key
            self.rb.step(f"install on {org}'s peer", changes=f"install {plan.package_ids[org]}",
                         is_done=lambda org=org: operator.installed(plan)[org],  # type: ignore[misc]
                         apply=lambda org=org: operator.install(plan, org))  # type: ignore[misc]

    # --- 4. approve --------------------------------------------------------------------------------------------
    def approve(self) -> None:
        if self.skip_section("approve"):
            return
        assert self.plan is not None and self.operator is not None
        plan, operator = self.plan, self.operator
        for server in operator.servers:
            msp, org = server.msp_id, server.org_key
            self.rb.step(f"approve for {msp}",
                         changes=f"approve {plan.name} {plan.version} sequence {plan.sequence} with "
                                 f"{plan.package_ids[org]}",
                         is_done=lambda msp=msp: operator.approvals(plan).get(msp, False),  # type: ignore[misc]
                         apply=lambda org=org: operator.approve(plan, org))  # type: ignore[misc]

    # --- 5. commit readiness -------------------------------------------------------------------------------------
    def check_commit_readiness(self) -> None:
        if self.skip_section("commit readiness"):
            return
        assert self.plan is not None and self.operator is not None
        approvals = self.operator.approvals(self.plan)
        measured = ", ".join(f"{msp}={'yes' if ok else 'no'}" for msp, ok in sorted(approvals.items()))
        name = f"commit readiness (sequence {self.plan.sequence})"
        if self.plan.already_committed:
            self.rb.checks.skip(name, f"{self.plan.version} is already committed at sequence {self.plan.sequence}: "
                                "nothing to commit")
        elif self.rb.dry_run and not all(approvals.values()):
            self.rb.checks.skip(name, f"dry run: the approvals were not made (now: {measured})")
        else:
            self.rb.checks.record(name, all(approvals.values()), measured=measured, expected="every org approved")

    # --- 6. commit ----------------------------------------------------------------------------------------------
    def commit(self) -> None:
        if self.skip_section("commit"):
            return
        assert self.plan is not None and self.operator is not None
        plan, operator = self.plan, self.operator

        def committed_everywhere() -> tuple[bool, str]:
            seen = {s.org_key: operator.committed(s.org_key) for s in operator.servers}
            state = ", ".join(f"{org}: {c.version if c else None}/{c.sequence if c else None}"
                              for org, c in seen.items())
            return all(c is not None and c.version == plan.version and c.sequence == plan.sequence
                       for c in seen.values()), state

        def commit() -> None:
            operator.commit(plan)
            self.rb.progress.wait_until(f"{plan.name} {plan.version} to be committed on every org's peer",
                                        committed_everywhere, timeout_s=self.params.commit_timeout_s,
                                        interval_s=0.5)

        self.rb.step(f"commit {plan.name} {plan.version}",
                     changes=f"commit sequence {plan.sequence} on {plan.channel} (committed now: "
                             f"{plan.committed_sequence})",
                     is_done=lambda: committed_everywhere()[0], apply=commit)

    # --- 7. restart the servers ------------------------------------------------------------------------------
    def restart_servers(self) -> None:
        if self.skip_section("restart"):
            return
        assert self.plan is not None and self.operator is not None
        plan, operator = self.plan, self.operator

        def restart() -> None:
            operator.restart_servers(plan)
            self.rb.progress.wait_until(f"{plan.name} to answer on every org's peer", self._answering,
                                        timeout_s=self.params.restart_timeout_s, interval_s=0.5)

        image = operator.image if isinstance(operator, KubernetesChaincodeOperator) else None
        self.rb.step("restart the chaincode servers",
                     changes=", ".join(f"{s.name} on {s.address} with {plan.package_ids[s.org_key]}"
                                       for s in operator.servers) + (f"; image {image}" if image else ""),
                     is_done=lambda: operator.servers_current(plan), apply=restart)

    def _answering(self) -> tuple[bool, str]:
        assert self.operator is not None
        for server in self.operator.servers:
            try:
                self.operator.metadata(server.org_key)
            except FabricError as exc:
                return False, f"{server.org_key}: {exc}"
        return True, "every org's peer gets an answer"

    # --- 8. verify ---------------------------------------------------------------------------------------------
    def verify(self) -> None:
        if self.skip_section("verify"):
            return
        assert self.plan is not None and self.operator is not None
        plan, operator = self.plan, self.operator
        if self.rb.dry_run:
            if self.devnet is not None:
                self.rb.checks.equal("dry run changed nothing: ledger height", ledger_height(self.devnet),
                                     self.height_before, unit="blocks")
            committed = operator.committed()
            self.rb.checks.equal("dry run changed nothing: committed definition",
                                 (committed.version, committed.sequence) if committed else None,
                                 (plan.committed_version, plan.committed_sequence) if plan.committed_version
                                 is not None else None)
            self.rb.checks.equal("dry run changed nothing: chaincode servers' package IDs",
                                 operator.server_package_ids(), self.servers_before)
            self.rb.checks.skip("new version answers", "dry run: nothing was upgraded")
            return
        for server in operator.servers:
            committed = operator.committed(server.org_key)
            self.rb.checks.equal(f"committed version on {server.org_key}'s peer",
                                 committed.version if committed else None, plan.version)
            self.rb.checks.equal(f"committed sequence on {server.org_key}'s peer",
                                 committed.sequence if committed else None, plan.sequence)
        self.rb.checks.record("chaincode servers run the new package", operator.servers_current(plan),
                              measured=", ".join(f"{s.org_key}: {plan.package_ids[s.org_key]}"
                                                 for s in operator.servers), expected=f"{plan.label}:<sha256>")
        if isinstance(operator, KubernetesChaincodeOperator) and operator.image is not None:
            running = operator.cluster_api.chaincode_images()
            measured = ", ".join(f"{s.org_key}: {running.get(s.org_key)}" for s in operator.servers)
            self.rb.checks.record("chaincode servers run the image", not operator.image_drift(), measured=measured,
                                  expected=operator.image)
        contract, function = PROBE_FUNCTION
        for server in operator.servers:
            try:
                metadata = operator.metadata(server.org_key)
                listed = lists_function(metadata, contract, function)
                detail = "" if listed else f"GetMetadata lists {sorted(metadata.get('contracts', {}))}"
            except FabricError as exc:
                listed, detail = False, str(exc)
            self.rb.checks.record(f"{server.org_key}'s peer: GetMetadata lists {contract}:{function}", listed,
                                  measured="listed" if listed else "not listed", expected="listed", detail=detail)
        if self.devnet is not None:
            self.rb.progress.info(f"  ledger height: {self.height_before} → {ledger_height(self.devnet)}")

