"""The platform interface and the values it returns."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from gxlib.monitoring.render import Artifact


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


class ChaincodeRoll(BaseModel):
    """The result of rolling one org's chaincode server to a package."""

    org: str
    deployment: str
    namespace: str
    package_id: str
    previous_package_id: str | None
    rollout: RolloutState


class Platform(Protocol):
    """What runbooks 01 (deploy monitoring) and 02 (upgrade chaincode) need from where the system runs."""

    def monitoring_diff(self, artifacts: list[Artifact]) -> list[str]:
        """Names of the monitoring artifacts whose deployed copy differs from ``artifacts``."""
        ...

    def deployed_artifacts(self, artifacts: list[Artifact]) -> dict[str, str | None]:
        """Each artifact's path → what is deployed now, in the rendered file's form (None: nothing deployed)."""
        ...

    def apply_monitoring(self, artifacts: list[Artifact], *, dry_run: bool = False) -> list[AppliedObject]:
        """Deploy the rendered rules, scrape jobs and dashboard."""
        ...

    def reload_prometheus(self, method: ReloadMethod = ReloadMethod.HTTP) -> None:
        """Make Prometheus re-read its configuration and rules."""
        ...

    def roll_chaincode(self, package_ids: dict[str, str], *, timeout_s: float = 300.0) -> list[ChaincodeRoll]:
        """Restart each org's chaincode server with its new package ID (org → ID) and wait until it serves."""
        ...
