"""A chaincode server as a local child process (``python -m gxshim``): start, wait until listening, stop.

This is how the local profile runs the chaincode (one process per org, like one pod per org elsewhere).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gxshim.errors import ShimError


class ChaincodeProcessError(ShimError):
    """The chaincode server process did not come up (or died); carries the tail of its log."""

    def __init__(self, message: str, log_file: Path) -> None:
        try:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            tail = "(no log)"
        super().__init__(f"{message}\n--- {log_file} (tail) ---\n{tail}")
        self.log_file = log_file


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ChaincodeProcess:
    """One chaincode server process serving ``contracts`` (``module:Class``) as ``chaincode_id`` at ``address``.

    ``cwd`` and ``pythonpath`` decide where the contract modules are imported from; ``env`` adds variables
    (e.g. the ``CHAINCODE_TLS_*`` files). Output goes to ``log_file``.
    """

    chaincode_id: str
    address: str
    contracts: Sequence[str]
    log_file: Path
    cwd: Path | None = None
    pythonpath: Sequence[Path] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env, "CHAINCODE_ID": self.chaincode_id, "CHAINCODE_SERVER_ADDRESS": self.address}
        paths = [str(p) for p in self.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def start(self, timeout_s: float = 20.0) -> ChaincodeProcess:
        """Start the process and return once it accepts connections (raises ChaincodeProcessError)."""
        if self.running:
            return self
        if _listening(self.address):
            raise ChaincodeProcessError(f"something already listens on {self.address}", self.log_file)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "gxshim", *self.contracts],
                                          cwd=self.cwd, env=self.environment(), stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ChaincodeProcessError(f"chaincode server exited with code {self._proc.returncode}",
                                            self.log_file)
            if _listening(self.address):
                return self
            time.sleep(0.1)
        self.stop()
        raise ChaincodeProcessError(f"chaincode server not listening on {self.address} after {timeout_s:.0f}s",
                                    self.log_file)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s`` (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def restart(self, timeout_s: float = 20.0) -> ChaincodeProcess:
        self.stop()
        return self.start(timeout_s)
