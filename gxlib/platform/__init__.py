"""Where the system runs — the only package that knows: ``connect(env, ...)`` gives the environment's
:class:`Platform` (the local monitoring stack, or a Kubernetes cluster through the ``kubernetes`` client), which the
runbooks use to render-diff-apply the monitoring, reload Prometheus, and reach Prometheus and Alertmanager; the
chaincode servers of a cluster are rolled through :mod:`gxlib.platform.kubernetes_chaincode`."""

from gxlib.platform.base import (
    AppliedObject,
    ChaincodeRoll,
    Platform,
    PodState,
    ReloadMethod,
    RolloutState,
)

__all__ = ["AppliedObject", "ChaincodeRoll", "Platform", "PodState", "ReloadMethod", "RolloutState"]
