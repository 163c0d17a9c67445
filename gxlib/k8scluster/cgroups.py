"""The cgroups the kubelet creates (``kubepods`` and below, in every cgroup v1 controller or the v2 tree): what
runs in them is killed and they are removed deepest first, so ``down`` leaves no pod process or cgroup."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBELET_CGROUPS = ("kubepods",)


def kubelet_cgroup_dirs(root: Path = CGROUP_ROOT) -> list[Path]:
    """Every kubelet cgroup directory (all controllers), deepest first."""
    tops = [root / name for name in KUBELET_CGROUPS] + [c / name for c in root.iterdir() if c.is_dir()
                                                        for name in KUBELET_CGROUPS] if root.is_dir() else []
    found: list[Path] = []
    for top in tops:
        if top.is_dir() and not top.is_symlink():
            found.extend(p for p in top.rglob("*") if p.is_dir())
            found.append(top)
    return sorted(dict.fromkeys(found), key=lambda p: len(p.parts), reverse=True)


def pids_in(dirs: list[Path]) -> set[int]:
    pids: set[int] = set()
    for directory in dirs:
        with contextlib.suppress(OSError):
            pids.update(int(word) for word in (directory / "cgroup.procs").read_text().split())
    return pids


def remove_kubelet_cgroups(root: Path = CGROUP_ROOT, timeout_s: float = 15.0) -> list[str]:
    """Kill what still runs in the kubelet's cgroups, then remove them; the directories removed."""
    dirs = kubelet_cgroup_dirs(root)
    deadline = time.monotonic() + timeout_s
    while (pids := pids_in(dirs)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    removed: list[str] = []
    for directory in dirs:
        with contextlib.suppress(OSError):
            directory.rmdir()
            removed.append(str(directory))
    return removed
