"""Build the Kubernetes binaries and the container images in the background while the tests that need neither run.

On a fresh machine these builds take about 25 minutes of CPU on 2 cores (Go compiles of Kubernetes, Prometheus,
kube-state-metrics, CoreDNS; Debian root file systems), and the first Kubernetes test used to start them itself. The
tests before it (unit tests, then the Fabric and backend integration tests, which mostly wait on networks) leave
much of the CPU idle, so a session that will run Kubernetes tests starts ``gx k8s build`` and then
``gx k8s images --build`` at once, at nice 19: the tests keep the CPU whenever they want it. The caches' own file
locks make a test that needs a tool or an image before it is ready wait for the builder instead of building it a
second time; a build that fails in the background is built (and fails, with its error) again by the test that needs
it. Tests marked ``quiet_machine`` (timing-sensitive under load: the reliability tests' short leases and commit
timeouts) run with the builder paused (SIGSTOP to its process group, SIGCONT after); such a test must need no
Kubernetes tool or image, or it would wait for a paused builder. ``GX_TEST_PREBUILD=0`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

# The test directories whose tests need the Kubernetes binaries or images.
NEEDS_KUBERNETES = ("tests/integration/k8scluster", "tests/integration/k8sdeploy", "tests/integration/k8simages",
                    "tests/integration/platform")
ENABLED_VARIABLE = "GX_TEST_PREBUILD"
T = TypeVar("T")


def needs_kubernetes(test_paths: Iterable[str]) -> bool:
    """Whether any of ``test_paths`` (test IDs relative to the repository) is in a Kubernetes test directory."""
    return any(path.startswith(NEEDS_KUBERNETES) for path in test_paths)


def kubernetes_last(items: list[T], test_path: Callable[[T], str]) -> list[T]:
    """``items`` with those in a Kubernetes test directory moved to the end, each part in its order.

    A fresh machine's background build needs 30-40 minutes beside the tests; run in the directories' alphabetical
    order, the first Kubernetes test came about 33 minutes in and waited for it. Last, they start after the monitoring,
    runbook and shim tests too, by when the build is done (measured on 8683ad9: done 29 minutes into pytest, first
    Kubernetes test at 30). A module stays whole (its fixtures are set up once)."""
    return sorted(items, key=lambda item: test_path(item).startswith(NEEDS_KUBERNETES))  # stable: orders kept


def enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(ENABLED_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def builder_script(gx: Path) -> str:
    """The shell commands the background builder runs: the binaries first (the first Kubernetes test needs them),
    then every image of the catalog, in its order (the pause image first)."""
    return f"nice -n 19 {gx} k8s build && nice -n 19 {gx} k8s images --build"


@dataclass
class BackgroundBuild:
    """The running builder: its process (own process group) and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    started: float

    @classmethod
    def start(cls, gx: Path, log_dir: Path | None = None) -> BackgroundBuild:
        descriptor, name = tempfile.mkstemp(prefix="gx-test-prebuild-", suffix=".log", dir=log_dir)
        log = Path(name)
        with os.fdopen(descriptor, "wb") as out:
            process = subprocess.Popen(["sh", "-c", builder_script(gx)], stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        return cls(process, log, time.monotonic())

    def pause(self) -> None:
        """Stop the builder's whole process group where it is (no CPU until :meth:`resume`)."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGCONT)

    def stop(self, grace_s: float = 10.0) -> str:
        """End the builder (its whole process group) if it still runs; a line saying how it ended."""
        elapsed = time.monotonic() - self.started
        code = self.process.poll()
        if code is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            _signal_group(self.process.pid, signal.SIGCONT)  # a paused group acts on SIGTERM only once continued
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
            return f"background build stopped unfinished after {elapsed:.0f}s (log: {self.log})"
        if code != 0:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            return f"background build failed (exit code {code}; log: {self.log}):\n{tail}"
        return f"background build finished (log: {self.log})"


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pid, signum)


def gx_command() -> Path:
    """The ``gx`` entry point of the Python running the tests."""
    return Path(sys.executable).parent / "gx"
