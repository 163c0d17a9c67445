"""Backend unit tests: database fixtures (SQLite and PostgreSQL) and events recorded from the real chaincode."""

from tests.unit.backend.chaincode_events import recorded_history
from tests.unit.backend.dbfixtures import database_url, engine, new_database_url, new_engine, postgres_cluster
from tests.unit.chaincode.conftest import callers

__all__ = ["callers", "database_url", "engine", "new_database_url", "new_engine", "postgres_cluster",
           "recorded_history"]
