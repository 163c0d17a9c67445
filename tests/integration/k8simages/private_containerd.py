"""A containerd of the test's own (root, state and socket under a temporary directory), driven with ``ctr``.

The CRI plugin is disabled: the tests import and run images with ``ctr`` only, and never touch the host's
containerd (if there is one) or its images.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "k8s.io"  # the namespace the kubelet's CRI reads images from


@dataclass(frozen=True)
class Ctr:
    """``ctr`` bound to one containerd socket and the k8s.io namespace."""

    socket: Path

    def run(self, *args: str, timeout: float = 120, with_stderr: bool = False) -> str:
        command = ["ctr", "--address", str(self.socket), "-n", NAMESPACE, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise AssertionError(f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout + (result.stderr if with_stderr else "")


def containerd_available() -> bool:
    return shutil.which("containerd") is not None and shutil.which("ctr") is not None


@contextmanager
def private_containerd(base: Path) -> Iterator[Ctr]:
    # A unix socket path must stay under ~108 bytes; pytest's tmp paths can be longer.
    socket_dir = Path(
        subprocess.run(["mktemp", "-d", "/tmp/gxctd-XXXXXX"], capture_output=True, text=True, check=True).stdout.strip()
    )
    socket = socket_dir / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base / "root"}"\n'
        f'state = "{socket_dir / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
        f'[ttrpc]\n  address = "{socket}.ttrpc"\n'
        '[debug]\n  address = ""\n'
        '[metrics]\n  address = ""\n'
    )
    log = (base / "containerd.log").open("w")
    daemon = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    ctr = Ctr(socket)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start; see {base / 'containerd.log'}")
            time.sleep(0.1)
        yield ctr
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        _unmount_under(base)
        _unmount_under(socket_dir)
        shutil.rmtree(socket_dir, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Snapshot mounts containerd may leave behind under ``path`` (deepest first)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(str(path))), reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)
