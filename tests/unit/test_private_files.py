"""Secrets and private data are never readable by others, not even for a moment after they are created."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gxlib.backend.db import make_engine
from gxlib.files import LOG_FILE_MODE, PRIVATE_FILE_MODE, open_append, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: a file that relies on the umask comes out world-readable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def creation_modes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every file created through ``os.open``, with the mode it had the moment it appeared on disk."""
    seen: list[tuple[str, int]] = []
    real_open = os.open

    def recording_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777, *args: object,
                       **kwargs: object) -> int:
        existed = os.path.exists(path)
        fd = real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]
        if flags & os.O_CREAT and not existed:
            seen.append((os.fspath(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    return seen


def test_private_file_is_owner_only_from_its_first_byte(tmp_path: Path, open_umask: None,
                                                       creation_modes: list[tuple[str, int]]) -> None:
    target = tmp_path / "keys" / "priv_sk"
    write_private(target, b"-----BEGIN PRIVATE KEY-----\n")
    assert target.read_bytes() == b"-----BEGIN PRIVATE KEY-----\n"
    assert _mode(target) == PRIVATE_FILE_MODE
    assert creation_modes, "write_private must create its file through os.open with an explicit mode"
    assert all(mode == PRIVATE_FILE_MODE for _, mode in creation_modes), creation_modes


def test_rewriting_a_private_file_narrows_a_file_that_was_world_readable(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "api-token"
    target.write_text("old\n")
    target.chmod(0o644)
    write_private(target, "new\n")
    assert target.read_text() == "new\n"
    assert _mode(target) == PRIVATE_FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["api-token"], "no temporary file is left behind"


def test_log_file_is_created_group_readable_only(tmp_path: Path, open_umask: None,
                                                 creation_modes: list[tuple[str, int]]) -> None:
    log_file = tmp_path / "api" / "service.log"
    with open_append(log_file, LOG_FILE_MODE) as log:
        log.write(b"started\n")
    with open_append(log_file, LOG_FILE_MODE) as log:
        log.write(b"started again\n")
    assert log_file.read_bytes() == b"started\nstarted again\n"
    assert _mode(log_file) == LOG_FILE_MODE
    assert [mode for _, mode in creation_modes] == [LOG_FILE_MODE]


def test_sqlite_database_file_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    database = tmp_path / "backend" / "gx-backend.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            connection.commit()
        modes = {p.name: _mode(p) for p in database.parent.iterdir()}
    finally:
        engine.dispose()
    # The database and SQLite's -wal/-shm companions all take the database file's mode.
    assert modes and all(mode == PRIVATE_FILE_MODE for mode in modes.values()), modes


def test_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "gx-backend.sqlite3"
    database.touch()
    database.chmod(0o644)
    make_engine(f"sqlite:///{database}").dispose()
    assert _mode(database) == PRIVATE_FILE_MODE


def _created_private(creation_modes: list[tuple[str, int]]) -> list[str]:
    return [path for path, mode in creation_modes if mode == PRIVATE_FILE_MODE]


def test_devnet_private_keys_are_never_world_readable(tmp_path: Path, open_umask: None,
                                                      creation_modes: list[tuple[str, int]]) -> None:
    from gxlib.config import DevnetSettings
    from gxlib.devnet.crypto import generate_crypto
    from gxlib.devnet.layout import DevnetLayout

    layout = DevnetLayout(DevnetSettings(state_dir=tmp_path))
    assert generate_crypto(layout) is True
    keys = [p for p in tmp_path.rglob("*") if p.is_file() and (p.name == "priv_sk" or p.name.endswith(".key"))]
    assert keys
    assert {p: _mode(p) for p in keys} == dict.fromkeys(keys, PRIVATE_FILE_MODE)
    # Each key was created owner-only (not written world-readable and chmod'ed afterwards).
    assert len(_created_private(creation_modes)) == len(keys)


def test_generated_api_token_is_never_world_readable(tmp_path: Path, open_umask: None,
                                                     creation_modes: list[tuple[str, int]]) -> None:
    from gxlib.backend.local import LocalBackend
    from gxlib.config import DevnetSettings
    from gxlib.devnet.network import Devnet

    backend = LocalBackend(Devnet(DevnetSettings(state_dir=tmp_path)))
    token = next(iter(backend.api_tokens()))
    assert backend.token_file.read_text().strip() == token
    assert _mode(backend.token_file) == PRIVATE_FILE_MODE
    assert len(_created_private(creation_modes)) == 1
    assert next(iter(backend.api_tokens())) == token, "a second call reads the same token"


def test_control_plane_keys_and_tokens_are_never_world_readable(tmp_path: Path, open_umask: None,
                                                               creation_modes: list[tuple[str, int]]) -> None:
    from gxlib.k8sbuild.pki import write_pki

    pki = write_pki(tmp_path, service_ip="10.0.0.1")
    secrets = [pki.serving_key, pki.service_account_key, pki.kubelet_client_key, pki.token_file]
    assert {p: _mode(p) for p in secrets} == dict.fromkeys(secrets, PRIVATE_FILE_MODE)
    assert len(_created_private(creation_modes)) == len(secrets)
