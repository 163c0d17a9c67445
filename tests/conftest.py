"""Fixtures shared by every test: the Fabric build (built once, cached) and devnet factories; and the background
build of the Kubernetes binaries and images (:mod:`tests.prebuild`) in a session that runs Kubernetes tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet.binaries import FabricInstall, ensure_fabric
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress
from tests import prebuild

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


_BACKGROUND_BUILD = pytest.StashKey[prebuild.BackgroundBuild]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Kubernetes tests run last, so that the background build has finished when they start."""
    items[:] = prebuild.kubernetes_last(items, lambda item: item.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the background build when the collected tests include Kubernetes ones (not with --collect-only)."""
    config = session.config
    if config.option.collectonly or not prebuild.enabled():
        return
    if not prebuild.needs_kubernetes(item.nodeid for item in session.items):
        return
    gx = prebuild.gx_command()
    if not gx.exists():
        return
    build = prebuild.BackgroundBuild.start(gx)
    config.stash[_BACKGROUND_BUILD] = build
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"building the Kubernetes binaries and images in the background at nice 19 while the "
                            f"other tests run ({prebuild.ENABLED_VARIABLE}=0 turns it off); log: {build.log}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A ``quiet_machine`` test runs (set-up and tear-down included) with the background build paused."""
    build = item.config.stash.get(_BACKGROUND_BUILD, None)
    paused = build if build is not None and item.get_closest_marker("quiet_machine") is not None else None
    if paused is not None:
        paused.pause()
    try:
        yield
    finally:
        if paused is not None:
            paused.resume()


_BUILD_OUTCOME = pytest.StashKey[str]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the background build if it still runs (its outcome goes into the terminal summary)."""
    build = session.config.stash.get(_BACKGROUND_BUILD, None)
    if build is not None:
        session.config.stash[_BUILD_OUTCOME] = build.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    outcome = config.stash.get(_BUILD_OUTCOME, None)
    if outcome is not None:
        terminalreporter.write_sep("-", "Kubernetes binaries and images (background build)")
        terminalreporter.write_line(outcome)
