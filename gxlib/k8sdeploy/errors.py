"""The deployment's typed errors: each names what was being deployed and what the operator can do."""

from __future__ import annotations

from typing import Any

from gxlib.errors import GxError


class DeployError(GxError):
    """A step of ``gx k8s deploy`` failed (``step`` names it: kustomize, apply, secrets, storage, ...)."""

    def __init__(self, step: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"deploy ({step}): {problem}", hint=hint)
        self.step = step
        self.problem = problem


class ImageNotInCatalog(DeployError):
    """The overlay names an image that gxlib.k8simages does not build (and that is not scaled to zero)."""

    def __init__(self, images: list[str]) -> None:
        super().__init__("images", f"the overlay names images no catalog recipe builds: {', '.join(images)}",
                         hint="add a recipe to gxlib/k8simages/catalog.py and an entry to "
                              "gxlib/k8sdeploy/images.py (or a not-built reason there)")
        self.images = images


class NotReady(DeployError):
    """Workloads that did not become Ready in time; ``details`` has each one's pods' waiting reasons and last
    warning event; ``report`` (set by the deployment) is what the deploy did up to the wait."""

    def __init__(self, details: list[str], timeout_s: float) -> None:
        super().__init__("readiness", f"not Ready after {timeout_s:.0f}s:\n  " + "\n  ".join(details),
                         hint="`kubectl describe` / `kubectl logs` the pods named above (KUBECONFIG from "
                              "`gx k8s status --json`); a second `gx k8s deploy` continues from here")
        self.details = details
        self.report: Any = None
        self.states: list[Any] = []
