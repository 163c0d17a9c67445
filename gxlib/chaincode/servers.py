"""The chaincode servers of the local profile: one ``python -m gxchaincode`` process per org (as one pod per org
on Kubernetes), each registered with its org's package ID and listening where that package's connection.json
points the org's peer — with TLS, requiring the peer's client certificate (SPEC §10), from the org's TLS CA.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.crypto import ChaincodeTLS
from gxlib.devnet.layout import DevnetLayout
from gxlib.errors import GxError

MARKER_VARIABLE = processes.CHAINCODE_SERVER_MARKER


class ChaincodeServerError(GxError):
    """A chaincode server did not start or died; carries the end of its log."""


@dataclass(frozen=True)
class ChaincodeServer:
    """Where one org's chaincode server runs and keeps its pid, log and package ID."""

    name: str
    org_key: str
    msp_id: str
    host: str
    port: int
    dir: Path
    # None: plaintext (only stand-ins in tests); else the server's TLS pair, client CA and the peer's client pair.
    tls: ChaincodeTLS | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.dir / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "server.pid"

    @property
    def package_id_file(self) -> Path:
        return self.dir / "package_id"

    @property
    def marker(self) -> tuple[str, str]:
        return (MARKER_VARIABLE, str(self.dir))

    def recorded_package_id(self) -> str | None:
        try:
            return self.package_id_file.read_text().strip() or None
        except FileNotFoundError:
            return None


def chaincode_servers(layout: DevnetLayout, settings: ChaincodeSettings) -> list[ChaincodeServer]:
    """One server per peer org, on the org's ``ccaas_port`` (shifted by the devnet's port offset)."""
    found = []
    for org_settings, org in zip(layout.settings.peer_orgs, layout.peer_orgs, strict=True):
        found.append(ChaincodeServer(
            name=f"{settings.name}-{org.key}", org_key=org.key, msp_id=org.msp_id, host=layout.settings.host,
            port=layout.settings.port(org_settings.ccaas_port), dir=layout.root / "chaincode" / settings.name / org.key,
            tls=ChaincodeTLS(layout.root / "chaincode" / settings.name / org.key / "tls", org,
                             (layout.settings.host, "127.0.0.1", "localhost", f"{settings.name}-{org.key}")),
        ))
    return found


def listening(server: ChaincodeServer, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((server.host, server.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def running_package_id(server: ChaincodeServer) -> str | None:
    """The package ID the server runs with, if it is running."""
    return server.recorded_package_id() if processes.running_pid(server) else None


def start(server: ChaincodeServer, package_id: str, *, timeout_s: float, log_level: str = "INFO") -> int:
    """Start the server for ``package_id`` (stopping one that runs another package) and wait until it listens."""
    if processes.running_pid(server) and server.recorded_package_id() == package_id:
        return processes.running_pid(server) or 0
    stop(server)
    if not processes.port_is_free(server.host, server.port):
        raise ChaincodeServerError(f"port {server.port} on {server.host} ({server.name}) is already in use",
                                   hint="stop what listens there or change the org's ccaas_port setting")
    server.dir.mkdir(parents=True, exist_ok=True)
    server.package_id_file.write_text(package_id + "\n")
    env = {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": server.address,
        "CHAINCODE_LOG_LEVEL": log_level,
        "PYTHONUNBUFFERED": "1",
        MARKER_VARIABLE: str(server.dir),
    }
    if server.tls is not None:
        server.tls.ensure()
        env |= {"CHAINCODE_TLS_CERT": str(server.tls.server_cert), "CHAINCODE_TLS_KEY": str(server.tls.server_key),
                "CHAINCODE_CLIENT_CA_CERT": str(server.tls.ca_cert)}
    pid = processes.start_node(server, [sys.executable, "-m", "gxchaincode"], env)
    deadline = time.monotonic() + timeout_s
    while not listening(server):
        if processes.has_exited(server):
            raise ChaincodeServerError(f"{server.name} exited during start-up; last lines of {server.log_file}:\n"
                                       f"{processes.log_tail(server, 30)}")
        if time.monotonic() > deadline:
            raise ChaincodeServerError(f"{server.name} did not listen on {server.address} within {timeout_s:.0f}s")
        time.sleep(0.1)
    return pid


def stop(server: ChaincodeServer) -> list[int]:
    return processes.stop_node(server)
