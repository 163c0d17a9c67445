"""One interface for what the runbooks do to a running system — apply the monitoring configuration, reload
Prometheus, load the dashboard, roll the chaincode servers to a new package, read rollout and pod state — with a
Kubernetes implementation (the ``kubernetes`` client) and a local one (files + the local Prometheus)."""

from gxlib.platform.base import (
    AppliedObject,
    ChaincodeRoll,
    Platform,
    PodState,
    ReloadMethod,
    RolloutState,
)

__all__ = ["AppliedObject", "ChaincodeRoll", "Platform", "PodState", "ReloadMethod", "RolloutState"]
