"""`gx backend` commands (the group the lead mounts in gx)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gxlib.backend.cli import backend
from gxlib.backend.db import head_revision, make_engine
from gxlib.backend.outbox import Outbox


def test_migrate_outbox_and_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    runner = CliRunner()
    result = runner.invoke(backend, ["migrate", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == head_revision()
    engine = make_engine(url)
    cid = Outbox(engine).enqueue("DISTRIBUTE_GENESIS", {"userId": "u"}, "k").command.id
    engine.dispose()
    counts = json.loads(runner.invoke(backend, ["outbox", "--json", "--database-url", url]).output)
    assert counts["PENDING"] == 1
    shown = json.loads(runner.invoke(backend, ["command", cid, "--database-url", url]).output)
    assert shown["status"] == "PENDING" and shown["command_type"] == "DISTRIBUTE_GENESIS"
    assert runner.invoke(backend, ["dlq", "--database-url", url]).output == ""
