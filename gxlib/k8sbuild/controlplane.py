"""A real Kubernetes control plane on loopback, for tests and drills: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok standing in for the kubelets of fake nodes.

Everything lives in one directory (certificates, token file, kubeconfig, etcd data, one log per process);
``stop()`` ends every process it started (each in its own process group) and nothing listens on anything but
127.0.0.1. Pods never run: kwok marks scheduled pods Running/Ready, which is what Deployment rollouts,
PodDisruptionBudgets and pod state need.

With ``nodes=0`` there is no kwok: a real kubelet joins instead (``gxlib.k8scluster``). That cluster binds the API
server to its node's bridge address (``host``) so that pods reach it, keeps the ``kubernetes`` Service's endpoints
(lease reconciler) and writes one pid file per process into ``pid_dir``, since its processes outlive ``gx k8s up``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from gxlib.errors import GxError
from gxlib.files import LOG_FILE_MODE, open_append, write_private
from gxlib.k8sbuild.binaries import ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KWOK, K8sInstall
from gxlib.k8sbuild.pki import ControlPlanePki, write_pki
from gxlib.progress import Progress

HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/24"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/24"
# kwok manages the nodes carrying this annotation (and only those).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
KWOK_STAGES = Path(__file__).resolve().parent / "kwok-stages.yaml"


class ControlPlaneError(GxError):
    """A control-plane process did not start or become ready; the message has its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_file: Path


@dataclass
class LocalControlPlane:
    """Start with ``start()`` (or as a context manager); ``kubeconfig`` is then usable by any client."""

    install: K8sInstall
    root: Path
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))
    nodes: int = 2
    processes: list[_Process] = field(default_factory=list)
    pki: ControlPlanePki | None = None
    apiserver_port: int = 0
    host: str = HOST
    pki_valid_days: int = 1
    pid_dir: Path | None = None

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig.yaml"

    def _log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log_file = self._log(name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open_append(log_file, LOG_FILE_MODE) as log:
            popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=self.root)
        process = _Process(name, popen, log_file)
        self.processes.append(process)
        if self.pid_dir is not None:
            self.pid_dir.mkdir(parents=True, exist_ok=True)
            (self.pid_dir / f"{name}.pid").write_text(f"{popen.pid}\n")
        return process

    def _tail(self, process: _Process, lines: int = 30) -> str:
        try:
            return "\n".join(process.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _wait_http(self, process: _Process, url: str, *, token: str | None = None, timeout_s: float = 90.0,
                   self_signed: bool = False) -> None:
        context: ssl.SSLContext | None = None
        if self_signed:
            # The controller-manager and scheduler serve /healthz with a certificate they made up at start.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.pki and url.startswith("https"):
            context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise ControlPlaneError(f"{process.name} exited with {process.popen.returncode} while starting; "
                                        f"last lines of {process.log_file}:\n{self._tail(process)}")
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.3)
        raise ControlPlaneError(f"{process.name} was not ready at {url} after {timeout_s:.0f}s ({last}); "
                                f"last lines of {process.log_file}:\n{self._tail(process)}")

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "gx-test",
            "clusters": [{"name": "gx-test", "cluster": {"server": self.server,
                                                          "certificate-authority": str(self.pki.ca_cert)}}],
            "users": [{"name": "gx-admin", "user": {"token": self.pki.admin_token}}],
            "contexts": [{"name": "gx-test", "context": {"cluster": "gx-test", "user": "gx-admin"}}],
        }
        write_private(self.kubeconfig, yaml.safe_dump(config))

    def start(self, *, stop_on_failure: bool = True) -> LocalControlPlane:
        """Start every process and wait until each answers. On failure the processes started so far are stopped,
        unless ``stop_on_failure`` is false (a caller with pid files stops them later, logs kept)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            if stop_on_failure:
                self.stop()
            raise
        return self

    def _start(self) -> None:
        install = self.install
        extra_ips = () if self.host == HOST else (self.host,)
        self.pki = pki = write_pki(self.root / "pki", service_ip=SERVICE_IP, extra_ips=extra_ips,
                                   valid_days=self.pki_valid_days)
        etcd_client, etcd_peer = free_port(), free_port()
        with self.progress.task(f"starting etcd on {HOST}:{etcd_client}"):
            etcd = self._spawn("etcd", [
                str(install.binary(ETCD)), "--name", "gx-test", "--data-dir", str(self.root / "etcd"),
                "--listen-client-urls", f"http://{HOST}:{etcd_client}",
                "--advertise-client-urls", f"http://{HOST}:{etcd_client}",
                "--listen-peer-urls", f"http://{HOST}:{etcd_peer}",
                "--initial-advertise-peer-urls", f"http://{HOST}:{etcd_peer}",
                "--initial-cluster", f"gx-test=http://{HOST}:{etcd_peer}",
                # A throwaway store: durability buys nothing and fsync costs seconds per test.
                "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3),
            ])
            self._wait_http(etcd, f"http://{HOST}:{etcd_client}/health")

        self.apiserver_port = self.apiserver_port or free_port()
        # The `kubernetes` Service may not point at a loopback address; on a bridge address it keeps its endpoints.
        reconciler = "none" if self.host == HOST else "lease"
        with self.progress.task(f"starting kube-apiserver on {self.server}"):
            apiserver = self._spawn("kube-apiserver", [
                str(install.binary(KUBE_APISERVER)),
                "--etcd-servers", f"http://{HOST}:{etcd_client}",
                "--bind-address", self.host, "--advertise-address", self.host,
                "--secure-port", str(self.apiserver_port),
                "--tls-cert-file", str(pki.serving_cert), "--tls-private-key-file", str(pki.serving_key),
                "--client-ca-file", str(pki.ca_cert),
                "--token-auth-file", str(pki.token_file),
                "--authorization-mode", "RBAC",
                "--service-account-issuer", "https://kubernetes.default.svc",
                "--service-account-key-file", str(pki.service_account_pub),
                "--service-account-signing-key-file", str(pki.service_account_key),
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--cert-dir", str(self.root / "apiserver-certs"),
                "--enable-priority-and-fairness=false", "--profiling=false",
                "--endpoint-reconciler-type", reconciler,
                # exec/logs/port-forward: reach the kubelet at its node IP, as a client the kubelet's CA trusts.
                "--kubelet-preferred-address-types", "InternalIP,Hostname",
                "--kubelet-client-certificate", str(pki.kubelet_client_cert),
                "--kubelet-client-key", str(pki.kubelet_client_key),
            ])
            self._wait_http(apiserver, f"{self.server}/readyz", token=pki.admin_token, timeout_s=120)
        self._write_kubeconfig()

        kubeconfig = str(self.kubeconfig)
        started = "kube-controller-manager, kube-scheduler" + (" and kwok" if self.nodes else "")
        with self.progress.task(f"starting {started}"):
            controller_port, scheduler_port = free_port(), free_port()
            controllers = self._spawn("kube-controller-manager", [
                str(install.binary(KUBE_CONTROLLER_MANAGER)), "--kubeconfig", kubeconfig,
                "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
                "--leader-elect=false", "--bind-address", HOST, "--secure-port", str(controller_port),
                "--cert-dir", str(self.root / "kcm-certs"),
                "--service-account-private-key-file", str(pki.service_account_key),
                "--root-ca-file", str(pki.ca_cert), "--use-service-account-credentials=false",
                "--cluster-cidr", POD_CIDR, "--service-cluster-ip-range", SERVICE_CIDR,
                # No kubelets: node IPAM, cloud and route controllers have nothing to do. The node-lifecycle
                # controller stays (it lifts the not-ready taint from a node kwok made Ready), with a grace period
                # long enough that the missing kubelet heartbeats never mark a fake node unreachable.
                "--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
                "--node-monitor-grace-period", "24h",
            ])
            scheduler = self._spawn("kube-scheduler", [
                str(install.binary(KUBE_SCHEDULER)), "--kubeconfig", kubeconfig,
                "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
                "--leader-elect=false", "--bind-address", HOST, "--secure-port", str(scheduler_port),
                "--cert-dir", str(self.root / "scheduler-certs"),
            ])
            kwok = self._spawn("kwok", [
                str(install.binary(KWOK)), "--kubeconfig", kubeconfig,
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector", "=".join(KWOK_NODE_ANNOTATION),
                "--cidr", POD_CIDR, "--node-ip", "10.244.0.254", "--config", str(KWOK_STAGES),
            ]) if self.nodes else None
            self._wait_http(controllers, f"https://{HOST}:{controller_port}/healthz", timeout_s=90, self_signed=True)
            self._wait_http(scheduler, f"https://{HOST}:{scheduler_port}/healthz", timeout_s=90, self_signed=True)
            if kwok is not None:
                self._create_fake_nodes(kwok)

    def fake_node_names(self) -> list[str]:
        return [f"kwok-node-{index}" for index in range(self.nodes)]

    def _create_fake_nodes(self, kwok: _Process, timeout_s: float = 60.0) -> None:
        """Register the fake nodes and wait until kwok reports them Ready (it then runs their pods)."""
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        api = k8s_config.new_client_from_config(config_file=str(self.kubeconfig))
        core = k8s_client.CoreV1Api(api)
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        for name in self.fake_node_names():
            core.create_node({  # type: ignore[arg-type]  # the client sends a plain manifest dict as it is
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1]},
                             "labels": {"kubernetes.io/hostname": name, "type": "kwok"}},
                "status": {"capacity": capacity, "allocatable": capacity},
            })
        deadline = time.monotonic() + timeout_s
        while True:
            if kwok.popen.poll() is not None:
                raise ControlPlaneError(f"kwok exited with {kwok.popen.returncode}; last lines of {kwok.log_file}:\n"
                                        f"{self._tail(kwok)}")
            ready = [n.metadata.name for n in core.list_node().items if n.metadata and n.status
                     and any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))]
            if len(ready) == self.nodes:
                return
            if time.monotonic() >= deadline:
                raise ControlPlaneError(f"kwok did not make the fake nodes Ready within {timeout_s:.0f}s "
                                        f"(ready: {ready}); last lines of {kwok.log_file}:\n{self._tail(kwok)}")
            time.sleep(0.3)

    def stop(self, timeout_s: float = 15.0) -> None:
        """End every process started here, newest first (SIGTERM, then SIGKILL)."""
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in reversed(self.processes):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.popen.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(5)
        self.processes.clear()

    def running(self) -> dict[str, bool]:
        return {process.name: process.popen.poll() is None for process in self.processes}

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
