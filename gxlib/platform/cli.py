"""``gx k8s``: build the Kubernetes tools, build and apply an environment's overlay, roll the chaincode, read state.

Thin: each command builds its settings and calls gxlib.k8sbuild or gxlib.platform. The lead mounts this group in
gxlib/cli.py (``cli.add_command(k8s)``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click
import yaml

from gxlib.config import Environment, environment_profile
from gxlib.errors import GxError
from gxlib.progress import Progress

KUBERNETES_ENVS = [Environment.DEVNET.value, Environment.TESTNET.value, Environment.MAINNET.value]
env_argument = click.argument("env", type=click.Choice(KUBERNETES_ENVS))
kubeconfig_option = click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False), default=None,
                                 help="kubeconfig file [env GX_K8S_PLATFORM_KUBECONFIG; default $KUBECONFIG]")
context_option = click.option("--context", default=None, help="kubeconfig context [env GX_K8S_PLATFORM_CONTEXT]")


def _overlay_objects(env: str) -> list[dict[str, Any]]:
    from gxlib.k8sbuild.binaries import KUSTOMIZE, ensure_k8s_tools
    from gxlib.k8sbuild.settings import K8sBuildSettings
    from gxlib.monitoring.cli import repository_root

    kustomize = ensure_k8s_tools(K8sBuildSettings(), [KUSTOMIZE], progress=Progress()).binary(KUSTOMIZE)
    overlay = repository_root() / "k8s" / "overlays" / env
    proc = subprocess.run([str(kustomize), "build", str(overlay)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GxError(f"kustomize build {overlay} failed:\n{proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _platform(env: str, kubeconfig: Path | None, context: str | None):  # type: ignore[no-untyped-def]
    from gxlib.platform.cluster import connect_cluster
    from gxlib.platform.kubernetes import KubernetesCluster
    from gxlib.platform.settings import KubernetesPlatformSettings

    overrides: dict[str, Any] = {k: v for k, v in (("kubeconfig", kubeconfig), ("context", context)) if v}
    settings = KubernetesPlatformSettings(**overrides)
    return KubernetesCluster(connect_cluster(settings).api, environment_profile(env), settings=settings,
                              progress=Progress())


@click.group()
def k8s() -> None:
    """Kubernetes: the kustomize overlays in k8s/ and the platform operations of runbooks 01 and 02."""


@k8s.command("build")
@click.option("--force", is_flag=True, help="Rebuild even what is cached.")
@click.option("--kustomize-only", is_flag=True, help="Only kustomize (what the manifest tests need).")
def build_command(force: bool, kustomize_only: bool) -> None:
    """Build kustomize, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubelet, kube-proxy and
    kubectl into the cache."""
    from gxlib.k8sbuild.binaries import KUSTOMIZE, TOOLS, build_k8s_tools
    from gxlib.k8sbuild.settings import K8sBuildSettings

    install = build_k8s_tools(K8sBuildSettings(), [KUSTOMIZE] if kustomize_only else TOOLS, Progress(), force=force)
    click.echo(install.bin_dir)


@k8s.command("render")
@env_argument
def render_command(env: str) -> None:
    """Print the overlay of ENV (`kustomize build k8s/overlays/ENV`)."""
    click.echo(yaml.safe_dump_all(_overlay_objects(env), sort_keys=False), nl=False)


@k8s.command("apply")
@env_argument
@kubeconfig_option
@context_option
@click.option("--dry-run", is_flag=True, help="Server-side dry run: the API server validates, nothing is stored.")
def apply_command(env: str, kubeconfig: Path | None, context: str | None, dry_run: bool) -> None:
    """Server-side apply the overlay of ENV."""
    results = _platform(env, kubeconfig, context).apply(_overlay_objects(env), dry_run=dry_run)
    for result in results:
        click.echo(json.dumps(result.model_dump()))


@k8s.command("roll-chaincode")
@env_argument
@click.argument("package_ids", nargs=-1, required=True, metavar="ORG=PACKAGE_ID...")
@kubeconfig_option
@context_option
@click.option("--image", default=None, metavar="REFERENCE",
              help="also set the chaincode container's image (one the nodes can pull or already have)")
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
def roll_chaincode_command(env: str, package_ids: tuple[str, ...], kubeconfig: Path | None, context: str | None,
                           image: str | None, timeout_s: float) -> None:
    """Restart the chaincode servers of ENV with new package IDs (and, with --image, a new image) and wait for the
    rollouts and for the old pods to go."""
    pairs = dict(item.split("=", 1) for item in package_ids if "=" in item)
    if len(pairs) != len(package_ids):
        raise click.BadParameter("each argument is ORG=PACKAGE_ID, e.g. org1=gxtv3_1.1:<sha256>")
    for roll in _platform(env, kubeconfig, context).roll_chaincode(pairs, image=image, timeout_s=timeout_s):
        click.echo(json.dumps(roll.model_dump()))


@k8s.command("status")
@click.argument("env", type=click.Choice(KUBERNETES_ENVS), required=False)
@kubeconfig_option
@context_option
@click.option("--json", "as_json", is_flag=True, help="Without ENV: the local cluster's status as one JSON document.")
def status_command(env: str | None, kubeconfig: Path | None, context: str | None, as_json: bool) -> None:
    """Without ENV: the local single-node cluster (`gx k8s up`) — processes, nodes, system pods, cached binaries
    and images. With ENV: rollout state of the backend and chaincode Deployments of ENV, as JSON lines."""
    from gxlib.platform.settings import chaincode_names

    if env is None:
        _cluster_status(as_json)
        return
    platform = _platform(env, kubeconfig, context)
    namespace = platform.profile.backend_namespace
    for name in ("api", "outbox-submitter", "projector"):
        click.echo(json.dumps(platform.rollout_state(name, namespace).model_dump()))
    for org in platform.settings.orgs:
        names = chaincode_names(platform.profile, org)
        click.echo(json.dumps(platform.rollout_state(names.deployment, names.namespace).model_dump()))


# --- the local single-node cluster ------------------------------------------------------------------------------
@k8s.command("up")
def up_command() -> None:
    """Start a real single-node cluster on this host (containerd, control plane, kubelet, kube-proxy, CoreDNS).

    State in ~/.local/state/gxlib/k8s-cluster (GX_K8S_CLUSTER_STATE_DIR); a second `up` finds it running.
    Prints the kubeconfig path."""
    from gxlib.k8scluster.cluster import NodeCluster

    result = NodeCluster(progress=Progress()).up()
    verb = "already running" if result.already_running else f"up in {result.seconds:.0f}s"
    click.echo(f"cluster {verb}; KUBECONFIG={result.status.kubeconfig}", err=True)
    click.echo(result.status.kubeconfig)


# `gx k8s down` is registered by gxlib.cli from gxlib.k8sdeploy.cli: it also stops the devnet `gx k8s deploy`
# started (this layer may not import k8sdeploy).


def _cluster_status(as_json: bool) -> None:
    from gxlib.k8scluster.cluster import NodeCluster

    status = NodeCluster(progress=Progress()).status()
    if as_json:
        click.echo(json.dumps({**status.model_dump(), "running": status.running}, indent=2))
        return
    click.echo(f"state dir: {status.state_dir}  running: {status.running}  api: {status.server or '-'}")
    for process in status.processes:
        click.echo(f"  process {process.name:<24} pid {process.pid:<8} {'running' if process.running else 'STOPPED'}")
    for node in status.nodes:
        click.echo(f"  node {node.name} Ready={node.ready} ip={node.internal_ip} {node.container_runtime or ''}")
    for pod in status.system_pods:
        click.echo(f"  pod {pod.namespace}/{pod.name} {pod.phase} ready={pod.ready} restarts={pod.restarts}")
    click.echo(f"  binaries cached: {', '.join(sorted(status.binaries)) or 'none'}")
    click.echo(f"  images: {', '.join(status.images) or 'none'}")
