"""Shared helpers of the monitoring unit tests: the rendered artifacts and the promtool/amtool binaries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gxlib.monitoring.render import Artifact, committed_artifacts

REPO_ROOT = Path(__file__).resolve().parents[3]


def required_binary(name: str, package: str) -> str:
    """The path of ``name``; fails (never skips) when it is missing, naming the package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with Debian's {package} package "
                    "(scripts/ensure-system-packages scripts/system-packages.txt installs it)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return required_binary("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return required_binary("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def rendered() -> dict[str, Artifact]:
    """A fresh render of every artifact, by repository-relative path."""
    return {str(artifact.path): artifact for artifact in committed_artifacts()}
