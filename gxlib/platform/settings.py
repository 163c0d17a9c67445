"""Settings of the Kubernetes platform (``GX_K8S_PLATFORM_*``) and the object names it works on.

The names follow the kustomize overlays in k8s/ (a test holds both to each other): the chaincode server of
org ``orgN`` in environment ``env`` is Deployment ``<chaincode>-orgN-<env>`` in the Fabric namespace, with its
package ID in ConfigMap ``<chaincode>-package-orgN-<env>`` (key ``CHAINCODE_ID``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxlib.config import EnvironmentProfile

CHAINCODE_ID_KEY = "CHAINCODE_ID"
PACKAGE_ID_ANNOTATION = "gx.io/chaincode-package-id"


class ChaincodeAddressing(StrEnum):
    """What address an org's CCaaS package names for its chaincode Service.

    ``service-dns``: ``<service>.<namespace>:<port>``, which peers inside the cluster resolve. ``cluster-ip``: the
    Service's ClusterIP and port, for peers outside the cluster's DNS but routed to its Services (the devnet's
    peers on the node itself, where kube-proxy handles ClusterIPs)."""

    SERVICE_DNS = "service-dns"
    CLUSTER_IP = "cluster-ip"


class KubernetesPlatformSettings(BaseSettings):
    """How to reach the cluster and what to call things in it."""

    model_config = SettingsConfigDict(env_prefix="GX_K8S_PLATFORM_", extra="ignore")

    kubeconfig: Path | None = None  # default: $KUBECONFIG or ~/.kube/config
    context: str | None = None
    field_manager: str = "gxlib"
    prometheus_statefulset: str = "prometheus"
    prometheus_container: str = "prometheus"
    prometheus_port: int = 9090
    # The Alertmanager Deployment's Service (k8s/monitoring/stack/alertmanager.yaml), reached through the service
    # proxy: the Deployment's pods have no fixed name.
    alertmanager_service: str = "alertmanager"
    alertmanager_port: int = 9093
    orgs: tuple[str, ...] = ("org1", "org2")
    chaincode_container: str = "chaincode"  # the container of each org's chaincode Deployment (k8s/base/chaincode)
    chaincode_addressing: ChaincodeAddressing = ChaincodeAddressing.SERVICE_DNS
    request_timeout_s: float = 30.0
    poll_interval_s: float = 0.5
    # The backend of ``backend-<env>`` (k8s/base/backend), reached through a port-forward when no URL is given.
    api_service: str = "api"
    api_service_port: int | str | None = None  # None: the Service's only port
    submitter_metrics_service: str = "outbox-submitter-metrics"
    submitter_metrics_port: int | str | None = None
    api_tokens_secret: str = "backend-api-tokens"
    api_tokens_key: str = "GX_BACKEND_API_TOKENS"  # JSON: bearer token → role
    # The Fabric network the backend's workers use: one key holds the network document, the others the files it
    # names (found by file name).
    fabric_client_secret: str = "backend-fabric-client"
    fabric_network_key: str = "network.json"


class ChaincodeNames(BaseModel):
    org: str
    namespace: str
    deployment: str
    config_map: str
    tls_secret: str  # the chaincode server's TLS pair and client CA (the overlay mounts it; the platform writes it)


def chaincode_names(profile: EnvironmentProfile, org: str) -> ChaincodeNames:
    base = profile.chaincode_name
    return ChaincodeNames(org=org, namespace=profile.monitoring_namespace,
                          deployment=f"{base}-{org}-{profile.env.value}",
                          config_map=f"{base}-package-{org}-{profile.env.value}",
                          tls_secret=f"{base}-chaincode-tls-{org}-{profile.env.value}")


def prometheus_pod(settings: KubernetesPlatformSettings) -> str:
    """The StatefulSet's first pod (``prometheus-0``)."""
    return f"{settings.prometheus_statefulset}-0"


def platform_settings(kubeconfig: Path | None = None, context: str | None = None) -> KubernetesPlatformSettings:
    """``GX_K8S_PLATFORM_*``, with a runbook's ``kubeconfig`` / ``kube_context`` taking precedence when given."""
    given = {"kubeconfig": kubeconfig, "context": context}
    return KubernetesPlatformSettings().model_copy(update={key: value for key, value in given.items()
                                                           if value is not None})
