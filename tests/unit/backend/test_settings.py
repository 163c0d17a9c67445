"""BackendSettings come from GX_BACKEND_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.backend.settings import ApiRole, BackendSettings


def test_defaults_are_a_local_sqlite_file_and_no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GX_BACKEND_DATABASE_URL", raising=False)
    monkeypatch.delenv("GX_BACKEND_API_TOKENS", raising=False)
    settings = BackendSettings()
    assert settings.database_url.startswith("sqlite:///") and settings.api_tokens == {}


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GX_BACKEND_DATABASE_URL", "postgresql+psycopg://gx@127.0.0.1:5432/gx")
    monkeypatch.setenv("GX_BACKEND_API_TOKENS", '{"t1": "admin", "t2": "reader"}')
    monkeypatch.setenv("GX_BACKEND_SUBMITTER__MAX_IN_FLIGHT", "128")
    settings = BackendSettings()
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.api_tokens == {"t1": ApiRole.ADMIN, "t2": ApiRole.READER}
    assert settings.submitter.max_in_flight == 128


def test_roles_are_ordered() -> None:
    assert ApiRole.ADMIN.includes(ApiRole.OPERATOR) and ApiRole.OPERATOR.includes(ApiRole.READER)
    assert not ApiRole.READER.includes(ApiRole.OPERATOR)


def test_the_api_bounds_on_slow_clients_and_connections_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from gxlib.backend.api.server import server_config

    defaults = BackendSettings()
    assert defaults.api_read_timeout_s == 10.0 and defaults.api_max_connections == 512
    assert defaults.api_max_head_bytes == 16 * 1024
    monkeypatch.setenv("GX_BACKEND_API_READ_TIMEOUT_S", "2.5")
    monkeypatch.setenv("GX_BACKEND_API_MAX_HEAD_BYTES", "8192")
    monkeypatch.setenv("GX_BACKEND_API_MAX_CONNECTIONS", "64")
    monkeypatch.setenv("GX_BACKEND_API_KEEP_ALIVE_S", "3")
    settings = BackendSettings()
    config = server_config(object(), settings)
    assert config.http.read_timeout_s == 2.5 and config.http.max_connections == 64  # type: ignore[union-attr]
    assert config.http.max_head_bytes == 8192  # type: ignore[union-attr]
    assert config.ws == "none"  # no upgrade leaves the guarded protocol
    assert config.timeout_keep_alive == 3
    monkeypatch.setenv("GX_BACKEND_API_READ_TIMEOUT_S", "0")
    with pytest.raises(ValueError, match="api_read_timeout_s"):
        BackendSettings()


def test_secrets_come_from_files_in_the_secrets_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # As Kubernetes mounts Secrets backend-secrets and backend-api-tokens: one file per key.
    monkeypatch.delenv("GX_BACKEND_DATABASE_URL", raising=False)
    monkeypatch.delenv("GX_BACKEND_API_TOKENS", raising=False)
    (tmp_path / "GX_BACKEND_DATABASE_URL").write_text("postgresql+psycopg://gx:pw@db:5432/gx")
    (tmp_path / "GX_BACKEND_API_TOKENS").write_text('{"t1": "admin"}')
    monkeypatch.setenv("GX_BACKEND_SECRETS_DIR", str(tmp_path))
    settings = BackendSettings()
    assert settings.database_url == "postgresql+psycopg://gx:pw@db:5432/gx"
    assert settings.api_tokens == {"t1": ApiRole.ADMIN}


def test_a_worker_without_the_token_file_has_no_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GX_BACKEND_API_TOKENS", raising=False)
    (tmp_path / "GX_BACKEND_DATABASE_URL").write_text("postgresql+psycopg://gx:pw@db:5432/gx")
    monkeypatch.setenv("GX_BACKEND_SECRETS_DIR", str(tmp_path))
    assert BackendSettings().api_tokens == {}


def test_an_environment_variable_wins_over_a_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "GX_BACKEND_DATABASE_URL").write_text("postgresql+psycopg://gx:pw@db:5432/gx")
    monkeypatch.setenv("GX_BACKEND_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("GX_BACKEND_DATABASE_URL", "sqlite:///x.sqlite3")
    assert BackendSettings().database_url == "sqlite:///x.sqlite3"
