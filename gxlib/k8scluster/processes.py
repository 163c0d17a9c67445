"""The cluster's processes: started detached (they outlive ``gx k8s up``), one log and one pid file each, found
again and stopped by ``status`` and ``down`` from those pid files.

A pid file holds the pid and, when known, the process's start time in clock ticks (``/proc/<pid>/stat`` field
22), so that a pid the kernel has since given to another program is not mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gxlib.files import LOG_FILE_MODE, open_append


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None when there is no such process (or only its zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    started: int | None

    def alive(self) -> bool:
        now = start_ticks(self.pid)
        if now is None:
            return False
        return self.started is None or now == self.started


def parse_pid_file(name: str, text: str) -> ProcessRecord | None:
    words = text.split()
    if not words or not words[0].isdigit():
        return None
    started = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
    return ProcessRecord(name, int(words[0]), started)


def read_records(pid_dir: Path) -> list[ProcessRecord]:
    """Every process recorded in ``pid_dir``, oldest pid file first."""
    if not pid_dir.is_dir():
        return []
    records = []
    for path in sorted(pid_dir.glob("*.pid"), key=lambda p: p.stat().st_mtime_ns):
        record = parse_pid_file(path.stem, path.read_text())
        if record is not None:
            records.append(record)
    return records


def spawn(name: str, args: list[str], *, pid_dir: Path, log_file: Path, cwd: Path,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own session (it survives the caller), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_dir.mkdir(parents=True, exist_ok=True)
    with open_append(log_file, LOG_FILE_MODE) as log:
        popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=cwd, env=dict(env) if env is not None else None)
    (pid_dir / f"{name}.pid").write_text(f"{popen.pid} {start_ticks(popen.pid) or ''}\n")
    return popen


def stop(record: ProcessRecord, timeout_s: float = 20.0) -> bool:
    """SIGTERM the process's group, SIGKILL after ``timeout_s``; True when it was running."""
    if not record.alive():
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while record.alive() and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(0.1)
    if record.alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, signal.SIGKILL)
        while record.alive():
            _reap(record.pid)
            time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (else it would linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pids_with_argument(argument: str) -> list[int]:
    """Processes whose command line contains ``argument`` as one word (e.g. our containerd's socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in words:
            found.append(int(entry.name))
    return found
