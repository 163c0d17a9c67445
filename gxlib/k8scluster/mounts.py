"""Mounts the kubelet and containerd leave under the state dir (pod volumes, container root filesystems, shm,
network namespaces), found in /proc/self/mountinfo and unmounted deepest first."""

from __future__ import annotations

import subprocess
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mount_points(mountinfo: str) -> list[str]:
    """Every mount point in a mountinfo text, in mount order."""
    return [_unescape(line.split()[4]) for line in mountinfo.splitlines() if len(line.split()) > 4]


def mounts_under(root: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below ``root``, deepest first (the order to unmount them in)."""
    text = MOUNTINFO.read_text() if mountinfo is None else mountinfo
    prefix = str(root).rstrip("/")
    inside = [point for point in mount_points(text) if point == prefix or point.startswith(prefix + "/")]
    return sorted(dict.fromkeys(inside), key=lambda point: (point.count("/"), point), reverse=True)


def unmount_under(root: Path) -> list[str]:
    """Unmount everything below ``root`` (lazily when busy); the mount points unmounted."""
    unmounted: list[str] = []
    for _ in range(5):  # a mount may be stacked several times
        points = mounts_under(root)
        if not points:
            break
        for point in points:
            proc = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                proc = subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                unmounted.append(point)
    return unmounted
