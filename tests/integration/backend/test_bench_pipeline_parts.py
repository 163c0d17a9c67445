"""The parts of `gx bench pipeline` and `gx projector replay` that need no Fabric: fresh replay databases beside
the live one, and the outbox-alone headroom run — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import inspect

from gxlib.backend.db import make_engine, migrate
from gxlib.backend.ledger_replay import fresh_database
from gxlib.backend.settings import SubmitterSettings
from gxlib.bench.cli import bench
from gxlib.bench.pipeline import outbox_headroom


def test_a_fresh_replay_database_is_empty_separate_and_removed_afterwards(database_url: str) -> None:
    live = make_engine(database_url)
    migrate(live)
    with fresh_database(database_url) as url:
        assert url != database_url
        target = make_engine(url)
        assert inspect(target).get_table_names() == []
        migrate(target)
        assert "accounts" in inspect(target).get_table_names()
        target.dispose()
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).parent.exists()
    else:
        with live.connect() as connection:
            names = connection.exec_driver_sql("SELECT datname FROM pg_database").scalars().all()
        assert url.rsplit("/", 1)[1] not in names
    live.dispose()


def test_outbox_headroom_commits_every_command_through_the_null_gateway(database_url: str) -> None:
    figures = outbox_headroom(database_url, SubmitterSettings(batch_size=50, max_in_flight=64), 120)
    assert figures["outbox_enqueue_per_s"] > 0 and figures["outbox_claim_to_committed_per_s"] > 0


def test_bench_pipeline_refuses_bad_rates_before_touching_anything() -> None:
    result = CliRunner().invoke(bench, ["pipeline", "--rates", "10,x"])
    assert result.exit_code == 2 and "comma-separated" in result.output
    result = CliRunner().invoke(bench, ["pipeline", "--rates", "10,-5"])
    assert result.exit_code == 2 and "positive" in result.output
