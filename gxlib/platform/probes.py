"""Whether an endpoint answers, asked the cheapest way that proves something listens there: a TCP connection for
gRPC/TLS services (Fabric peers and orderers), ``GET`` of a health path for HTTP services, the version endpoint
for the Kubernetes API server. Each :class:`Endpoint` carries what it is, where, and its probe, which returns
``None`` when the endpoint answers and otherwise what was wrong — never raising::

    http_endpoint("Prometheus", "http://127.0.0.1:9090", "/-/ready").probe()   # None, or "GET … failed: …"
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gxlib.errors import Unavailable
from gxlib.platform.cluster import connect_cluster
from gxlib.platform.settings import KubernetesPlatformSettings

PROBE_TIMEOUT_S = 3.0

Probe = Callable[[], "str | None"]  # None: the endpoint answers; otherwise what was wrong


@dataclass(frozen=True)
class Endpoint:
    """One endpoint a run would use: what it is, where, and how to ask whether it answers."""

    what: str  # "Prometheus", "backend API", "Fabric peer peer0.org1.gx.local", "Kubernetes API server"
    address: str  # a URL or host:port
    probe: Probe

    @property
    def check_name(self) -> str:
        return f"endpoint answers: {self.what} at {self.address}"


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def tcp_probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """Whether something accepts a TCP connection at ``host:port`` (a gRPC/TLS service: the peer, the orderer)."""

    def probe() -> str | None:
        try:
            host, port = _host_port(address)
        except ValueError:
            return f"{address!r} is not host:port"
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return None
        except OSError as exc:
            return f"no TCP connection to {address}: {exc.strerror or type(exc).__name__}"

    return probe


def http_probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """Whether ``GET url`` answers with a 2xx/3xx status (a health or readiness endpoint)."""

    def probe() -> str | None:
        try:
            response = httpx.get(url, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return f"GET {url} failed: {type(exc).__name__}: {exc}"
        if response.status_code >= 400:
            return f"GET {url} answered HTTP {response.status_code}"
        return None

    return probe


def http_endpoint(what: str, base_url: str, path: str = "") -> Endpoint:
    """An HTTP service at ``base_url``, asked at ``path`` (``/-/ready``, ``/healthz``, ``/metrics``)."""
    base = base_url.rstrip("/")
    return Endpoint(what, base, http_probe(f"{base}{path}"))


def fabric_endpoints(document: dict[str, Any]) -> list[Endpoint]:
    """The orderer and every peer of a Fabric environment document (``gx devnet env --json``, a network file)."""
    found = []
    orderer = document.get("orderer")
    if isinstance(orderer, dict) and orderer.get("endpoint"):
        found.append(Endpoint(f"Fabric orderer {orderer.get('name', '')}".strip(), str(orderer["endpoint"]),
                              tcp_probe(str(orderer["endpoint"]))))
    for peer in document.get("peers") or []:
        if isinstance(peer, dict) and peer.get("endpoint"):
            found.append(Endpoint(f"Fabric peer {peer.get('name', '')}".strip(), str(peer["endpoint"]),
                                  tcp_probe(str(peer["endpoint"]))))
    return found


def kubernetes_api_endpoint(settings: KubernetesPlatformSettings) -> Endpoint:
    """The Kubernetes API server of the kubeconfig/context in ``settings``, asked for its version."""
    where = str(settings.kubeconfig) if settings.kubeconfig else "the default kubeconfig"

    def probe() -> str | None:
        try:
            cluster = connect_cluster(settings)
        except Unavailable as exc:
            return exc.reason
        try:
            cluster.check_answers(PROBE_TIMEOUT_S)
        except Unavailable as exc:
            return exc.reason
        finally:
            cluster.close()
        return None

    return Endpoint("Kubernetes API server", f"{where}{f' context {settings.context}' if settings.context else ''}",
                    probe)
