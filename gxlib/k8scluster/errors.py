"""The cluster's typed errors: each names the component that failed and the log to read."""

from __future__ import annotations

from pathlib import Path

from gxlib.errors import GxError


class ClusterError(GxError):
    """A component of the cluster did not start, answer or stop; ``log_file`` is where to look."""

    def __init__(self, component: str, problem: str, *, log_file: Path | None = None, log_tail: str = "",
                 hint: str | None = None) -> None:
        where = f"; last lines of {log_file}:\n{log_tail}" if log_file is not None and log_tail else (
            f"; see {log_file}" if log_file is not None else "")
        super().__init__(f"{component}: {problem}{where}", hint=hint)
        self.component = component
        self.problem = problem
        self.log_file = log_file


class HostNotSupported(GxError):
    """This host cannot run the cluster (not root, no cgroups, a tool missing); nothing was changed."""

    def __init__(self, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"this host cannot run a Kubernetes node: {reason}", hint=hint)
        self.reason = reason


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
