"""The platform interface and the values it returns."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from gxlib.config import Environment
from gxlib.monitoring.artifacts import MonitoringArtifact

if TYPE_CHECKING:  # pandas (gxlib[runbooks]) is not loaded by `import gxlib.platform`
    from gxlib.monitoring.queries import PrometheusQueries


class ReloadMethod(StrEnum):
    HTTP = "http"  # POST /-/reload (Prometheus runs with --web.enable-lifecycle)
    SIGNAL = "signal"  # SIGHUP to Prometheus (``kill -HUP 1`` in the container)


class AppliedObject(BaseModel):
    """One object written by an apply; ``changed`` is false when the server kept what it had."""

    kind: str
    name: str
    namespace: str | None
    changed: bool
    dry_run: bool = False
    # A dry run cannot place an object in a namespace that the same apply would create first; such an object is
    # validated by the server in this namespace instead.
    validated_in_namespace: str | None = None


class RolloutState(BaseModel):
    """Where a Deployment's rollout stands (what ``kubectl rollout status`` reads)."""

    namespace: str
    name: str
    generation: int
    observed_generation: int
    replicas: int  # desired
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    total_replicas: int  # pods of every revision
    complete: bool
    failed_reason: str | None = None

    def describe(self) -> str:
        return (f"{self.updated_replicas}/{self.replicas} updated, {self.available_replicas} available, "
                f"{self.total_replicas} total (generation {self.observed_generation}/{self.generation})")


class PodState(BaseModel):
    namespace: str
    name: str
    phase: str
    ready: bool
    restarts: int
    node: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    images: dict[str, str] = {}  # container name → the image its spec names


class ChaincodeRoll(BaseModel):
    """The result of rolling one org's chaincode server to a package."""

    org: str
    deployment: str
    namespace: str
    package_id: str
    previous_package_id: str | None
    rollout: RolloutState
    image: str | None = None  # the image the container was set to (None: left as it was)


class Platform(Protocol):
    """Where the system runs, as the runbooks see it: the monitoring artifacts as rendered and as deployed, how to
    deploy them and make Prometheus load them, and the Prometheus and Alertmanager to ask. :func:`gxlib.platform.
    connect` gives the one of an environment: :class:`~gxlib.platform.local.LocalPlatform` on ``local``,
    :class:`~gxlib.platform.kubernetes_platform.KubernetesPlatform` on devnet/testnet/mainnet.

        platform = connect(Environment.LOCAL)
        changed = [a for a in platform.artifacts() if a.changed]; platform.write(changed); platform.reload_prometheus()
    """

    env: Environment
    prometheus_url: str
    namespace: str  # the backend namespace the dashboard's variable selects
    description: str  # where the artifacts are deployed, for the operator
    fabric_jobs: tuple[str, ...]  # the scrape jobs of the Fabric nodes next to the backend's
    # Whether the artifacts are deployed while Prometheus does not answer (the run still fails on that check).
    deploys_without_prometheus: bool

    @property
    def reload_action(self) -> str:
        """What reloading Prometheus does here, in a sentence."""
        ...

    def check_available(self) -> None:
        """Raise :class:`gxlib.errors.Unavailable` when the deployment cannot be read or changed now."""
        ...

    def prometheus_unready(self) -> str | None:
        """Why Prometheus cannot be reloaded or asked now (``None``: it answers)."""
        ...

    def prometheus(self) -> PrometheusQueries:
        """A client of this environment's Prometheus (the caller closes it)."""
        ...

    def artifacts(self) -> list[MonitoringArtifact]:
        """Scrape config, alert rules and dashboard: rendered from code, next to what is deployed."""
        ...

    def write(self, artifacts: list[MonitoringArtifact]) -> list[str]:
        """Deploy ``artifacts``; returns their locations."""
        ...

    def reload_prometheus(self) -> None:
        """Make Prometheus load the deployed scrape config and rules (raises when it refuses)."""
        ...

    def config_loaded(self) -> bool:
        """Whether Prometheus runs with the deployed scrape config and rules (read-only)."""
        ...
