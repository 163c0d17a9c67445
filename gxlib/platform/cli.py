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
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
def roll_chaincode_command(env: str, package_ids: tuple[str, ...], kubeconfig: Path | None, context: str | None,
                           timeout_s: float) -> None:
    """Restart the chaincode servers of ENV with new package IDs and wait for the rollouts."""
    pairs = dict(item.split("=", 1) for item in package_ids if "=" in item)
    if len(pairs) != len(package_ids):
        raise click.BadParameter("each argument is ORG=PACKAGE_ID, e.g. org1=gxtv3_1.1:<sha256>")
    for roll in _platform(env, kubeconfig, context).roll_chaincode(pairs, timeout_s=timeout_s):
        click.echo(json.dumps(roll.model_dump()))


@k8s.command("status")
@env_argument
@kubeconfig_option
@context_option
def status_command(env: str, kubeconfig: Path | None, context: str | None) -> None:
    """Rollout state of the backend and chaincode Deployments of ENV, as JSON lines."""
    from gxlib.platform.settings import chaincode_names

    platform = _platform(env, kubeconfig, context)
    namespace = platform.profile.backend_namespace
    for name in ("api", "outbox-submitter", "projector"):
        click.echo(json.dumps(platform.rollout_state(name, namespace).model_dump()))
    for org in platform.settings.orgs:
        names = chaincode_names(platform.profile, org)
        click.echo(json.dumps(platform.rollout_state(names.deployment, names.namespace).model_dump()))
