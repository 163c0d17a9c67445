"""The backend that runs in a cluster (namespace ``backend-<env>``, k8s/base/backend), as runbooks 03–05 reach it
when the operator gives no URL, token or network file: through the platform, as the kubeconfig's user.

- the API: a port-forward (:mod:`gxlib.platform.port_forward`) to Service ``api``, open for the run;
- the submitter's ``/metrics``: a port-forward to Service ``outbox-submitter-metrics``;
- the operator's bearer token: from Secret ``backend-api-tokens`` (key ``GX_BACKEND_API_TOKENS``, JSON token →
  role, what the API itself reads), the least privileged token whose role includes the one the runbook needs;
- the Fabric network: from Secret ``backend-fabric-client`` if the cluster has it — one key (``network.json``)
  holds the network document, the other keys the files it names, each found by its file name — written into a
  private directory for the run and removed with it.

Every value comes with where it came from (``Sourced.source``), for the run's record; no source contains a secret.

    with ClusterBackend.connect(Environment.DEVNET, KubernetesPlatformSettings()) as backend:
        api = backend.api_forward()                       # http://127.0.0.1:<port>
        token = backend.api_token(ApiRole.ADMIN)          # Sourced(value=..., source="Secret backend-devnet/…")
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Generic, TypeVar

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from gxlib.backend.settings import ApiRole
from gxlib.config import Environment, environment_profile
from gxlib.errors import Unavailable
from gxlib.platform.cluster import CLUSTER_DOWN, ClusterConnection, connect_cluster
from gxlib.platform.errors import KubernetesApiError, PlatformError
from gxlib.platform.port_forward import PortForward
from gxlib.platform.probes import Endpoint, Probe, fabric_endpoints, http_probe, kubernetes_api_endpoint
from gxlib.platform.settings import KubernetesPlatformSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A value and where it came from (a parameter, a Secret, a port-forward), for the operator."""

    value: T
    source: str

    def __repr__(self) -> str:  # the value may be a token
        return f"Sourced(source={self.source!r})"


class BackendSecretError(PlatformError):
    """A Secret of the backend cannot be used as it is (not JSON, no token with the role needed, ...)."""

    def __init__(self, namespace: str, secret: str, detail: str) -> None:
        super().__init__(f"Secret {namespace}/{secret}: {detail}",
                         hint="check the Secret the overlay's operator created (k8s/README.md)")
        self.namespace = namespace
        self.secret = secret


def parse_api_tokens(raw: bytes, namespace: str, secret: str, key: str) -> dict[str, ApiRole]:
    """The token → role document of the API (``GX_BACKEND_API_TOKENS``); BackendSecretError when malformed."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackendSecretError(namespace, secret, f"key {key} is not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise BackendSecretError(namespace, secret, f"key {key} is not a JSON object of token → role")
    roles = {role.value for role in ApiRole}
    bad = sorted({str(role) for role in document.values() if role not in roles})
    if bad:
        raise BackendSecretError(namespace, secret, f"key {key} names unknown role(s) {', '.join(bad)} (known: "
                                 f"{', '.join(sorted(roles))})")
    return {str(token): ApiRole(role) for token, role in document.items() if token}


def choose_api_token(tokens: dict[str, ApiRole], needed: ApiRole) -> tuple[str, ApiRole] | None:
    """The least privileged token whose role includes ``needed`` (the first such in the document), or None."""
    fitting = [(token, role) for token, role in tokens.items() if role.includes(needed)]
    if not fitting:
        return None
    order = list(ApiRole)
    return min(fitting, key=lambda item: order.index(item[1]))


def _relocate(value: Any, files: dict[str, Path]) -> Any:
    """``value`` with every string that names one of ``files`` by its file name replaced by that file's path."""
    if isinstance(value, dict):
        return {key: _relocate(item, files) for key, item in value.items()}
    if isinstance(value, list):
        return [_relocate(item, files) for item in value]
    if isinstance(value, str) and value:
        name = PurePath(value).name
        if name in files and (name == value or "/" in value):
            return str(files[name])
    return value


def write_fabric_client(files: dict[str, bytes], directory: Path, network_key: str) -> Path:
    """Write a fabric-client Secret's files into ``directory`` (owner only) and its network document with each
    file it names pointing there; the document's path. ValueError when the document is missing or not JSON."""
    if network_key not in files:
        raise ValueError(f"it has no key {network_key} (its keys: {', '.join(sorted(files)) or 'none'})")
    try:
        document = json.loads(files[network_key].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"key {network_key} is not JSON ({type(exc).__name__})") from None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, content in files.items():
        if name == network_key:
            continue
        path = directory / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        written[name] = path
    network = directory / network_key
    network.write_text(json.dumps(_relocate(document, written), indent=2), encoding="utf-8")
    network.chmod(0o600)
    return network


class ClusterBackend:
    """The backend of one env in its cluster; what it opens (port-forwards, the network files) lives until
    :meth:`close`."""

    def __init__(self, cluster: ClusterConnection, env: Environment, settings: KubernetesPlatformSettings) -> None:
        self.cluster = cluster
        self.env = env
        self.settings = settings
        self.namespace = environment_profile(env).backend_namespace
        self.core = k8s_client.CoreV1Api(cluster.api)
        self.forwards: list[PortForward] = []
        self._directory: Path | None = None

    @classmethod
    def connect(cls, env: Environment, settings: KubernetesPlatformSettings) -> ClusterBackend:
        """The backend of ``env``'s cluster; Unavailable (naming kubeconfig / kube_context) when no cluster."""
        try:
            cluster = connect_cluster(settings)
        except Unavailable as exc:
            raise Unavailable(f"env={env.value}: {exc.reason}", parameter=exc.parameter) from exc
        return cls(cluster, env, settings)

    def __enter__(self) -> ClusterBackend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for forward in self.forwards:
            forward.close()
        self.forwards.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
        self.cluster.close()

    # --- Secrets --------------------------------------------------------------------------------------------
    def secret(self, name: str) -> dict[str, bytes] | None:
        """The Secret's data (None when it does not exist); Unavailable when it cannot be read."""
        try:
            found = self.core.read_namespaced_secret(name, self.namespace,
                                                     _request_timeout=self.settings.request_timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                return None
            error = KubernetesApiError("reading", "Secret", name, self.namespace, exc.status, str(exc.reason))
            raise Unavailable(f"{error.message} — {error.hint}", parameter="kube_context") from exc
        except CLUSTER_DOWN as exc:
            raise Unavailable(f"the Kubernetes API server {self.cluster} does not answer ({type(exc).__name__}: "
                              f"{exc}) — check kube_context / kubeconfig", parameter="kube_context") from exc
        try:
            return {key: base64.b64decode(value) for key, value in (found.data or {}).items()}
        except (binascii.Error, ValueError) as exc:
            raise BackendSecretError(self.namespace, name, "its data is not base64") from exc

    def api_token(self, needed: ApiRole) -> Sourced[str]:
        """A bearer token of the API with a role that includes ``needed``; Unavailable (naming api_token) when
        the Secret, its key or such a token is missing."""
        name, key = self.settings.api_tokens_secret, self.settings.api_tokens_key
        where = f"Secret {self.namespace}/{name}"
        data = self.secret(name)
        if data is None or key not in data:
            missing = "does not exist" if data is None else f"has no key {key}"
            raise Unavailable(f"no API token: {where} {missing} — create it (k8s/README.md), or set $GX_API_TOKEN "
                              "(api_token)", parameter="api_token")
        try:
            tokens = parse_api_tokens(data[key], self.namespace, name, key)
        except BackendSecretError as exc:
            raise Unavailable(f"no API token: {exc.message} — fix it, or set $GX_API_TOKEN (api_token)",
                              parameter="api_token") from exc
        chosen = choose_api_token(tokens, needed)
        if chosen is None:
            roles = ", ".join(sorted({role.value for role in tokens.values()})) or "none"
            raise Unavailable(f"no API token: {where} has no token with role {needed.value} or above (its roles: "
                              f"{roles}) — add one, or set $GX_API_TOKEN (api_token)", parameter="api_token")
        token, role = chosen
        return Sourced(token, f"{where} key {key}, a token of role {role.value}")

    def fabric_network_file(self) -> Sourced[Path] | None:
        """The Fabric network of the backend's workers, written for this run (None: the cluster has no such
        Secret); Unavailable (naming fabric_network_file) when the Secret is there but unusable."""
        name = self.settings.fabric_client_secret
        data = self.secret(name)
        if data is None:
            return None
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="gx-fabric-client-"))
        try:
            path = write_fabric_client(data, self._directory, self.settings.fabric_network_key)
        except ValueError as exc:
            raise Unavailable(f"Secret {self.namespace}/{name}: {exc} — fix it, or set fabric_network_file",
                              parameter="fabric_network_file") from exc
        return Sourced(path, f"Secret {self.namespace}/{name}")

    # --- port-forwards --------------------------------------------------------------------------------------
    def forward(self, service: str, port: int | str | None, parameter: str) -> Sourced[str]:
        """A port-forward to ``service`` open until :meth:`close`: its URL; Unavailable naming ``parameter`` (the
        URL the operator could give instead) when the Service has no Ready pod or the forward is refused."""
        forward = PortForward(self.cluster, self.namespace, service, port,
                              connect_timeout_s=self.settings.request_timeout_s)
        try:
            forward.open()
        except PlatformError as exc:
            raise Unavailable(f"{exc.message} — or set {parameter}", parameter=parameter) from exc
        except CLUSTER_DOWN as exc:
            raise Unavailable(f"the Kubernetes API server {self.cluster} does not answer ({type(exc).__name__}: "
                              f"{exc}) — check kube_context / kubeconfig, or set {parameter}",
                              parameter=parameter) from exc
        self.forwards.append(forward)
        return Sourced(forward.url, str(forward))

    def api_forward(self) -> Sourced[str]:
        return self.forward(self.settings.api_service, self.settings.api_service_port, "api_url")

    def submitter_metrics_forward(self) -> Sourced[str]:
        return self.forward(self.settings.submitter_metrics_service, self.settings.submitter_metrics_port,
                            "submitter_metrics_url")


# --- what a dry run asks ------------------------------------------------------------------------------------
def _cluster_probe(env: Environment, settings: KubernetesPlatformSettings,
                   ask: Callable[[ClusterBackend], str | None]) -> Probe:
    """A probe that connects to the cluster, asks ``ask`` and closes everything it opened; never raises."""

    def probe() -> str | None:
        try:
            with ClusterBackend.connect(env, settings) as backend:
                return ask(backend)
        except Unavailable as exc:
            return exc.reason
        except PlatformError as exc:
            return exc.message

    return probe


def _forward_answers(open_forward: Callable[[ClusterBackend], Sourced[str]], path: str) -> Callable[
        [ClusterBackend], str | None]:
    def ask(backend: ClusterBackend) -> str | None:
        forward = open_forward(backend)
        return http_probe(f"{forward.value}{path}")()
    return ask


def _token_found(role: ApiRole) -> Callable[[ClusterBackend], str | None]:
    def ask(backend: ClusterBackend) -> str | None:
        backend.api_token(role)
        return None
    return ask


def _network_answers(backend: ClusterBackend) -> str | None:
    found = backend.fabric_network_file()
    if found is None:
        return (f"Secret {backend.namespace}/{backend.settings.fabric_client_secret} does not exist: set "
                "fabric_network_file")
    document = json.loads(found.value.read_text(encoding="utf-8"))
    reasons = [f"{endpoint.what} at {endpoint.address}: {reason}" for endpoint in fabric_endpoints(document)
               if (reason := endpoint.probe()) is not None]
    return "; ".join(reasons) or None


def cluster_backend_endpoints(env: Environment, settings: KubernetesPlatformSettings, *, api: bool,
                              token_role: ApiRole | None, network: bool, submitter: bool) -> list[Endpoint]:
    """What a run of runbooks 03–05 would take from ``env``'s cluster, each asked the way the run uses it: the API
    (``/healthz`` through a port-forward), a token of ``token_role`` in its Secret, the Fabric network of the
    fabric-client Secret (each of its nodes), the submitter's ``/metrics`` through a port-forward."""
    namespace = environment_profile(env).backend_namespace
    found: list[Endpoint] = []
    if api or token_role is not None or network or submitter:
        found.append(kubernetes_api_endpoint(settings))
    if api:
        found.append(Endpoint("backend API (port-forward)", f"service {namespace}/{settings.api_service}",
                              _cluster_probe(env, settings, _forward_answers(ClusterBackend.api_forward, "/healthz"))))
    if token_role is not None:
        found.append(Endpoint(f"API token of role {token_role.value}",
                              f"Secret {namespace}/{settings.api_tokens_secret}",
                              _cluster_probe(env, settings, _token_found(token_role))))
    if network:
        found.append(Endpoint("Fabric network of the backend", f"Secret {namespace}/{settings.fabric_client_secret}",
                              _cluster_probe(env, settings, _network_answers)))
    if submitter:
        found.append(Endpoint("outbox-submitter metrics (port-forward)",
                              f"service {namespace}/{settings.submitter_metrics_service}",
                              _cluster_probe(env, settings, _forward_answers(ClusterBackend.submitter_metrics_forward,
                                                                             "/metrics"))))
    return found
