"""Fabric nodes as local processes: start detached, find, stop, read their logs.

A node's process is recognised by its ``FABRIC_CFG_PATH`` (its own node directory), not only by the pid
file, so ``down`` also finds a node whose pid file was lost.
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

from gxlib.devnet.layout import Node

PROC = Path("/proc")


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return True
    # The state letter follows the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def _cfg_path_of(pid: int) -> str | None:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for item in environ.split(b"\0"):
        if item.startswith(b"FABRIC_CFG_PATH="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def node_pids(node: Node) -> list[int]:
    """Live processes that run as this node (its pid file first, then a scan of /proc)."""
    found: list[int] = []
    recorded = read_pid(node)
    if recorded and not _is_zombie_or_gone(recorded) and _cfg_path_of(recorded) == str(node.dir):
        found.append(recorded)
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) not in found:
            pid = int(entry.name)
            if _cfg_path_of(pid) == str(node.dir) and not _is_zombie_or_gone(pid):
                found.append(pid)
    return found


def read_pid(node: Node) -> int | None:
    try:
        return int(node.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(node: Node) -> int | None:
    """The pid of the node's process if it is running. A lost pid file is restored from a /proc scan."""
    pid = read_pid(node)
    if pid and not _is_zombie_or_gone(pid) and _cfg_path_of(pid) == str(node.dir):
        return pid
    found = node_pids(node)
    if not found:
        return None
    node.pid_file.write_text(f"{found[0]}\n")
    return found[0]


def start_node(node: Node, command: list[str], env: dict[str, str]) -> int:
    """Start the node detached from this process (own session), logging to its node.log."""
    node.dir.mkdir(parents=True, exist_ok=True)
    base_env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG") if k in os.environ}
    with node.log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(command, cwd=node.dir, env={**base_env, **env}, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node.pid_file.write_text(f"{proc.pid}\n")
    # Reap the child if it exits while this process lives on (a test session); otherwise it would linger
    # as a zombie and look alive.
    threading.Thread(target=proc.wait, name=f"reap-{node.name}", daemon=True).start()
    return proc.pid


def stop_node(node: Node, *, timeout_s: float = 15.0) -> list[int]:
    """SIGTERM every process of the node, SIGKILL what is left after ``timeout_s``. Returns the pids."""
    pids = node_pids(node)
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
    node.pid_file.unlink(missing_ok=True)
    return pids


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


def log_tail(node: Node, lines: int = 20) -> str:
    try:
        with node.log_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def follow_log(node: Node, *, poll_s: float = 0.25) -> Iterator[str]:
    """Yield lines appended to the node's log, forever (``logs -f``)."""
    with node.log_file.open("r", errors="replace") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            line = handle.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(poll_s)
