"""Where a runbook acts: the local profile on this machine, or a Kubernetes environment through the platform layer.

The runbook steps talk to a small per-runbook interface (``MonitoringDeployment`` in
:mod:`gxlib.runbook.deploy_monitoring`, ``ChaincodeLifecycleOperator`` in :mod:`gxlib.runbook.upgrade_chaincode`),
each with a local implementation and one on Kubernetes through ``gxlib.platform``
(:mod:`gxlib.runbook.kubernetes_monitoring`, :mod:`gxlib.runbook.kubernetes_chaincode`); those runbooks say
themselves why a cluster cannot be acted on. The runbooks that drive only this machine's processes (03–05) ask
here, and for devnet/testnet/mainnet record why they cannot act and stop.
"""

from __future__ import annotations

from gxlib.config import Environment


def unavailable_here(env: Environment) -> str | None:
    """Why a runbook that acts on this machine only cannot act on ``env``, or ``None`` for the local profile."""
    if env is Environment.LOCAL:
        return None
    return (f"not available on this machine: env={env.value} runs on Kubernetes, and this runbook does not drive the "
            "Kubernetes platform layer (gxlib.platform); nothing was read or changed")
