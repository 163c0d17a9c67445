"""Sampling profiles of running services (``gx bench pipeline --profile``) with py-spy, summarised by own CPU.

py-spy attaches to each process by pid without restarting it and samples its Python stacks; ``--format raw``
writes collapsed stacks, one ``frame;frame;… count`` line per distinct stack. A function's *own* share is the
samples in which it is the innermost frame.

Only samples of the thread holding the GIL are kept (``--gil``): py-spy's idle detection lets threads blocked in
``select``, ``Condition.wait`` or libpq's wait through, which would rank waiting above work. The GIL holder is the
one running Python, so the table is the services' Python CPU; time spent in C without the GIL (libpq, gRPC core,
TLS) is not in it — the per-service CPU-seconds of the benchmark count that.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sysconfig
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from gxlib.errors import GxError

# "function (path/to/file.py:123)" → the function and its file, without the line, so a function's lines add up.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


class ProfilerError(GxError):
    """The sampling profiler is missing or could not attach to a service."""


@dataclass(frozen=True)
class ProfileEntry:
    function: str  # "name (file)"
    own_samples: int
    own_share: float  # of all samples of the process


@dataclass(frozen=True)
class ServiceProfile:
    service: str
    pid: int
    samples: int
    top: list[ProfileEntry]
    raw_file: str


def frame_name(frame: str) -> str:
    """``name (file)`` of a py-spy frame, the line number dropped (frames of another shape are kept whole)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['function']} ({file})"


def top_own(collapsed: str, count: int = 10) -> tuple[int, list[ProfileEntry]]:
    """All samples, and the ``count`` functions with the most own samples, from collapsed stacks."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, samples = line.rstrip().rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        own[frame_name(stack.rsplit(";", 1)[-1])] += int(samples)
    return total, [ProfileEntry(name, n, round(n / total, 4)) for name, n in own.most_common(count)]


class ServiceProfiler:
    """``py-spy record`` attached to each named pid while the ``with`` block runs; :meth:`results` after it."""

    def __init__(self, pids: Mapping[str, int], out_dir: Path, *, rate: int = 100, top: int = 10) -> None:
        self.pids = dict(pids)
        self.out_dir = out_dir
        self.rate = rate
        self.top = top
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    @staticmethod
    def executable() -> str:
        # This Python's own scripts first: a venv's py-spy is found even when the venv is not activated.
        search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
        found = shutil.which("py-spy", path=search)
        if found is None:
            raise ProfilerError("py-spy is not installed, so the services cannot be profiled",
                                hint="pip install 'py-spy>=0.4' (it is in gxlib's [dev] extra)")
        return found

    def raw_file(self, service: str) -> Path:
        return self.out_dir / f"{service}.collapsed.txt"

    def __enter__(self) -> ServiceProfiler:
        py_spy = self.executable()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for service, pid in self.pids.items():
            process = subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(self.rate), "--nonblocking",
                 "--gil", "--subprocesses", "--output", str(self.raw_file(service))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self._running[service] = process
            # Sampling has begun once py-spy says so; if it exits first, it could not attach.
            assert process.stdout is not None
            for line in process.stdout:
                if b"Sampling process" in line:
                    break
            else:
                _, stderr = process.communicate()
                self._stop_all()
                raise ProfilerError(f"py-spy could not attach to {service} (pid {pid}): "
                                    f"{stderr.decode(errors='replace').strip().splitlines()[:1] or 'no output'}",
                                    hint="py-spy needs ptrace rights on the services (run as their user or root)")
        return self

    def _stop_all(self) -> dict[str, bytes]:
        """SIGINT every py-spy still running (it writes its file then) and collect what each said on stderr."""
        said = {}
        for service, process in self._running.items():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                _, said[service] = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, said[service] = process.communicate()
        self._running.clear()
        return said

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        failures = [f"{service} (pid {self.pids[service]}): {stderr.decode(errors='replace').strip()[-300:] or '-'}"
                    for service, stderr in self._stop_all().items() if not self.raw_file(service).is_file()]
        if failures and exc_type is None:
            raise ProfilerError("py-spy could not profile " + "; ".join(failures),
                                hint="py-spy needs ptrace rights on the services (run as their user or as root)")

    def results(self) -> list[ServiceProfile]:
        profiles = []
        for service, pid in self.pids.items():
            path = self.raw_file(service)
            total, top = top_own(path.read_text() if path.is_file() else "", self.top)
            profiles.append(ServiceProfile(service, pid, total, top, str(path)))
        return profiles
