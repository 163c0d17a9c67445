"""What a runbook's path parameter must be, checked before anything is touched (issue 13).

Each check makes the path absolute first (``~`` expanded, ``..`` and symlinks resolved): the notebook runs in its
record directory, not where the operator named the path, so a relative path is resolved where it was given. Then
it refuses what cannot be meant — a missing or wrong-kind path, a directory that is not what the parameter names,
or a system directory — raising ``ValueError`` with the resolved path; the parameter model turns that into an
``InvalidParameter`` naming the parameter.

    devnet_state_dir(Path("../devnet"))   # Path('/home/op/devnet'), or ValueError saying why not
    report_file(Path("slo.html"), notebooks_dir=Path("notebooks"))
"""

from __future__ import annotations

import json
from pathlib import Path

from gxlib.config import DevnetSettings
from gxlib.devnet.layout import DevnetLayout
from gxlib.monitoring.stack import StackLayout

# Trees that hold the operating system: nothing of a runbook's is read from or written into them as a directory.
SYSTEM_TREES = tuple(Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                                       "/proc", "/sbin", "/sys", "/usr"))
# Top-level directories that are fine to live under, but are never themselves a runbook's state or output.
SYSTEM_ROOTS = frozenset(Path(p) for p in ("/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp",
                                           "/var"))


def absolute(path: Path) -> Path:
    """``path`` with ``~`` expanded, made absolute against the current directory, symlinks and ``..`` resolved."""
    return path.expanduser().resolve()


def refuse_system_directory(path: Path, what: str) -> None:
    """ValueError when the absolute ``path`` is a system directory or inside one (``what``: what it should be)."""
    inside = next((tree for tree in SYSTEM_TREES if path == tree or tree in path.parents), None)
    if inside is not None or path in SYSTEM_ROOTS:
        where = f"inside the system directory {inside}" if inside is not None and inside != path else \
            "a system directory"
        raise ValueError(f"{path} is {where}, not {what}")


def _existing_directory(path: Path, what: str) -> None:
    refuse_system_directory(path, what)
    if not path.exists():
        raise ValueError(f"{path} does not exist; it should be {what}")
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory; it should be {what}")


def devnet_state_dir(value: Path) -> Path:
    """The absolute state directory of an existing devnet: it holds the settings file `gx devnet up` writes."""
    path = absolute(value)
    what = "a devnet's state directory (created by `gx devnet up`)"
    _existing_directory(path, what)
    # model_construct: only the layout's file names are wanted, not the GX_DEVNET_* environment.
    settings_file = DevnetLayout(DevnetSettings.model_construct(state_dir=path)).settings_file
    if not settings_file.is_file():
        raise ValueError(f"{path} is not a devnet's state directory: it has no {settings_file.name} (create the "
                         "devnet with `gx devnet up`, or leave devnet_state_dir unset for the default)")
    return path


def monitoring_state_dir(value: Path) -> Path:
    """The absolute state directory of a local monitoring stack: it holds the Prometheus configuration."""
    path = absolute(value)
    what = "a monitoring stack's state directory (created by `gx monitoring up`)"
    _existing_directory(path, what)
    prometheus_config = StackLayout(path).prometheus_config
    if not prometheus_config.is_file():
        raise ValueError(f"{path} is not a monitoring stack's state directory: it has no "
                         f"{prometheus_config.relative_to(path)} (start the stack with `gx monitoring up`, or leave "
                         "monitoring_state_dir unset for the default)")
    return path


def json_document_file(value: Path) -> Path:
    """The absolute path of an existing regular file that holds a JSON object."""
    path = absolute(value)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} holds JSON, but not an object")
    return path


def report_file(value: Path, *, notebooks_dir: Path) -> Path:
    """The absolute path an HTML report may be written to: an ``.html`` file name (replaced if it exists) whose
    directory is one (missing directories are created below an existing one), outside the notebook templates and
    the system directories."""
    path = absolute(value)
    if path.suffix.lower() != ".html":
        raise ValueError(f"{path} does not end in .html; the report is one self-contained HTML file")
    refuse_system_directory(path.parent, "a directory for the report")
    templates = absolute(notebooks_dir)
    if path.parent == templates or templates in path.parents:
        raise ValueError(f"{path} is inside the runbook notebooks directory {templates}; write the report "
                         "elsewhere (unset: into the run's record)")
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} exists and is not a regular file")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"{existing} is not a directory, so {path} cannot be created")
    return path
