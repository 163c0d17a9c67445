"""A local backend reads the database its running services write: theirs when none is given (`gx backend status`,
`gx bench pipeline`), and a different one given explicitly is refused with both named — by `gx backend up`, which
would otherwise leave the running services on the old one, and by the pipeline bench, which would wait for
commands that never reach it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.backend.local import BackendDatabaseMismatchError, LocalBackend
from gxlib.backend.settings import BackendSettings
from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress

RUNNING = "postgresql+psycopg://gx:secret@127.0.0.1:5432/gx_backend"


def devnet_in(path: Path) -> Devnet:
    return Devnet(DevnetSettings(state_dir=path), FabricBuildSettings(), Progress(quiet=True))


@pytest.fixture
def api_running_on_postgres(tmp_path: Path) -> Iterator[Devnet]:
    """A process that passes for the devnet's running API service, started on ``RUNNING``."""
    devnet = devnet_in(tmp_path)
    api = LocalBackend(devnet).services[0]
    api.dir.mkdir(parents=True)
    marker, value = api.marker
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={**os.environ, marker: value, "GX_BACKEND_DATABASE_URL": RUNNING})
    try:
        api.pid_file.write_text(f"{child.pid}\n")
        deadline = time.monotonic() + 5
        while processes.env_value(child.pid, marker) is None and time.monotonic() < deadline:
            time.sleep(0.02)  # until the child has exec'd with its environment
        yield devnet
    finally:
        child.kill()
        child.wait()


def test_with_nothing_running_the_default_is_the_sqlite_file_beside_the_services(tmp_path: Path) -> None:
    local = LocalBackend(devnet_in(tmp_path))
    assert local.running_database_url() is None
    assert local.settings.database_url == f"sqlite:///{tmp_path / 'backend' / 'gx-backend.sqlite3'}"
    local.require_running_database()  # nothing runs: nothing to refuse


def test_given_no_database_a_backend_is_the_running_services_one(api_running_on_postgres: Devnet) -> None:
    local = LocalBackend(api_running_on_postgres)
    assert local.running_database_url() == RUNNING and local.settings.database_url == RUNNING
    local.require_running_database()
    assert local.status().database_url == "postgresql+psycopg://gx:***@127.0.0.1:5432/gx_backend"
    same = LocalBackend(api_running_on_postgres, BackendSettings(database_url=RUNNING))
    same.require_running_database()  # the same one given: fine


def test_a_different_database_given_is_refused_with_both_named_and_the_password_hidden(
        api_running_on_postgres: Devnet) -> None:
    local = LocalBackend(api_running_on_postgres, BackendSettings(database_url="sqlite:////tmp/other.sqlite3"))
    with pytest.raises(BackendDatabaseMismatchError) as refused:
        local.require_running_database()
    message = f"{refused.value.message} {refused.value.hint}"
    assert "runs on postgresql+psycopg://gx:***@127.0.0.1:5432/gx_backend" in message
    assert "not on the given sqlite:////tmp/other.sqlite3" in message
    assert "--database-url" in message and "gx backend down" in message and "secret" not in message
    # The status says what the services write, not what was given.
    assert local.status().database_url.startswith("postgresql+psycopg://gx:***@")
    # `gx backend up` would start nothing beside them on the other database.
    with pytest.raises(BackendDatabaseMismatchError):
        local.up()
    assert not (api_running_on_postgres.layout.root / "backend" / "submitter").exists()


def test_gx_bench_pipeline_on_another_database_is_refused_before_any_load(
        api_running_on_postgres: Devnet, monkeypatch: pytest.MonkeyPatch) -> None:
    from gxlib.bench import cli as bench_cli

    monkeypatch.setattr("gxlib.bench.gateway.check_ready", lambda devnet, chaincode: None)
    monkeypatch.setattr(LocalBackend, "status", lambda self: type("S", (), {"all_healthy": True})())
    monkeypatch.setattr(bench_cli, "run_pipeline_bench", lambda *a, **k: pytest.fail("the bench ran"),
                        raising=False)
    result = CliRunner().invoke(bench_cli.bench, ["pipeline", "--state-dir", str(api_running_on_postgres.layout.root),
                                                  "--database-url", "sqlite:////tmp/other.sqlite3"])
    assert result.exit_code != 0
    assert isinstance(result.exception, BackendDatabaseMismatchError)
