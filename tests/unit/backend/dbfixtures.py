"""Database fixtures of the backend suite: every test that asks for ``engine`` runs on SQLite AND on a real
PostgreSQL cluster (started once per session on loopback; a failure to start it fails the tests)."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gxlib.backend.db import make_engine, migrate
from gxlib.backend.pgcluster import PostgresCluster

_database_numbers = itertools.count(1)


@contextlib.contextmanager
def throwaway_postgres(prefix: str) -> Iterator[PostgresCluster]:
    """A started PostgreSQL cluster in a new temporary directory, stopped and removed afterwards."""
    # Not under pytest's basetemp: pytest keeps that tree 0700, and the server may run as another user.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = PostgresCluster(root / "cluster")
    try:
        yield cluster.start()
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with throwaway_postgres("gx-test-postgres-") as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes empty databases of this test's kind (SQLite files, or databases in the session's cluster)."""
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'backend-{next(_database_numbers)}.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return lambda: cluster.create_database(f"gx_test_{next(_database_numbers)}")


@pytest.fixture
def database_url(new_database_url: Callable[[], str]) -> str:
    return new_database_url()


@pytest.fixture
def new_engine(new_database_url: Callable[[], str]) -> Iterator[Callable[[], Engine]]:
    """Makes migrated, empty backend databases of this test's kind; disposes them at the end."""
    made: list[Engine] = []

    def make() -> Engine:
        eng = make_engine(new_database_url(), pool_size=20, max_overflow=10)
        migrate(eng)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.dispose()


@pytest.fixture
def engine(new_engine: Callable[[], Engine]) -> Engine:
    """A migrated, empty backend database."""
    return new_engine()
