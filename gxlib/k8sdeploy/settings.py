"""What ``gx k8s deploy`` deploys and how long it waits (``GX_K8S_DEPLOY_*``). Where: the cluster's state dir
(gxlib.k8scluster.settings), so ``gx k8s down`` removes everything the deployment put on the host."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEPLOY_DIR = "deploy"
VOLUMES_DIR = "volumes"


class DeploySettings(BaseSettings):
    """``env``: the overlay (k8s/overlays/<env>); ``alert_webhook_url``: where Alertmanager's default receiver
    posts (a webhook; none: the overlay's receiver, which notifies nobody); ``ready_timeout_s``: how long to wait
    for every workload to become Ready; ``storage_class``: the default StorageClass deploy creates;
    ``devnet_port_offset``, ``chaincode_version``, ``chaincode_roll_timeout_s``: the devnet on the node address
    and the chaincode its peers run from the chaincode pods."""

    model_config = SettingsConfigDict(env_prefix="GX_K8S_DEPLOY_", extra="ignore")

    env: str = "devnet"
    alert_webhook_url: str | None = None
    ready_timeout_s: float = 600.0
    storage_class: str = "gx-local"
    # The devnet the deploy starts on the node's address (its nodes' ports moved by this offset).
    devnet_port_offset: int = 0
    chaincode_version: str = "1.0"
    chaincode_roll_timeout_s: float = 300.0


def deploy_dir(cluster_state_dir: Path) -> Path:
    """The generated kustomization and its files."""
    return cluster_state_dir / DEPLOY_DIR


def volumes_dir(cluster_state_dir: Path) -> Path:
    """The local PersistentVolumes' directories (one per claim)."""
    return cluster_state_dir / VOLUMES_DIR
