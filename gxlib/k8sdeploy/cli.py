"""``gx k8s deploy``: thin — settings from the options and the environment, then gxlib.k8sdeploy.deploy; prints a
summary (or one JSON document with ``--json``; progress goes to stderr). Mounted in ``gx k8s`` by gxlib/cli.py."""

from __future__ import annotations

import json

import click

from gxlib.k8sdeploy.settings import DeploySettings
from gxlib.progress import Progress


@click.command("deploy")
@click.option("--env", "env", type=click.Choice(["devnet"]), default="devnet", show_default=True,
              help="the overlay k8s/overlays/ENV")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document: objects, images, readiness")
def deploy_command(env: str, as_json: bool) -> None:
    """Run the overlay of ENV on the local single-node cluster, idempotently.

    \b
    1. `gx k8s up` (nothing to do when the cluster runs);
    2. builds the images the overlay names (gxlib.k8simages; only those whose inputs changed) and imports them;
    3. writes a kustomization into <cluster state dir>/deploy: the repository's overlay plus kustomize `images:`
       overrides to the local builds; Grafana at 0 replicas (not buildable here: AGPL), the reason in the file;
    4. a default StorageClass (no provisioner, WaitForFirstConsumer) and one static local PersistentVolume per
       StatefulSet claim, its directory under <cluster state dir>/volumes;
    5. the Secrets the manifests require (PostgreSQL's password, the backend's database URL and API token),
       created once in the cluster, never written to a file;
    6. a server-side apply (a second deploy changes nothing), then waits until every Deployment and
       StatefulSet is Ready and the migration Job complete.

    `gx k8s down` removes the cluster and everything deploy put on the host. Settings: GX_K8S_CLUSTER_* (the
    cluster), GX_K8S_DEPLOY_ALERT_WEBHOOK_URL (Alertmanager's receiver), GX_K8S_DEPLOY_READY_TIMEOUT_S.
    """
    from gxlib.k8sdeploy.deploy import OverlayDeployment
    from gxlib.k8sdeploy.errors import NotReady

    try:
        report = OverlayDeployment(settings=DeploySettings(env=env), progress=Progress()).deploy()
    except NotReady as exc:
        if as_json and exc.report is not None:  # what was deployed, with the readiness that was not reached
            click.echo(json.dumps(exc.report.to_json(), indent=2))
        raise
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    doc = report.to_json()
    click.echo(f"{env}: {len(report.objects)} objects, {doc['changed']} created or changed, "
               f"in {report.seconds:.0f}s (kustomization {report.kustomization})")
    for image in report.images:
        how = "built" if image.built else "cached"
        click.echo(f"  image {image.reference:<60} {how}{', imported' if image.imported else ''}")
    for volume in report.volumes:
        click.echo(f"  volume {volume['claim']:<40} {volume['path']}")
    for state in report.readiness:
        mark = "Ready" if state.done else "NOT READY"
        click.echo(f"  {state.kind:<12} {state.namespace}/{state.name:<32} {state.ready}/{state.desired} {mark}")
    for scaled in report.scaled_to_zero:
        click.echo(f"  {scaled['workload']} at 0 replicas: {scaled['reason']}")


@click.command("down")
def down_command() -> None:
    """Stop the local cluster and put the host back (processes, mounts, devices, iptables chains, sysctls), the
    devnet `gx k8s deploy` started on the node address first; the volumes and generated files go with the
    cluster's state dir."""
    from gxlib.k8sdeploy.deploy import OverlayDeployment

    click.echo(json.dumps(OverlayDeployment(progress=Progress()).down(), indent=2))
