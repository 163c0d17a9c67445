"""`make demo-k8s` / `gx demo --env devnet`: the same five runbooks as the local demo, on this machine's real
single-node cluster.

`gx k8s deploy` first (idempotent: the cluster, the images, the devnet overlay, the Fabric nodes as a devnet on the
node IP with chaincode 1.0 served by the pods), then the runbooks through papermill with ``env=devnet`` and what a
Kubernetes run needs: the cluster's kubeconfig; for 02 the devnet's environment document (its org admins) and
cluster-ip chaincode addressing (the host's peers are outside the cluster's DNS); for 05 the devnet's state dir,
whose Gateway peer the breaker drill stops and restarts. The API, its token and the backend's Fabric network come
from the cluster (gxlib.platform), as an operator's run would take them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gxlib.demo import DRILL_DONE_MARKER, DemoReport, run_runbooks
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8sdeploy.deploy import DeployReport, OverlayDeployment
from gxlib.k8sdeploy.settings import DeploySettings
from gxlib.platform.settings import ChaincodeAddressing
from gxlib.progress import Progress

# The runbooks' kernels address the chaincode packages by each Service's ClusterIP, and no local admin token
# stands in for the cluster's (one in this process's environment is not handed on as the api_token parameter).
CHAINCODE_ADDRESSING_VARIABLE = "GX_K8S_PLATFORM_CHAINCODE_ADDRESSING"
DROPPED_VARIABLES = ("GX_API_TOKEN",)
CLUSTER_STATE_DIR_VARIABLE = "GX_K8S_CLUSTER_STATE_DIR"


@dataclass
class ClusterRun:
    """What the runbooks of a Kubernetes run are pointed at."""

    env: str
    kubeconfig: Path
    fabric_network_file: Path
    devnet_state_dir: Path
    cluster_state_dir: Path

    def parameters(self, name: str, drill: bool) -> dict[str, Any]:
        common: dict[str, Any] = {"env": self.env, "kubeconfig": str(self.kubeconfig)}
        if name == "02-upgrade-chaincode":
            return {**common, "fabric_network_file": str(self.fabric_network_file)}
        if name == "05-validate-monitoring":
            return {**common, "devnet_state_dir": str(self.devnet_state_dir), "breaker_drill": drill}
        return common

    @staticmethod
    def environ(base: dict[str, str]) -> dict[str, str]:
        """Where the runbooks' secret parameters are read from: ``base`` without a local API token."""
        return {k: v for k, v in base.items() if k not in DROPPED_VARIABLES}

    def kernel_environ(self) -> dict[str, str]:
        """What the runbooks' kernels get beside this process's environment: how the packages address the
        chaincode Services, and the node's state dir (02 builds the chaincode image and imports it there)."""
        return {CHAINCODE_ADDRESSING_VARIABLE: ChaincodeAddressing.CLUSTER_IP.value,
                CLUSTER_STATE_DIR_VARIABLE: str(self.cluster_state_dir)}

    @property
    def drill_marker(self) -> Path:
        return self.devnet_state_dir / DRILL_DONE_MARKER


@dataclass
class ClusterDemoReport(DemoReport):
    deploy: DeployReport | None = None
    deploy_seconds: float = 0.0


def cluster_run(deployment: OverlayDeployment) -> ClusterRun:
    """What the runbooks are pointed at after ``deployment`` deployed."""
    return ClusterRun(deployment.settings.env, deployment.cluster.layout.kubeconfig, deployment.fabric.network_file,
                      deployment.fabric.devnet.settings.state_dir, deployment.cluster.settings.state_dir)


def run_cluster_demo(progress: Progress | None = None, *, cluster_settings: K8sClusterSettings | None = None,
                     settings: DeploySettings | None = None) -> ClusterDemoReport:
    """Deploy, then the five runbooks on the cluster; raises only when the deploy fails (a failing runbook is
    reported, and the rest still run)."""
    progress = progress or Progress()
    started = time.monotonic()
    deployment = OverlayDeployment(cluster_settings, settings, progress=progress)
    progress.info(f"[bold]1/2[/] gx k8s deploy --env {deployment.settings.env}: the cluster, the images, the "
                  "overlay, the Fabric nodes and the chaincode")
    deployed = deployment.deploy()
    deploy_seconds = time.monotonic() - started
    run = cluster_run(deployment)
    progress.info(f"[bold]2/2[/] the runbooks with env={run.env} (kubeconfig {run.kubeconfig})")
    runbooks = run_runbooks(run.parameters, run.environ(dict(os.environ)), run.drill_marker, progress,
                            run.kernel_environ())
    return ClusterDemoReport(runbooks=runbooks.runbooks, report_path=runbooks.report_path,
                             seconds=time.monotonic() - started, deploy=deployed, deploy_seconds=deploy_seconds)
