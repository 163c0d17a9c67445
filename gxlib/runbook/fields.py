"""The parameter fields runbooks share, in groups that carry their descriptions and validators: each written once.

A runbook's parameter model is composed from these groups by inheritance, so every runbook that takes, say,
``kubeconfig`` validates it the same way. Every group derives from ``EnvironmentFields``, which makes ``env``,
``dry_run`` and ``confirm_mainnet`` the first fields of every model — the validators here read ``env`` from
``info.data``, which holds only the fields declared before.

Pydantic orders inherited fields from the last base to the first, so a model lists its groups in reverse::

    class Deploy(KubernetesAccess, PrometheusEndpoint, RunbookParameters):  # env…, prometheus_url,
        reload: bool = True                                                # kubeconfig, kube_context, reload
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from gxlib.config import Environment
from gxlib.runbook import path_checks

NETWORK_FILE_NEEDED = ("the path of the {env} Fabric network's environment document (JSON shaped like "
                       "`gx devnet env --json`)")


def secret(env_var: str, description: str) -> Any:
    """A secret parameter: default ``None``, taken from ``env_var`` when not given, never written to a record."""
    return Field(default=None, description=f"{description} (secret; unset: ${env_var})",
                 json_schema_extra={"secret_env": env_var})


def timeout(default: float, what: str) -> Any:
    """A timeout parameter in seconds: positive, at most a day, described by what it waits for."""
    return Field(default=default, gt=0, le=24 * 3600, description=f"seconds to wait for {what} before failing")


def required_off_local(value: object, info: ValidationInfo, what: str) -> None:
    """ValueError when ``value`` is unset on devnet/testnet/mainnet, saying what to give (``what``)."""
    env = info.data.get("env")
    # mainnet without its confirmation is refused by validate_parameters, with its own message: not masked.
    unconfirmed_mainnet = env is Environment.MAINNET and not info.data.get("confirm_mainnet")
    if value is None and env not in (None, Environment.LOCAL) and not unconfirmed_mainnet:
        assert isinstance(env, Environment)
        raise ValueError(f"required when env is {env.value}: {what.format(env=env.value)}")


class EnvironmentFields(BaseModel):
    """What every runbook takes (SPEC §8): the environment, dry-run and the mainnet confirmation."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    env: Environment = Field(default=Environment.LOCAL,
                             description="environment profile to act on: local, devnet, testnet or mainnet")
    dry_run: bool = Field(default=False, description="report what would change and change nothing")
    confirm_mainnet: bool = Field(default=False, description="must be true to act on mainnet (refused otherwise)")


def _kubeconfig_contexts(path: Path) -> list[str]:
    """The context names of the kubeconfig at ``path`` (ValueError when it is not one)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} cannot be read as a kubeconfig: {exc}") from None
    contexts = document.get("contexts") if isinstance(document, dict) else None
    if not isinstance(contexts, list):
        raise ValueError(f"{path} is not a kubeconfig (it has no contexts)")
    return [str(entry.get("name")) for entry in contexts if isinstance(entry, dict)]


def _kubernetes_only(name: str, info: ValidationInfo) -> None:
    # On env=local a kubeconfig would be ignored; refusing it catches a forgotten `env`.
    if info.data.get("env") is Environment.LOCAL:
        raise ValueError(f"{name} is for devnet/testnet/mainnet (Kubernetes); env=local acts on this machine — "
                         f"set env, or leave {name} unset")


class KubernetesAccess(EnvironmentFields):
    """``kubeconfig`` and ``kube_context``: only off local, an existing kubeconfig, a context it has."""

    kubeconfig: Path | None = Field(
        default=None, description="Kubernetes: the kubeconfig file (default: $GX_K8S_PLATFORM_KUBECONFIG, else "
                                  "$KUBECONFIG, else ~/.kube/config; in a pod, its service account)")
    kube_context: str | None = Field(
        default=None, description="Kubernetes: the kubeconfig context (default: $GX_K8S_PLATFORM_CONTEXT, else the "
                                  "kubeconfig's current context)")

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_is_a_kubeconfig_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        _kubernetes_only("kubeconfig", info)
        path = path_checks.absolute(value)
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        _kubeconfig_contexts(path)
        return path

    @field_validator("kube_context")
    @classmethod
    def _context_is_in_the_kubeconfig(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        _kubernetes_only("kube_context", info)
        if not value.strip():
            raise ValueError("a context name cannot be empty")
        kubeconfig = info.data.get("kubeconfig")
        if isinstance(kubeconfig, Path):
            contexts = _kubeconfig_contexts(kubeconfig)
            if value not in contexts:
                known = ", ".join(contexts) or "none"
                raise ValueError(f"{value!r} is not a context of {kubeconfig} (it has: {known})")
        return value


class PrometheusEndpoint(EnvironmentFields):
    """``prometheus_url`` (an http(s) URL: RunbookParameters checks every ``*_url``)."""

    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL, e.g. a `kubectl port-forward` of prometheus-0 (unset: "
                                  "runbooks 01/05 use the local stack's, or on Kubernetes prometheus-0 through the "
                                  "API server's pod proxy; off local, 03/04 read the submitter's "
                                  "circuit_breaker_state from it when submitter_metrics_url is unset, instead of "
                                  "its own /metrics through a port-forward)")


class AlertmanagerEndpoint(EnvironmentFields):
    """``alertmanager_url``."""

    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager base URL (default: local, the stack's; Kubernetes, the alertmanager "
                                  "Service through the API server's proxy)")


class BackendApi(EnvironmentFields):
    """How the backend is reached: its API, the admin token, the submitter's metrics."""

    api_url: str | None = Field(default=None, description="backend HTTP API base URL (local default: the backend's "
                                                          "GX_BACKEND_API_HOST / GX_BACKEND_API_PORT; Kubernetes "
                                                          "default: a port-forward to Service api in backend-<env>, "
                                                          "open for the run)")
    api_token: SecretStr | None = secret("GX_API_TOKEN", "admin bearer token for the backend API (local default: "
                                                         "the devnet's backend/api-token, written by `gx backend up`; "
                                                         "Kubernetes default: a token with the role the runbook needs "
                                                         "from Secret backend-api-tokens in backend-<env>)")
    submitter_metrics_url: str | None = Field(
        default=None, description="the outbox-submitter's metrics base URL (local default: the local backend's, "
                                  "GX_BACKEND_METRICS_HOST / GX_BACKEND_SUBMITTER_METRICS_PORT; Kubernetes default: "
                                  "a port-forward to Service outbox-submitter-metrics in backend-<env>, unless "
                                  "prometheus_url is given)")


class DevnetStateDir(EnvironmentFields):
    """``devnet_state_dir``: an existing devnet's state directory, made absolute."""

    devnet_state_dir: Path | None = Field(
        default=None, description="local: the devnet's state directory (default: $GX_DEVNET_STATE_DIR, else "
                                  "~/.local/state/gxlib/devnet)")

    @field_validator("devnet_state_dir")
    @classmethod
    def _is_a_devnet(cls, value: Path | None) -> Path | None:
        return None if value is None else path_checks.devnet_state_dir(value)


class MonitoringStateDir(EnvironmentFields):
    """``monitoring_state_dir``: a local monitoring stack's state directory, made absolute."""

    monitoring_state_dir: Path | None = Field(
        default=None, description="local: the monitoring stack's state directory — its config/, URLs and webhook "
                                  "record (default: $GX_MONITORING_STACK_STATE_DIR, else "
                                  "~/.local/state/gxlib/monitoring)")

    @field_validator("monitoring_state_dir")
    @classmethod
    def _is_a_monitoring_stack(cls, value: Path | None) -> Path | None:
        return None if value is None else path_checks.monitoring_state_dir(value)


class FabricNetworkFile(EnvironmentFields):
    """``fabric_network_file``: required off local, an existing JSON document, made absolute."""

    network_file_required_off_local: ClassVar[bool] = True
    fabric_network_file: Path | None = Field(
        default=None, description="devnet/testnet/mainnet: the environment document of the env's Fabric network, "
                                  "JSON shaped like `gx devnet env --json` (peers, orderer, org MSPs, the identities "
                                  "the runbook acts as) — required by 02; unset in 03/04, the one in the cluster's "
                                  "Secret backend-fabric-client, which the backend's workers use")

    @field_validator("fabric_network_file")
    @classmethod
    def _is_given_off_local_and_a_json_document(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if cls.network_file_required_off_local:
            required_off_local(value, info, NETWORK_FILE_NEEDED)
        # Absolute: the notebook runs in its record directory, not where the operator named the file.
        return None if value is None else path_checks.json_document_file(value)


class BackendFabricNetworkFile(FabricNetworkFile):
    """``fabric_network_file`` of the runbooks that talk to the backend (03/04): off local, when it is unset, the
    network the backend's own workers use is read from the cluster (:mod:`gxlib.platform.backend_access`)."""

    network_file_required_off_local: ClassVar[bool] = False
