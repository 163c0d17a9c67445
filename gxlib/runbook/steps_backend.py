"""What runbooks 03–05 share about the CQRS backend: finding it, reading the ledger, and following a command
API → outbox → block → projection with the time of each stage.

``backend_target(params)`` finds the backend of ``params.env`` as a :class:`BackendTarget`, or raises
:class:`gxlib.errors.Unavailable` with the reason when something is missing, so a runbook can say what the operator
has to start or give, instead of failing somewhere later:

- ``local_backend``: the devnet (its state directory), the API (``api_url`` or the backend's ``GX_BACKEND_*``
  settings), the admin token (``api_token`` / ``$GX_API_TOKEN``, else the token file ``gx backend up`` wrote next
  to the devnet), the ledger as the devnet's service identity, the submitter's ``/metrics``.
- ``remote_backend`` (devnet/testnet/mainnet on Kubernetes): the parameters first, the env's cluster for what they
  do not give (:class:`gxlib.platform.backend_access.ClusterBackend`, as the kubeconfig's user) — the API at
  ``api_url``, else through a port-forward to Service ``api`` of ``backend-<env>`` open for the run; ``api_token``,
  else a token with the role the runbook needs from Secret ``backend-api-tokens``; the ledger through the Gateway
  of the env's Fabric network (``fabric_network_file``, else the cluster's Secret ``backend-fabric-client``, as its
  service identity); the submitter's ``circuit_breaker_state`` from ``submitter_metrics_url`` if given, else from
  the Prometheus at ``prometheus_url`` (its ``namespace="backend-<env>"`` series), else from its own ``/metrics``
  through a port-forward to Service ``outbox-submitter-metrics``; with no cluster to ask, the checks that need it
  are skipped, saying why. ``BackendTarget.sources`` says where each came from (never a secret). There is no
  devnet: what only a local devnet answers (its processes, its peers' operations endpoints) is not asked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from gxlib.backend.api.schemas import CommandView
from gxlib.backend.client import FINAL_STATUSES, BackendApiError, BackendClient
from gxlib.backend.commands import CommandType, command_spec
from gxlib.backend.ids import MAX_LEDGER_ID_LENGTH
from gxlib.backend.local import devnet_api_token_file
from gxlib.backend.settings import ApiRole
from gxlib.chaincode.deploy import ChaincodeOperator, ChaincodeStatus
from gxlib.chaincode.lifecycle import ChaincodeLifecycle, FabricNetwork, FabricNetworkError, peer_orgs
from gxlib.config import ChaincodeSettings, DevnetSettings, Environment, environment_profile
from gxlib.devnet.network import Devnet
from gxlib.errors import GxError, Unavailable
from gxlib.fabric.errors import EvaluateError, TransportError
from gxlib.fabric.lifecycle.client import Lifecycle
from gxlib.fabric.lifecycle.definition import CommittedChaincode
from gxlib.fabric.sync import SyncContract, SyncGateway
from gxlib.monitoring.exposition import metric_samples
from gxlib.monitoring.queries import PrometheusError, PrometheusQueries
from gxlib.monitoring.scrape import SUBMITTER_JOB
from gxlib.platform.backend_access import ClusterBackend, Sourced, cluster_backend_endpoints
from gxlib.platform.connect import local_api_token, local_backend_endpoints
from gxlib.platform.probes import Endpoint, http_endpoint
from gxlib.platform.settings import KubernetesPlatformSettings, platform_settings
from gxlib.progress import Progress
from gxlib.runbook.endpoint_checks import check_endpoints, devnet_endpoints, network_file_endpoints
from gxlib.runbook.parameters import PRECISION, BackendParameters, CommandParameters, UpgradeChaincodeParameters
from gxlib.runbook.section import RunbookSection
from gxlib.runbook.session import Runbook

# SPEC §2.3: the pools BootstrapSystem mints, in coins.
BOOTSTRAP_POOLS: dict[str, int] = {
    "SYSTEM_USER_GENESIS_POOL": 500_000_000,
    "SYSTEM_GOVT_GENESIS_POOL": 300_000_000,
    "SYSTEM_CHARITABLE_POOL": 50_000_000,
    "SYSTEM_LOAN_POOL": 100_000_000,
}
BREAKER_STATES = {0.0: "closed", 0.5: "half-open", 1.0: "open"}
# How runbooks find the backend of a cluster: ClusterBackend.connect, or a test's stand-in.
ClusterBackendFactory = Callable[[Environment, KubernetesPlatformSettings], ClusterBackend]


def api_role_for(commands: Iterable[CommandType]) -> ApiRole:
    """The least API role that may submit every one of ``commands`` (reader when there is none)."""
    order = list(ApiRole)
    return max((command_spec(command).api_role for command in commands), key=order.index, default=ApiRole.READER)


def pool_units(pool: str) -> int:
    """The amount BootstrapSystem mints into ``pool``, in precision units."""
    return BOOTSTRAP_POOLS[pool] * PRECISION


def idempotency_key(runbook: str, *parts: object) -> str:
    """A fixed key for a runbook's command: the same parameters give the same key, so a re-run never enqueues a
    second command (the API returns the caller's original). It is a ledger ID (SPEC §9: letters, digits and
    ``_ - . :``, at most 128 characters): other characters become ``_``, and a key that had to be changed or cut
    ends in a digest of the whole text, so two different parameter sets never share a key."""
    text = ":".join([runbook, *(str(p) for p in parts)])
    safe = re.sub(r"[^A-Za-z0-9_.:-]", "_", text)
    if safe == text and len(text) <= MAX_LEDGER_ID_LENGTH:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{safe[:MAX_LEDGER_ID_LENGTH - len(digest) - 1]}.{digest}"


# --- the ledger ------------------------------------------------------------------------------------------------
class LedgerReader:
    """Read-only questions to the GX chaincode through the Gateway, as the service identity of ``environment`` (an
    environment document: ``Devnet.environment()`` or a Fabric network file)."""

    def __init__(self, environment: dict[str, Any], channel: str, chaincode: str) -> None:
        self.gateway = SyncGateway.from_environment(environment, "service")
        self.channel = channel
        self.network = self.gateway.network(channel)
        self.contract: SyncContract = self.network.contract(chaincode)

    def _evaluate(self, function: str, *args: str) -> Any:
        raw = self.contract.evaluate(function, *args)
        return json.loads(raw) if raw else None

    def system_status(self) -> dict[str, Any]:
        """``AdminContract:GetSystemStatus``: bootstrapped, the pools' balances, the counters."""
        return dict(self._evaluate("AdminContract:GetSystemStatus"))

    def balance(self, account_id: str) -> int:
        return int(self._evaluate("TokenomicsContract:GetBalance", account_id)["balance"])

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user's ledger record, or ``None`` when it does not exist."""
        from gxlib.fabric.errors import EvaluateError

        try:
            return dict(self._evaluate("IdentityContract:GetUser", user_id))
        except EvaluateError as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def height(self) -> int:
        """The channel's height on the Gateway peer."""
        return self.network.block_height()

    def committed_definition(self, chaincode: str) -> CommittedChaincode | None:
        """The chaincode's committed definition as this identity reads it; None when there is none, or when the
        channel's ACL refuses the identity the query (not an org admin, not a writer)."""
        lifecycle = Lifecycle(self.gateway.gateway, self.channel)
        try:
            return self.gateway.run(lifecycle.query_committed(chaincode))
        except (EvaluateError, TransportError):
            return None

    def close(self) -> None:
        self.gateway.close()


# --- the submitter ---------------------------------------------------------------------------------------------
def _described(value: float) -> str:
    return f"circuit_breaker_state {value:g} ({BREAKER_STATES.get(value, 'unknown')})"


def breaker_state(metrics_url: str) -> tuple[float | None, str]:
    """The submitter's ``circuit_breaker_state`` and a description (``None`` when it cannot be read)."""
    try:
        value = metric_samples(metrics_url).get("circuit_breaker_state")
    except PrometheusError as exc:
        return None, exc.message
    if value is None:
        return None, f"{metrics_url}/metrics has no circuit_breaker_state"
    return value, _described(value)


def breaker_state_queries(namespace: str) -> tuple[str, str]:
    """The PromQL for the submitter of ``namespace``: its scrape target up, and its ``circuit_breaker_state``."""
    selector = f'namespace="{namespace}"'
    return f'max(up{{job="{SUBMITTER_JOB}",{selector}}})', f"max(circuit_breaker_state{{{selector}}})"


def prometheus_breaker_state(prometheus: PrometheusQueries, namespace: str) -> tuple[float | None, str]:
    """The submitter's ``circuit_breaker_state`` as the Prometheus that scrapes ``namespace`` has it, and a
    description (``None`` when it cannot be read). A submitter whose target is down is not healthy, whatever
    its last sample said: the series of a dead target stays for minutes."""
    up_query, state_query = breaker_state_queries(namespace)
    try:
        up = prometheus.instant(up_query)
        state = prometheus.instant(state_query)
    except PrometheusError as exc:
        return None, str(exc)
    where = f"Prometheus at {prometheus.url}"
    if up.empty:
        return None, f"{where} has no {SUBMITTER_JOB} target in {namespace}"
    if float(up["value"].iloc[0]) < 1:
        return None, f"{where}: the {SUBMITTER_JOB} target in {namespace} is down"
    if state.empty:
        return None, f"{where} has no circuit_breaker_state in {namespace}"
    return float(state["value"].iloc[0]), f"{_described(float(state['value'].iloc[0]))} in {namespace} (Prometheus)"


@dataclass
class SubmitterProbe:
    """Where the outbox-submitter's health and ``circuit_breaker_state`` are read: its own ``/metrics``
    (``metrics_url``), else the Prometheus that scrapes it (``prometheus``, series of ``namespace``)."""

    metrics_url: str | None = None
    prometheus: PrometheusQueries | None = None
    namespace: str = ""
    unavailable: str | None = None  # why neither can be read (e.g. no Ready submitter pod to forward to)

    @property
    def where(self) -> str:
        """What answering means, for a check's *expected* column."""
        if self.metrics_url is not None:
            return f"{self.metrics_url}/metrics answers"
        if self.prometheus is None:
            return "the submitter's /metrics answers"
        return f"{SUBMITTER_JOB} in {self.namespace} up in Prometheus at {self.prometheus.url}"

    def breaker_state(self) -> tuple[float | None, str]:
        if self.metrics_url is not None:
            return breaker_state(self.metrics_url)
        if self.prometheus is None:
            return None, self.unavailable or "the submitter is not seen from here"
        assert self.prometheus is not None
        return prometheus_breaker_state(self.prometheus, self.namespace)

    def close(self) -> None:
        if self.prometheus is not None:
            self.prometheus.close()


def no_submitter_probe(env: Environment) -> str:
    """Why the submitter's checks are skipped on ``env`` when neither of its sources is given."""
    return (f"not checked: neither submitter_metrics_url nor prometheus_url is set, and env={env.value}'s submitter "
            "runs in a cluster this run cannot reach — give kubeconfig / kube_context, or a `kubectl port-forward` "
            "of the submitter's metrics port, or of the Prometheus that scrapes it")


# --- the backend a runbook talks to ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerOrg:
    """A peer org of the network, for read-only lifecycle questions (no package is built: no address)."""

    name: str
    org_key: str
    msp_id: str
    address: str = ""


@dataclass
class BackendTarget:
    """The API client, the ledger reader, the Fabric network and where the submitter is seen (``None``: nowhere
    from here); ``devnet`` only on the local profile."""

    api: BackendClient
    ledger: LedgerReader
    network: FabricNetwork
    submitter: SubmitterProbe | None
    chaincode: str = field(default_factory=lambda: ChaincodeSettings().name)
    devnet: Devnet | None = None
    token: str = field(default="", repr=False)  # the API token in use: what a record must mask
    token_source: str = ""  # where it came from, for the operator
    # Where the API, the network and the submitter's metrics came from (off local), for the record: no secret.
    sources: dict[str, str] = field(default_factory=dict)
    cluster: ClusterBackend | None = None  # what was opened in the cluster for this run (closed with the target)

    def effective(self) -> str:
        """The endpoints in use, for the run's header (the token shown as ``***``)."""
        submitter = self.submitter.where if self.submitter is not None else "not read from here"
        api_from = f" (from {self.sources['api_url']})" if "api_url" in self.sources else ""
        network = (f", Fabric network from {self.sources['fabric_network_file']}"
                   if "fabric_network_file" in self.sources else "")
        submitter_from = (f" (from {self.sources['submitter_metrics_url']})"
                          if "submitter_metrics_url" in self.sources else "")
        return (f"api_url={self.api.base_url}{api_from}, api_token=*** (from {self.token_source}){network}, "
                f"submitter: {submitter}{submitter_from}, channel={self.channel}")

    @property
    def channel(self) -> str:
        return self.network.channel

    def chaincode_status(self, progress: Progress) -> ChaincodeStatus:
        """The chaincode's committed definition and whether it answers: on the local profile with its server
        processes (``gx chaincode status``); elsewhere from the peers alone (the servers are pods)."""
        settings = ChaincodeSettings(name=self.chaincode)
        if self.devnet is not None:
            return ChaincodeOperator(self.devnet, settings, progress).status()
        if not self.network.environment()["roles"].get("org_admins"):
            return self._chaincode_status_as_service(settings)
        orgs = [PeerOrg(f"peer of {org}", org, msp) for org, msp in peer_orgs(self.network.environment()).items()]
        lifecycle = ChaincodeLifecycle(self.network, orgs, settings, progress)
        committed = lifecycle.committed()
        answering = False
        if committed is not None:
            try:
                lifecycle.metadata(orgs[0].org_key)
                answering = True
            except (EvaluateError, TransportError):  # refused, or the peer cannot reach the chaincode's pod
                answering = False
        return ChaincodeStatus(name=settings.name, channel=self.channel, committed=committed is not None,
                               version=committed.version if committed else None,
                               sequence=committed.sequence if committed else None,
                               approvals=committed.approvals if committed else {}, installed={}, servers=[],
                               answering=answering)

    def _chaincode_status_as_service(self, settings: ChaincodeSettings) -> ChaincodeStatus:
        """With the backend's own network (its service identities, no org admin to ask the lifecycle as): the
        committed definition as the service identity reads it (``_lifecycle`` QueryChaincodeDefinition is open to
        the channel's members), and whether the chaincode answers it. Version and sequence stay unknown (None) when
        the channel's ACL refuses the identity that query."""
        try:
            self.ledger.system_status()
            answering = True
        except (EvaluateError, TransportError):
            answering = False
        committed = self.ledger.committed_definition(settings.name)
        return ChaincodeStatus(name=settings.name, channel=self.channel, committed=answering or committed is not None,
                               version=committed.version if committed else None,
                               sequence=committed.sequence if committed else None,
                               approvals=committed.approvals if committed else {}, installed={}, servers=[],
                               answering=answering)

    def close(self) -> None:
        self.api.close()
        self.ledger.close()
        if self.submitter is not None:
            self.submitter.close()
        if self.cluster is not None:
            self.cluster.close()


def connected_api(api_url: str, token: str, progress: Progress, *, start_hint: str) -> BackendClient:
    """A client of the API at ``api_url`` that answered and accepted ``token``; Unavailable when not."""
    api = BackendClient(api_url, token)
    healthy, seen = api.healthy()
    if not healthy:
        api.close()
        raise Unavailable(f"the backend API does not answer: {seen} ({start_hint})", parameter="api_url")
    try:
        status = api.system_status()  # proves the token too
    except BackendApiError as exc:  # unreachable, or the token refused (401/403)
        api.close()
        raise Unavailable(str(exc), parameter="api_token") from exc
    progress.info(f"  backend API {api_url}: read model at block {status.checkpointBlock}, outbox {status.outbox}")
    return api


def reachable_check(env: Environment) -> str:
    """The name of the check that the backend was found: through the devnet on local, from the parameters off it."""
    return "devnet and backend reachable" if env is Environment.LOCAL else "backend API and Fabric network reachable"


def backend_target(params: BackendParameters, progress: Progress, role: ApiRole = ApiRole.ADMIN) -> BackendTarget:
    """The backend of ``params.env`` (off local with a token of ``role``); Unavailable when it cannot be reached
    now."""
    if params.env is Environment.LOCAL:
        return local_backend(params, progress)
    if not isinstance(params, CommandParameters):
        raise TypeError(f"{type(params).__name__} does not describe a backend off local")
    return remote_backend(params, progress, role)


def local_devnet(params: BackendParameters | UpgradeChaincodeParameters, progress: Progress) -> Devnet:
    """The devnet ``params`` point at (its settings in force); Unavailable when it cannot be used now: missing, not
    every node healthy, or not on the ``channel`` asked for."""
    settings = DevnetSettings(state_dir=params.devnet_state_dir) if params.devnet_state_dir else DevnetSettings()
    devnet = Devnet(settings, progress=progress)
    if not devnet.layout.settings_file.exists():
        raise Unavailable(f"there is no devnet in {devnet.layout.root} (create it with `gx devnet up`, or set "
                          "devnet_state_dir)", parameter="devnet_state_dir")
    # Again with the settings in force (port offset, channel), so that `up()` (the drill's restore) finds no
    # mismatch with what the network was created with.
    devnet = Devnet(devnet.settings, progress=progress)
    status = devnet.status()
    if not status.all_healthy:
        down = ", ".join(n.name for n in status.nodes if not n.healthy) or "every node"
        raise Unavailable(f"the devnet in {devnet.layout.root} is not up ({down} not healthy): start it with "
                          "`gx devnet up`", parameter="devnet_state_dir")
    if params.channel is not None and params.channel != devnet.settings.channel:
        raise Unavailable(f"channel {params.channel!r} is not on the devnet in {devnet.layout.root}, whose channel "
                          f"is {devnet.settings.channel!r}", parameter="channel")
    return devnet


def local_backend(params: BackendParameters, progress: Progress) -> BackendTarget:
    """Everything runbooks 03–05 talk to on the local profile; Unavailable when it is not there."""
    devnet = local_devnet(params, progress)
    local = local_backend_endpoints()
    api_url = params.api_url or local.api_url
    metrics_url = params.submitter_metrics_url or local.submitter_metrics_url
    token = params.api_token.get_secret_value() if params.api_token is not None else None
    token_source = "api_token / $GX_API_TOKEN"
    if not token:
        token, token_source = local_api_token(devnet.layout.root), f"{devnet_api_token_file(devnet.layout.root)}"
    if not token:
        raise Unavailable(f"no API token: set $GX_API_TOKEN (or api_token), or start the backend with `gx backend "
                          f"up`, which writes {devnet_api_token_file(devnet.layout.root)}", parameter="api_token")
    api = connected_api(api_url, token, progress, start_hint="start it with `gx backend up`, or set api_url")
    network = FabricNetwork(devnet.settings.channel, devnet.environment)
    ledger = LedgerReader(devnet.environment(), devnet.settings.channel, ChaincodeSettings().name)
    return BackendTarget(api, ledger, network, SubmitterProbe(metrics_url=metrics_url), devnet=devnet,
                         token=token, token_source=token_source)


class _InCluster:
    """The env's cluster, connected the first time a value has to come from it."""

    def __init__(self, params: CommandParameters, connect: ClusterBackendFactory) -> None:
        self.params = params
        self.connect = connect
        self.backend: ClusterBackend | None = None

    def get(self, parameter: str) -> ClusterBackend:
        """The cluster's backend; Unavailable naming what to give instead when there is no cluster to ask."""
        if self.backend is None:
            params = self.params
            try:
                self.backend = self.connect(params.env, platform_settings(params.kubeconfig, params.kube_context))
            except Unavailable as exc:
                raise Unavailable(f"{parameter} is unset, and it cannot be found in the cluster: {exc.reason}",
                                  parameter=exc.parameter) from exc
        return self.backend

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def remote_backend(params: CommandParameters, progress: Progress, role: ApiRole = ApiRole.ADMIN, *,
                   connect: ClusterBackendFactory | None = None) -> BackendTarget:
    """The backend of a Kubernetes env: the parameters first, the cluster for the rest (see the module docstring;
    ``connect`` defaults to ClusterBackend.connect); Unavailable (naming the parameter that would help) if it
    cannot be reached."""
    cluster = _InCluster(params, connect or ClusterBackend.connect)
    try:
        return _remote_backend(params, progress, role, cluster)
    except BaseException:
        cluster.close()
        raise


def _remote_backend(params: CommandParameters, progress: Progress, role: ApiRole,
                    cluster: _InCluster) -> BackendTarget:
    env = params.env.value
    channel = params.channel_name()
    given_token = params.api_token.get_secret_value() if params.api_token is not None else ""
    token = (Sourced(given_token, "api_token / $GX_API_TOKEN") if given_token
             else cluster.get("api_token").api_token(role))
    if params.fabric_network_file is not None:
        network_file = Sourced(params.fabric_network_file, "fabric_network_file")
    else:
        found = cluster.get("fabric_network_file").fabric_network_file()
        if found is None:
            backend = cluster.get("fabric_network_file")
            raise Unavailable(f"fabric_network_file is unset, and the cluster has no Secret {backend.namespace}/"
                              f"{backend.settings.fabric_client_secret} to read the network from — set "
                              f"fabric_network_file ({NETWORK_FILE_HINT})", parameter="fabric_network_file")
        network_file = found
    try:
        network = (FabricNetwork.from_file(network_file.value, channel) if params.fabric_network_file is not None
                   else _workers_network(network_file, channel))
    except FabricNetworkError as exc:
        raise Unavailable(f"fabric_network_file: {exc}", parameter="fabric_network_file") from exc
    document = network.environment()
    if "service" not in document["roles"]:
        raise Unavailable(f"fabric_network_file {network_file.value} names no service identity "
                          "(roles.service): the ledger is read as the backend's service identity",
                          parameter="fabric_network_file")
    api_url = Sourced(params.api_url, "api_url") if params.api_url else cluster.get("api_url").api_forward()
    api = connected_api(api_url.value, token.value, progress,
                        start_hint=f"check api_url: the {env} ingress, or a `kubectl port-forward` of the API Service"
                        if params.api_url else f"the API pods behind {api_url.source} do not answer")
    sources = {"api_url": api_url.source, "fabric_network_file": network_file.source}
    namespace = environment_profile(params.env).backend_namespace
    submitter: SubmitterProbe | None = None
    if params.submitter_metrics_url is not None:
        submitter = SubmitterProbe(metrics_url=params.submitter_metrics_url)
        sources["submitter_metrics_url"] = "submitter_metrics_url"
    elif params.prometheus_url is not None:
        submitter = SubmitterProbe(prometheus=PrometheusQueries(params.prometheus_url, namespace=namespace),
                                   namespace=namespace)
        sources["submitter_metrics_url"] = f"Prometheus at {params.prometheus_url} (prometheus_url)"
    else:
        submitter, where = _submitter_in_cluster(cluster)
        if where:
            sources["submitter_metrics_url"] = where
    try:
        ledger = LedgerReader(document, channel, ChaincodeSettings().name)
    except (GxError, OSError) as exc:  # the service identity's files, or its peer, are not there
        api.close()
        if submitter is not None:
            submitter.close()
        raise Unavailable(f"fabric_network_file {network_file.value} ({network_file.source}): the Gateway cannot "
                          f"be set up: {exc}", parameter="fabric_network_file") from exc
    progress.info(f"  ledger: channel {channel} through the Gateway of {network_file.source}")
    return BackendTarget(api, ledger, network, submitter, token=token.value, token_source=token.source,
                         sources=sources, cluster=cluster.backend)


NETWORK_FILE_HINT = "`gx devnet env --json > FILE` writes the devnet's"


def _workers_network(network_file: Sourced[Path], channel: str) -> FabricNetwork:
    """The network of the backend's workers (its fabric-client Secret): their signing identities and Gateway
    peers, without org admins — enough to read the ledger as the service identity. FabricNetworkError if not."""
    where = network_file.source
    try:
        document = json.loads(network_file.value.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FabricNetworkError(f"the network document of {where} cannot be read: {exc}") from exc
    if not isinstance(document, dict) or not all(document.get(key) for key in ("peers", "identities", "roles")):
        raise FabricNetworkError(f"the network document of {where} lacks peers, identities or roles")
    if document.get("channel") not in (None, channel):
        raise FabricNetworkError(f"channel {channel!r} is not the channel of the network in {where} "
                                 f"({document['channel']!r})", hint="set the channel parameter")
    return FabricNetwork(channel, lambda: document)


def _submitter_in_cluster(cluster: _InCluster) -> tuple[SubmitterProbe | None, str]:
    """The submitter's ``/metrics`` through a port-forward, and where that leads. No cluster to ask: ``None`` (its
    checks are skipped); a cluster without a Ready submitter pod: a probe that says so (its checks fail)."""
    try:
        backend = cluster.get("submitter_metrics_url")
    except Unavailable:
        return None, ""
    try:
        forward = backend.submitter_metrics_forward()
    except Unavailable as exc:
        return SubmitterProbe(unavailable=exc.reason), ""
    return SubmitterProbe(metrics_url=forward.value), forward.source


def ledger_height(devnet: Devnet) -> int | None:
    """The channel's height on the devnet's peers (the lowest, while a block is still propagating)."""
    heights = [n.ledger_height for n in devnet.status().nodes if n.ledger_height is not None]
    return min(heights) if heights else None


def backend_endpoints(params: BackendParameters, role: ApiRole = ApiRole.ADMIN) -> list[Endpoint]:
    """The endpoints runbooks 03–05 reach the backend and the ledger by: on local those of the devnet
    ``params`` point at (none when no devnet was created there), the API and the submitter's metrics; off local
    the API, the network file's orderer and peers, and where the submitter is seen (its metrics, else Prometheus)."""
    if params.env is Environment.LOCAL:
        fabric = devnet_endpoints(params.devnet_state_dir)
        if not fabric:
            return []
        local = local_backend_endpoints()
        return [*fabric, http_endpoint("backend API", params.api_url or local.api_url, "/healthz"),
                http_endpoint("outbox-submitter metrics", params.submitter_metrics_url or local.submitter_metrics_url,
                              "/metrics")]
    found: list[Endpoint] = []
    if params.api_url is not None:
        found.append(http_endpoint("backend API", params.api_url, "/healthz"))
    if isinstance(params, CommandParameters) and params.fabric_network_file is not None:
        found += network_file_endpoints(params.fabric_network_file)
    if params.submitter_metrics_url is not None:
        found.append(http_endpoint("outbox-submitter metrics", params.submitter_metrics_url, "/metrics"))
    elif isinstance(params, CommandParameters) and params.prometheus_url is not None:
        found.append(http_endpoint("Prometheus", params.prometheus_url, "/-/ready"))
    if isinstance(params, CommandParameters):
        # What the parameters leave to the cluster: the same port-forwards and Secrets a real run uses.
        # Only the submitter unseen is no reason to need a cluster: a run without one skips its checks.
        token_given = params.api_token is not None and bool(params.api_token.get_secret_value())
        needs_cluster = params.api_url is None or not token_given or params.fabric_network_file is None
        found += cluster_backend_endpoints(
            params.env, platform_settings(params.kubeconfig, params.kube_context), api=params.api_url is None,
            token_role=None if token_given else role, network=params.fabric_network_file is None,
            submitter=needs_cluster and params.submitter_metrics_url is None and params.prometheus_url is None)
    return found


C = TypeVar("C", bound=CommandParameters)


class BackendSection(RunbookSection[C]):
    """The sections of a runbook that posts commands to the backend (03, 04): ``target`` is the backend found;
    ``submits`` the commands it posts (their roles decide which token it takes from a cluster)."""

    submits: ClassVar[tuple[CommandType, ...]] = ()

    def __init__(self, rb: Runbook, target: BackendTarget | None = None) -> None:
        super().__init__(rb)
        self.target = target

    def ready(self) -> bool:
        return self.target is not None

    def find_backend(self) -> BackendTarget | None:
        """The backend of ``params.env`` (recorded as reachable), or None after the run stopped on why not. A dry
        run first checks that every endpoint the run would use answers, and fails naming each one that does not."""
        check = reachable_check(self.params.env)
        role = api_role_for(self.submits)
        if (self.target is None and self.rb.dry_run
                and not check_endpoints(self, backend_endpoints(self.params, role))):
            return None
        if self.target is None:
            with self.unless_unavailable(check):
                self.target = backend_target(self.params, self.rb.progress, role)
        if self.target is not None:
            self.rb.add_secret(self.target.token)
            self.rb.progress.info(f"  in effect: {self.target.effective()}")
            sources = "; ".join(f"{name} from {where}" for name, where in self.target.sources.items())
            self.rb.checks.record(check, True, measured=self.target.api.base_url, detail=sources)
        return self.target

    def close(self) -> None:
        if self.target is not None:
            self.target.close()


# --- following a command ---------------------------------------------------------------------------------------
def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


@dataclass
class CommandTrace:
    """One command's way through the system, with the moment of each stage (UTC)."""

    name: str
    command_type: str
    idempotency_key: str
    command_id: str
    duplicate: bool
    status: str = "PENDING"
    accepted_at: datetime | None = None
    first_submitted_at: datetime | None = None
    committed_at: datetime | None = None
    projected_at: datetime | None = None
    fabric_tx_id: str | None = None
    block: int | None = None
    attempts: int = 0
    error: str | None = None

    def update(self, view: CommandView) -> None:
        self.status = view.status
        self.accepted_at = _aware(view.createdAt)
        self.first_submitted_at = _aware(view.firstSubmittedAt)
        self.committed_at = _aware(view.committedAt)
        self.fabric_tx_id = view.fabricTxId
        self.block = view.blockNumber
        self.attempts = view.attempts
        self.error = view.errorMessage

    @property
    def accepted_to_committed_ms(self) -> float | None:
        return _ms(self.accepted_at, self.committed_at)

    @property
    def committed_to_projected_ms(self) -> float | None:
        return _ms(self.committed_at, self.projected_at)

    def row(self) -> dict[str, Any]:
        return {
            "command": self.name, "type": self.command_type, "status": self.status,
            "commandId": self.command_id, "duplicate": self.duplicate, "block": self.block,
            "fabricTxId": (self.fabric_tx_id or "")[:16], "attempts": self.attempts,
            "accepted→committed ms": self.accepted_to_committed_ms,
            "committed→projected ms": self.committed_to_projected_ms,
        }


TRACE_COLUMNS = ("command", "type", "status", "block", "attempts", "accepted→committed ms", "committed→projected ms",
                 "duplicate", "commandId", "fabricTxId")


def submit_command(api: BackendClient, name: str, command_type: str, payload: dict[str, Any],
                   key: str) -> CommandTrace:
    """POST the command and start its trace."""
    accepted = api.submit(command_type, payload, key)
    trace = CommandTrace(name, command_type, key, accepted.commandId, accepted.duplicate, status=accepted.status)
    trace.update(api.command(accepted.commandId))
    return trace


def follow_to_block(rb: Runbook, api: BackendClient, trace: CommandTrace, timeout_s: float) -> CommandTrace:
    """Wait (with progress) until the command is final in the outbox: COMMITTED in a block, or FAILED/DLQ."""
    seen: list[str] = []

    def probe() -> tuple[bool, str | None]:
        trace.update(api.command(trace.command_id))
        stage = trace.status if trace.block is None else f"{trace.status} in block {trace.block}"
        if not seen or seen[-1] != stage:
            seen.append(stage)
            rb.progress.info(f"    {trace.name}: {' → '.join(seen)}")
        return trace.status in FINAL_STATUSES, f"{trace.status} after {trace.attempts} attempt(s)"

    rb.progress.wait_until(f"{trace.name} ({trace.command_id}) to reach its block", probe, timeout_s=timeout_s,
                           interval_s=0.1)
    return trace


def wait_projected(rb: Runbook, trace: CommandTrace, what: str, probe: Callable[[], tuple[bool, str | None]],
                   timeout_s: float) -> CommandTrace:
    """Wait until ``probe`` sees the command's effect in the read model; records when it was first seen."""
    rb.progress.wait_until(f"{what} in the read model", probe, timeout_s=timeout_s, interval_s=0.05)
    trace.projected_at = datetime.now(UTC)
    return trace


def record_path(rb: Runbook, name: str) -> Path:
    """Where a runbook writes a file of this run: its record directory — a run without one (a template run by hand)
    gets one under runs/ here, which its summary then goes to as well."""
    if rb.record_dir is None:
        from gxlib.runbook.records import new_record_dir
        from gxlib.runbook.settings import RunbookSettings

        rb.record_dir = new_record_dir(RunbookSettings().runs_path(), rb.name, rb.started)
    return rb.record_dir / name
