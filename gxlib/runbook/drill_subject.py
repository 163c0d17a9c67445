"""What runbook 05's circuit-breaker drill acts on and watches, wherever the backend runs: a :class:`DrillSubject`.

The drill itself (:meth:`gxlib.runbook.validate_monitoring.ValidateMonitoring.breaker_drill`) is the same
everywhere: stop the submitter's Gateway peer, watch the breaker open, the alert go pending → firing → notified,
restore the peer, watch the breaker close, the drill's command commit and the alert resolve, with nothing lost. Only
where each thing is differs:

- ``local_drill_subject``: the local backend (its API, the submitter's ``/metrics`` at its URL), the devnet's peer
  of the submitter's org stopped and restarted (`gx devnet up`), notifications from the stack's webhook record;
- ``cluster_drill_subject`` (env=devnet on this machine's cluster): the backend pods reached through the platform
  (the API and the submitter's ``/metrics`` through port-forwards, the token from ``backend-api-tokens`` — each
  unless given as a parameter), the Fabric nodes still the host's devnet, so the fault is again its Gateway peer
  (the peer of the service identity's org in the backend's ``backend-fabric-client`` network, else org1's) stopped
  and restarted; the notification is Alertmanager's own record of the receivers it sent the alert to. The
  cluster has no NetworkPolicy enforcement (CNI bridge plugin), so cutting the pods' egress is not a fault here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gxlib.backend.client import BackendClient
from gxlib.backend.commands import CommandType
from gxlib.devnet import processes
from gxlib.devnet.layout import Node
from gxlib.devnet.network import Devnet
from gxlib.errors import Unavailable
from gxlib.platform.backend_access import ClusterBackend
from gxlib.platform.settings import platform_settings
from gxlib.progress import Progress
from gxlib.runbook.parameters import ValidateMonitoringParameters
from gxlib.runbook.steps_backend import (
    BackendTarget,
    ClusterBackendFactory,
    api_role_for,
    breaker_state,
    connected_api,
    local_devnet,
)

DRILL_COMMANDS = (CommandType.MINT,)
DEFAULT_GATEWAY_ORG = "org1"


@dataclass
class DrillSubject:
    """The drill's API, how the submitter's breaker is read, and the Gateway peer it stops and restores."""

    api: BackendClient
    breaker: Callable[[], tuple[float | None, str]]  # the submitter's circuit_breaker_state and a description
    gateway: str  # the peer, for the operator: "peer0.org1.gx.local (127.0.0.1:7051)"
    stop_gateway: Callable[[], object]
    restore_gateway: Callable[[], object]
    where: str  # where the backend is, for the operator
    token: str = field(default="", repr=False)  # the API token in use: what the run's summary must mask
    closers: list[Callable[[], object]] = field(default_factory=list)

    def outbox(self) -> dict[str, int]:
        """The outbox's counts by status, as the API reports them (what must not lose a command)."""
        return dict(self.api.system_status().outbox)

    def close(self) -> None:
        for close in self.closers:
            close()


def _peer_subject(api: BackendClient, breaker: Callable[[], tuple[float | None, str]], devnet: Devnet, peer: Node,
                  where: str, token: str, closers: list[Callable[[], object]]) -> DrillSubject:
    return DrillSubject(api=api, breaker=breaker, gateway=f"{peer.name} ({peer.endpoint})",
                        stop_gateway=lambda: processes.stop_node(peer), restore_gateway=devnet.up, where=where,
                        token=token, closers=closers)


def local_drill_subject(backend: BackendTarget) -> DrillSubject:
    """The local backend's drill: its devnet's peer of org1 (the submitter's Gateway)."""
    devnet, submitter = backend.devnet, backend.submitter
    assert devnet is not None and submitter is not None and submitter.metrics_url is not None
    metrics_url = submitter.metrics_url
    return _peer_subject(backend.api, lambda: breaker_state(metrics_url), devnet,
                         devnet.layout.peer_of(DEFAULT_GATEWAY_ORG), f"the local backend at {backend.api.base_url}",
                         backend.token, [])


def gateway_org(document: dict[str, Any] | None) -> str:
    """The org whose peer the backend's Gateway connects to: the service identity's (org1 without a document)."""
    if not document:
        return DEFAULT_GATEWAY_ORG
    service = (document.get("roles") or {}).get("service")
    for identity in document.get("identities") or []:
        if identity.get("name") == service and identity.get("org"):
            return str(identity["org"])
    return DEFAULT_GATEWAY_ORG


def cluster_drill_subject(params: ValidateMonitoringParameters, progress: Progress, *,
                          connect: ClusterBackendFactory | None = None) -> DrillSubject:
    """The drill of env=devnet's backend pods, whose Fabric nodes are this machine's devnet; Unavailable (naming
    the parameter) when the devnet, the API, its token or the submitter cannot be reached."""
    devnet = local_devnet(params, progress)
    cluster = (connect or ClusterBackend.connect)(params.env, platform_settings(params.kubeconfig,
                                                                                 params.kube_context))
    closers: list[Callable[[], object]] = [cluster.close]
    try:
        api_url = params.api_url or cluster.api_forward().value
        token = params.api_token.get_secret_value() if params.api_token is not None else ""
        token = token or cluster.api_token(api_role_for(DRILL_COMMANDS)).value
        metrics_url = params.submitter_metrics_url or cluster.submitter_metrics_forward().value
        network = cluster.fabric_network_file()
        document = json.loads(Path(network.value).read_text(encoding="utf-8")) if network is not None else None
        org = gateway_org(document)
        try:
            peer = devnet.layout.peer_of(org)
        except KeyError as exc:
            raise Unavailable(f"the backend's Gateway peer is of org {org}, which the devnet in "
                              f"{devnet.layout.root} does not have: the drill can only stop a peer of this "
                              "machine's devnet", parameter="devnet_state_dir") from exc
        api = connected_api(api_url, token, progress, start_hint=f"the API pods of {cluster.namespace}")
        closers.insert(0, api.close)
    except BaseException:
        for close in closers:
            close()
        raise
    return _peer_subject(api, lambda: breaker_state(metrics_url), devnet, peer,
                         f"the backend pods of {cluster.namespace} (API at {api_url})", token, closers)
