"""Where a runbook acts: the local profile on this machine, or a Kubernetes environment through the platform layer.

The runbook steps talk to a small per-runbook interface (``MonitoringDeployment`` in
:mod:`gxlib.runbook.deploy_monitoring`, ``ChaincodeLifecycleOperator`` in :mod:`gxlib.runbook.upgrade_chaincode`).
The local implementations drive this machine's processes; the Kubernetes ones belong to ``gxlib.platform`` and
are not wired in yet, so for devnet/testnet/mainnet a runbook records why it cannot act and stops.
"""

from __future__ import annotations

from gxlib.config import Environment


def unavailable_here(env: Environment) -> str | None:
    """Why ``env`` cannot be acted on from this machine, or ``None`` for the local profile."""
    if env is Environment.LOCAL:
        return None
    return (f"not available on this machine: env={env.value} runs on Kubernetes, and the runbooks do not drive the "
            "Kubernetes platform layer (gxlib.platform) yet; nothing was read or changed")
