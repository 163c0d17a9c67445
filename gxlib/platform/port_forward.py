"""A port-forward to a Service, as ``kubectl port-forward svc/<service> <port>`` does it, in-process: a listener on
127.0.0.1 (an ephemeral port) whose every accepted connection is carried to a Ready pod behind the Service through
the API server's ``pods/portforward`` subresource, as the kubeconfig's user.

    with PortForward(cluster, "backend-devnet", "api") as forward:
        httpx.get(f"{forward.url}/healthz")

The pod is chosen once, when the forward opens (:func:`choose_pod`: a Ready pod the Service's selector matches, the
Service port's ``targetPort`` resolved to the pod's port), and again when a new connection cannot reach it (the pod
went away). Each connection is its own WebSocket to the API server (subprotocol ``v4.channel.k8s.io``, which the
kubelet's streaming server speaks): a binary message starts with its channel byte — 0 carries the data of the one
port asked for, 1 its errors — and the first message on each channel is the port number (two bytes, little-endian).
The protocol has no half-close: a local client that shuts its sending side ends the connection.

The kubeconfig's proxy is not used (the forward connects to the API server directly).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import websocket
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from gxlib.platform.cluster import CLUSTER_DOWN, ClusterConnection
from gxlib.platform.errors import KubernetesApiError, PlatformError
from gxlib.platform.pod_proxy import ApiServerAccess

PORT_FORWARD_PROTOCOL = "v4.channel.k8s.io"
DATA_CHANNEL = 0
ERROR_CHANNEL = 1
_CHUNK = 64 * 1024
_ACCEPT_POLL_S = 0.2
# What a connection to the API server that fails or breaks raises.
_TUNNEL_DOWN: tuple[type[BaseException], ...] = (websocket.WebSocketException, *CLUSTER_DOWN)


class NoReadyPodError(PlatformError):
    """The Service has no Ready pod to forward to (none selected, none Ready yet, or the Service is missing)."""

    def __init__(self, namespace: str, service: str, detail: str) -> None:
        super().__init__(f"no Ready pod behind service {namespace}/{service} to forward to: {detail}",
                         hint=f"check the pods of the Service (`kubectl -n {namespace} get pods,endpointslices`) "
                              "and their readiness probes; is the environment's overlay applied?")
        self.namespace = namespace
        self.service = service


class PortForwardError(PlatformError):
    """The API server refused or broke a forwarded connection."""


@dataclass(frozen=True)
class ForwardTarget:
    """The pod port a Service port leads to."""

    namespace: str
    service: str
    pod: str
    port: int

    def __str__(self) -> str:
        return f"service {self.namespace}/{self.service} → pod {self.pod}:{self.port}"


def _pod_ready(pod: dict[str, Any]) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _service_port(service: dict[str, Any], port: int | str | None) -> dict[str, Any]:
    """The Service's port entry for ``port`` (its number or name; ``None``: the Service's only port)."""
    meta = service.get("metadata", {})
    where = f"service {meta.get('namespace')}/{meta.get('name')}"
    ports = (service.get("spec") or {}).get("ports") or []
    if port is None:
        if len(ports) != 1:
            names = ", ".join(str(p.get("name") or p.get("port")) for p in ports) or "none"
            raise PlatformError(f"{where} has {len(ports)} ports ({names}): say which one to forward to")
        return dict(ports[0])
    for entry in ports:
        if port in (entry.get("port"), entry.get("name")):
            return dict(entry)
    known = ", ".join(f"{p.get('name') or '-'}={p.get('port')}" for p in ports) or "none"
    raise PlatformError(f"{where} has no port {port!r} (its ports: {known})")


def _container_port(pod: dict[str, Any], name: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for entry in container.get("ports") or []:
            if entry.get("name") == name:
                return int(entry["containerPort"])
    return None


def choose_pod(service: dict[str, Any], pods: list[dict[str, Any]], port: int | str | None = None) -> ForwardTarget:
    """The pod and pod port a forward to ``service``'s ``port`` goes to: the first Ready pod (by name) among
    ``pods`` (those the Service's selector matches) that has the port; NoReadyPodError naming the Service when
    none is Ready."""
    meta = service["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    if not (service.get("spec") or {}).get("selector"):
        raise NoReadyPodError(namespace, name, "the Service has no selector (its endpoints are not pods it chooses)")
    entry = _service_port(service, port)
    target = entry.get("targetPort") or entry["port"]
    ready = sorted((p for p in pods if _pod_ready(p)), key=lambda p: str(p["metadata"]["name"]))
    if not ready:
        seen = ", ".join(f"{p['metadata']['name']} ({(p.get('status') or {}).get('phase', 'Unknown')}, not Ready)"
                         for p in pods) or "its selector matches no pod"
        raise NoReadyPodError(namespace, name, seen)
    for pod in ready:
        number = int(target) if isinstance(target, int) or str(target).isdigit() else _container_port(pod, str(target))
        if number is not None:
            return ForwardTarget(namespace, name, str(pod["metadata"]["name"]), number)
    raise NoReadyPodError(namespace, name, f"no Ready pod has a container port named {target!r}")


def portforward_url(server: str, target: ForwardTarget) -> str:
    """The WebSocket URL of the pod's ``portforward`` subresource for the target's port."""
    base = server.rstrip("/")
    scheme, rest = base.split("://", 1)
    return (f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/v1/namespaces/{quote(target.namespace, safe='')}"
            f"/pods/{quote(target.pod, safe='')}/portforward?ports={target.port}")


@dataclass(eq=False)  # each tunnel is its own: kept in a set by identity
class _Tunnel:
    """One accepted connection and its WebSocket, pumped both ways by one thread: a TLS connection must not be read
    and written by two threads at once."""

    local: socket.socket
    remote: websocket.WebSocket
    thread: threading.Thread | None = None

    def close(self) -> None:
        """End both sides (a shutdown wakes the tunnel's thread where it waits)."""
        for end in (self.local, self.remote.sock):
            if end is None:
                continue
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                end.close()


class PortForward:
    """A local port whose connections reach ``port`` (number or name; ``None``: the only one) of ``service`` in
    ``namespace``: ``with`` it for as long as it is needed; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, cluster: ClusterConnection, namespace: str, service: str, port: int | str | None = None, *,
                 bind_host: str = "127.0.0.1", connect_timeout_s: float = 10.0) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.service = service
        self.port = port
        self.bind_host = bind_host
        self.connect_timeout_s = connect_timeout_s
        self.access = ApiServerAccess.from_configuration(cluster.api.configuration)
        self.core = k8s_client.CoreV1Api(cluster.api)
        self.target: ForwardTarget | None = None
        self.failures: list[str] = []  # connections that could not be forwarded, for the operator
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tunnels: set[_Tunnel] = set()
        self._acceptor: threading.Thread | None = None

    # --- where ----------------------------------------------------------------------------------------------
    @property
    def local_port(self) -> int:
        if self._listener is None:
            raise PlatformError(f"the port-forward to service {self.namespace}/{self.service} is not open")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.bind_host}:{self.local_port}"

    def __str__(self) -> str:
        target = str(self.target) if self.target else f"service {self.namespace}/{self.service}"
        return f"port-forward {self.bind_host}:{self.local_port} → {target}"

    def resolve(self) -> ForwardTarget:
        """Read the Service and its pods now and choose the pod (NoReadyPodError when none is Ready)."""
        try:
            service = self.core.read_namespaced_service(self.service, self.namespace,
                                                        _request_timeout=self.connect_timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                raise NoReadyPodError(self.namespace, self.service, "the Service does not exist") from exc
            raise KubernetesApiError("reading", "Service", self.service, self.namespace, exc.status,
                                     str(exc.reason)) from exc
        document: dict[str, Any] = self.cluster.api.sanitize_for_serialization(service)
        selector = ",".join(f"{k}={v}" for k, v in ((document.get("spec") or {}).get("selector") or {}).items())
        pods: list[dict[str, Any]] = []
        if selector:
            try:
                found = self.core.list_namespaced_pod(self.namespace, label_selector=selector,
                                                      _request_timeout=self.connect_timeout_s)
            except ApiException as exc:
                raise KubernetesApiError("listing", "Pod", selector, self.namespace, exc.status,
                                         str(exc.reason)) from exc
            pods = list(self.cluster.api.sanitize_for_serialization(found).get("items") or [])
        target = choose_pod(document, pods, self.port)
        self.target = target
        return target

    # --- open and close -------------------------------------------------------------------------------------
    def __enter__(self) -> PortForward:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        self.resolve()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.bind_host, 0))
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL_S)
        self._listener = listener
        self._stop.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"port-forward {self.service}",
                                          daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        """Stop accepting, end every open connection, and wait for their threads."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            tunnels = list(self._tunnels)
            self._tunnels.clear()
        for tunnel in tunnels:
            tunnel.close()
        for tunnel in tunnels:
            if tunnel.thread is not None and tunnel.thread is not threading.current_thread():
                tunnel.thread.join(timeout=5)

    # --- connections ----------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                local, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            local.settimeout(None)
            threading.Thread(target=self._serve, args=(local,), name="port-forward connect", daemon=True).start()

    def _connect(self, target: ForwardTarget) -> websocket.WebSocket:
        url = portforward_url(self.access.server, target)
        sslopt: dict[str, Any] = {"context": self.access.ssl_context()} if url.startswith("wss://") else {}
        remote = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True)
        remote.connect(url, header=[f"{key}: {value}" for key, value in self.access.headers.items()],
                       subprotocols=[PORT_FORWARD_PROTOCOL], timeout=self.connect_timeout_s)
        remote.settimeout(None)
        return remote

    def open_tunnel(self) -> websocket.WebSocket:
        """A WebSocket to the chosen pod's port; the pod is chosen again once when it cannot be reached.
        PortForwardError (or NoReadyPodError) when neither works."""
        target = self.target or self.resolve()
        try:
            return self._connect(target)
        except _TUNNEL_DOWN as first:
            failed, error = target, first
        try:
            failed = self.resolve()
            return self._connect(failed)
        except _TUNNEL_DOWN as exc:
            raise PortForwardError(f"the API server {self.cluster} did not open a port-forward to {failed}: "
                                   f"{type(exc).__name__}: {exc} (before: {error})",
                                   hint="check your RBAC permission for pods/portforward in "
                                        f"{self.namespace}, and the pod's state") from exc

    def _serve(self, local: socket.socket) -> None:
        try:
            remote = self.open_tunnel()
        except PlatformError as exc:
            self.failures.append(exc.message)
            local.close()
            return
        tunnel = _Tunnel(local, remote, threading.current_thread())
        with self._lock:
            if self._stop.is_set():
                tunnel.close()
                return
            self._tunnels.add(tunnel)
        try:
            self._pump(tunnel)
        except (OSError, websocket.WebSocketException):
            pass  # either side went away: the connection ends
        finally:
            tunnel.close()
            with self._lock:
                self._tunnels.discard(tunnel)

    def _pump(self, tunnel: _Tunnel) -> None:
        """Local bytes → data channel; data channel → local bytes; until either side ends. A message on the error
        channel ends the connection and is kept in ``failures``."""
        remote_socket = tunnel.remote.sock
        assert remote_socket is not None
        prefix = bytes([DATA_CHANNEL])
        headers_seen: set[int] = set()
        with selectors.DefaultSelector() as selector:
            selector.register(tunnel.local, selectors.EVENT_READ, "local")
            selector.register(remote_socket, selectors.EVENT_READ, "remote")
            while not self._stop.is_set():
                # TLS may hold a whole frame already read from the socket, which select() cannot see.
                buffered = isinstance(remote_socket, ssl.SSLSocket) and remote_socket.pending() > 0
                ready = ["remote"] if buffered else [key.data for key, _ in selector.select(_ACCEPT_POLL_S * 5)]
                if "local" in ready:
                    chunk = tunnel.local.recv(_CHUNK)
                    if not chunk:
                        return
                    tunnel.remote.send_bytes(prefix + chunk)
                if "remote" in ready:
                    opcode, message = tunnel.remote.recv_data()
                    if opcode == websocket.ABNF.OPCODE_CLOSE or not message:
                        return
                    channel, payload = message[0], message[1:]
                    if channel not in headers_seen:  # the first message of a channel is its port number
                        headers_seen.add(channel)
                        payload = payload[2:]
                    if not payload:
                        continue
                    if channel == ERROR_CHANNEL:
                        self.failures.append(f"{self.target}: {payload.decode('utf-8', 'replace')}")
                        return
                    if channel == DATA_CHANNEL:
                        tunnel.local.sendall(payload)
