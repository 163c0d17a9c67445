"""Long-running local processes (Fabric nodes, chaincode servers): start detached, find, stop, read logs.

A process is recognised by a marker in its environment (a Fabric node's ``FABRIC_CFG_PATH`` is its own node
directory), not only by its pid file, so ``down`` also finds a process whose pid file was lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from gxlib.files import LOG_FILE_MODE, open_append

PROC = Path("/proc")
# Environment variables whose value is the directory a managed process lives in (under the devnet state dir).
FABRIC_NODE_MARKER = "FABRIC_CFG_PATH"
CHAINCODE_SERVER_MARKER = "GX_CHAINCODE_SERVER_DIR"
BACKEND_SERVICE_MARKER = "GX_BACKEND_SERVICE_DIR"
STATE_MARKERS = (FABRIC_NODE_MARKER, CHAINCODE_SERVER_MARKER, BACKEND_SERVICE_MARKER)


class ManagedProcess(Protocol):
    """What the functions here need to know about a process they manage."""

    @property
    def name(self) -> str: ...

    @property
    def dir(self) -> Path: ...

    @property
    def log_file(self) -> Path: ...

    @property
    def pid_file(self) -> Path: ...

    @property
    def marker(self) -> tuple[str, str]:
        """An environment variable (name, value) that only this process has."""
        ...


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return True
    # The state letter follows the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def env_value(pid: int, key: str) -> str | None:
    """The value of ``key`` in process ``pid``'s environment as it was started; None if unset or unreadable."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    prefix = key.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def _is_instance(pid: int, node: ManagedProcess) -> bool:
    key, value = node.marker
    return not _is_zombie_or_gone(pid) and env_value(pid, key) == value


def node_pids(node: ManagedProcess) -> list[int]:
    """Live processes that run as this node (its pid file first, then a scan of /proc)."""
    found: list[int] = []
    recorded = read_pid(node)
    if recorded and _is_instance(recorded, node):
        found.append(recorded)
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) not in found and _is_instance(int(entry.name), node):
            found.append(int(entry.name))
    return found


def read_pid(node: ManagedProcess) -> int | None:
    try:
        return int(node.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(node: ManagedProcess) -> int | None:
    """The pid of the node's process if it is running. A lost pid file is restored from a /proc scan."""
    pid = read_pid(node)
    if pid and _is_instance(pid, node):
        return pid
    found = node_pids(node)
    if not found:
        return None
    node.pid_file.write_text(f"{found[0]}\n")
    return found[0]


def has_exited(node: ManagedProcess, *, grace_s: float = 1.0) -> bool:
    """Whether the process is gone, re-checked for ``grace_s`` (right after a start, /proc may not show the new
    process's environment yet; a single miss must not be taken for a crash)."""
    deadline = time.monotonic() + grace_s
    while running_pid(node) is None:
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.1)
    return False


def start_node(node: ManagedProcess, command: list[str], env: dict[str, str]) -> int:
    """Start the process detached from this one (own session), logging to its log file. ``env`` must carry the
    process's marker variable."""
    key, value = node.marker
    if env.get(key) != value:
        raise ValueError(f"the environment of {node.name} must set its marker {key}={value}")
    node.dir.mkdir(parents=True, exist_ok=True)
    base_env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG") if k in os.environ}
    with open_append(node.log_file, LOG_FILE_MODE) as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(command, cwd=node.dir, env={**base_env, **env}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node.pid_file.write_text(f"{proc.pid}\n")
    # Reap the child if it exits while this process lives on (a test session); otherwise it would linger
    # as a zombie and look alive.
    threading.Thread(target=proc.wait, name=f"reap-{node.name}", daemon=True).start()
    return proc.pid


def stop_node(node: ManagedProcess, *, timeout_s: float = 15.0) -> list[int]:
    """SIGTERM every process of the node, SIGKILL what is left after ``timeout_s``. Returns the pids."""
    pids = node_pids(node)
    stop_pids(pids, timeout_s=timeout_s)
    node.pid_file.unlink(missing_ok=True)
    return pids


def pids_under(root: Path) -> list[int]:
    """Every live managed process (any of STATE_MARKERS) whose directory is inside ``root``."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or _is_zombie_or_gone(int(entry.name)):
            continue
        for key in STATE_MARKERS:
            value = env_value(int(entry.name), key)
            if value and (value + "/").startswith(prefix):
                found.append(int(entry.name))
                break
    return found


def stop_pids(pids: list[int], *, timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns when all are gone."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(not _is_zombie_or_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if not _is_zombie_or_gone(pid):
            _signal(pid, signal.SIGKILL)
    for pid in pids:
        while not _is_zombie_or_gone(pid):
            time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(node: ManagedProcess, lines: int = 20) -> str:
    try:
        with node.log_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def follow_log(node: ManagedProcess, *, poll_s: float = 0.25) -> Iterator[str]:
    """Yield lines appended to the node's log, forever (``logs -f``)."""
    with node.log_file.open("r", errors="replace") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            line = handle.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(poll_s)
