"""CPU time spent by this process and by other local processes, for "CPU-seconds per transaction" figures."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Mapping
from pathlib import Path

PROC = Path("/proc")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads, gRPC's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (``/proc/<pid>/stat``); ``None`` if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process that is still running."""
    return {name: seconds for name, pid in pids.items() if (seconds := process_cpu_seconds(pid)) is not None}


def cpu_spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each process spent between two snapshots (processes present in both)."""
    return {name: after[name] - before[name] for name in before if name in after}


def nodes_cpu_reading(pids: Mapping[str, int]) -> Callable[[], float]:
    """A reading of the CPU-seconds so far of the given processes together (those still running)."""
    return lambda: sum(cpu_snapshot(pids).values())


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))
