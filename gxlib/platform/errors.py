"""Errors of the platform layer, each with the object and namespace it concerns."""

from __future__ import annotations

from gxlib.errors import GxError, Unavailable


class PlatformError(GxError):
    """A call to the platform failed."""


class KubernetesApiError(PlatformError):
    """The API server refused or failed a request."""

    def __init__(self, action: str, kind: str, name: str, namespace: str | None, status: int | None,
                 reason: str) -> None:
        where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        super().__init__(f"{action} {where} failed (HTTP {status}): {reason}",
                         hint="check the kubeconfig context and your RBAC permissions in that namespace")
        self.action = action
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.status = status
        self.reason = reason


class PrometheusReloadError(PlatformError):
    """Prometheus did not accept a reload (the endpoint failed, or the pod could not be reached)."""

    def __init__(self, pod: str, namespace: str, method: str, detail: str) -> None:
        super().__init__(f"reloading Prometheus in {namespace}/{pod} by {method} failed: {detail}",
                         hint="check that the pod runs with --web.enable-lifecycle (http) or that exec is allowed "
                         "(signal); its logs say whether the new configuration was rejected")
        self.pod = pod
        self.namespace = namespace
        self.method = method


class RolloutFailedError(PlatformError):
    """A Deployment's rollout stopped progressing (ProgressDeadlineExceeded) or timed out."""

    def __init__(self, namespace: str, deployment: str, detail: str) -> None:
        super().__init__(f"rollout of deployment {namespace}/{deployment} did not complete: {detail}",
                         hint="read the pods' events (`kubectl describe pod`) and the new pods' logs")
        self.namespace = namespace
        self.deployment = deployment


class UnknownOrgError(PlatformError):
    """A package ID was given for an org the environment does not have."""


class ClusterUnavailable(Unavailable):
    """No Kubernetes API server can be used with the given kubeconfig/context; ``parameter`` says which to fix."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(reason, parameter=parameter)
