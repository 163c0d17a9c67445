"""Backend integration fixtures: the same SQLite/PostgreSQL fixtures as the unit suite (PostgreSQL is a real
throwaway cluster on loopback; these tests need no Fabric network)."""

from tests.unit.backend.dbfixtures import database_url, engine, new_database_url, new_engine, postgres_cluster

__all__ = ["database_url", "engine", "new_database_url", "new_engine", "postgres_cluster"]
