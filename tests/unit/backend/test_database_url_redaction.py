"""A database password never shows: not in `gx backend status` (text or JSON), not in settings' repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.backend.cli import backend
from gxlib.backend.db import make_engine
from gxlib.backend.dburl import redacted_database_url
from gxlib.backend.errors import DatabaseUrlError
from gxlib.backend.settings import BackendSettings

PASSWORD = "s3cr3t-Pw"
URL = f"postgresql+psycopg://gx:{PASSWORD}@127.0.0.1:1/gx"


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_backend_status_shows_the_database_url_without_its_password(tmp_path: Path, as_json: bool) -> None:
    args = ["status", "--state-dir", str(tmp_path), "--database-url", URL] + (["--json"] if as_json else [])
    result = CliRunner().invoke(backend, args)
    assert result.exit_code == 1, result.output  # nothing is running
    assert PASSWORD not in result.output
    shown = json.loads(result.output)["database_url"] if as_json else result.output
    assert "postgresql+psycopg://gx:***@127.0.0.1:1/gx" in shown


@pytest.mark.parametrize(("url", "shown"), [
    (URL, "postgresql+psycopg://gx:***@127.0.0.1:1/gx"),
    ("sqlite:////var/lib/gx/gx-backend.sqlite3", "sqlite:////var/lib/gx/gx-backend.sqlite3"),
    ("postgresql://gx@db/gx", "postgresql://gx@db/gx"),
    # Not a URL SQLAlchemy can parse: the password is still hidden.
    (f"not a driver://gx:{PASSWORD}@db/gx", "not a driver://gx:***@db/gx"),
    (f"gx:{PASSWORD}@db/gx", "gx:***@db/gx"),
    (f"postgresql://gx:{PASSWORD}@db:notaport/gx", "postgresql://gx:***@db:notaport/gx"),
])
def test_redacted_database_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redacted_database_url(url) == shown


def test_settings_repr_carries_neither_the_database_url_nor_the_tokens() -> None:
    settings = BackendSettings(database_url=URL, api_tokens={"tok-abcdef": "admin"})
    assert PASSWORD not in repr(settings) and "tok-abcdef" not in repr(settings)
    assert PASSWORD not in str(settings)


@pytest.mark.parametrize("url", [f"postgresql://gx:{PASSWORD}@db:notaport/gx", f"gx:{PASSWORD}@db/gx"])
def test_an_invalid_database_url_is_refused_without_showing_its_password(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        make_engine(url)
    assert PASSWORD not in str(raised.value) and "gx:***@db" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, "no chained SQLAlchemy message"
