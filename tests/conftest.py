"""Fixtures shared by every test: the Fabric build (built once, cached) and devnet factories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet.binaries import FabricInstall, ensure_fabric
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress

# Test networks run on shifted ports so that a developer's own `gx devnet up` (default ports) keeps running.
# Each fixture below takes its own offset; GX_TEST_PORT_OFFSET moves them all.
BASE_TEST_OFFSET = int(os.environ.get("GX_TEST_PORT_OFFSET", "20000"))


@pytest.fixture(scope="session")
def fabric_install() -> FabricInstall:
    """The cached Fabric build (built here if missing, as `make test` would have done)."""
    return ensure_fabric(FabricBuildSettings(), Progress(quiet=True))


def make_devnet(state_dir: Path, port_offset: int, **overrides: object) -> Devnet:
    """A Devnet object for a test network in ``state_dir`` (nothing is started)."""
    settings = DevnetSettings(state_dir=state_dir, port_offset=port_offset, **overrides)  # type: ignore[arg-type]
    return Devnet(settings, FabricBuildSettings(), Progress(quiet=True))


@pytest.fixture(scope="session")
def devnet(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A real local Fabric network, up once per test session, stopped and removed at the end."""
    net = make_devnet(tmp_path_factory.mktemp("devnet"), BASE_TEST_OFFSET)
    try:
        net.up()
        yield net
    finally:
        net.down(purge=True)
