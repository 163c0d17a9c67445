"""Typed settings of the backend services (``GX_BACKEND_*``; nested with ``__``).

``GX_BACKEND_DATABASE_URL=postgresql+psycopg://gx@127.0.0.1:5432/gx`` selects PostgreSQL; the default is a
SQLite file in the user's state directory. ``GX_BACKEND_API_TOKENS='{"<token>": "admin"}'`` maps bearer
tokens to roles.

Secrets may come as files instead (a Kubernetes Secret mounted as a volume keeps them out of the process
environment): ``GX_BACKEND_SECRETS_DIR`` names a directory whose files are named like the variables
(``GX_BACKEND_DATABASE_URL``, ``GX_BACKEND_API_TOKENS``). A variable set in the environment wins over a file.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

from gxlib.config import APP_NAME, DEFAULT_BACKEND_PORTS

SECRETS_DIR_VARIABLE = "GX_BACKEND_SECRETS_DIR"


class ApiRole(StrEnum):
    """Roles a bearer token can carry. ``admin`` ⊃ ``operator`` ⊃ ``reader``."""

    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"

    def includes(self, other: ApiRole) -> bool:
        order = (ApiRole.READER, ApiRole.OPERATOR, ApiRole.ADMIN)
        return order.index(self) >= order.index(other)


def default_database_url() -> str:
    return f"sqlite:///{Path(platformdirs.user_state_dir(APP_NAME)) / 'backend' / 'gx-backend.sqlite3'}"


class SubmitterSettings(BaseModel):
    batch_size: int = Field(default=50, ge=1, le=10_000)
    max_in_flight: int = Field(default=64, ge=1, le=10_000, description="transactions in flight at once")
    lease_s: float = Field(default=60.0, gt=0, description="a claimed command's lease; expired leases are reclaimed")
    poll_interval_s: float = Field(default=0.2, gt=0)
    listen_for_commands: bool = Field(default=True, description="on PostgreSQL, claim as soon as a command is "
                                      "enqueued (LISTEN/NOTIFY) instead of at the next poll")
    arrival_coalesce_s: float = Field(default=0.1, ge=0, description="an enqueued command is claimed at once when "
                                      "no claim found commands in this long, else by the next claim, at the latest "
                                      "this long after the previous one (a claim costs 0.5-1.7 ms of CPU)")
    max_attempts: int = Field(default=10, ge=1)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    commit_timeout_s: float = Field(default=30.0, gt=0, description="wait this long for a submitted tx to commit")
    status_timeout_s: float = Field(default=5.0, gt=0, description="status-by-ID check of a reclaimed command's tx")
    gauge_interval_s: float = Field(default=5.0, gt=0, description="refresh the outbox gauges this often")
    mvcc_retry_delay_s: float = Field(default=0.05, ge=0, description="pause before a new tx after an MVCC conflict")
    contention_backoff_max_s: float = Field(default=2.0, gt=0, description="cap of the pause after repeated "
                                            "MVCC conflicts (they spend no attempts; the pause grows instead)")
    breaker_failure_threshold: int = Field(default=5, ge=1, description="consecutive transport failures to open")
    breaker_cooldown_s: float = Field(default=10.0, gt=0, description="open → half-open after this long")
    worker_id: str | None = Field(default=None, description="lease owner name; default host:pid")


class ProjectorSettings(BaseModel):
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=200, ge=1, le=10_000,
                            description="most events applied in one database transaction (with one checkpoint) "
                                        "when several have arrived")


class BackendSettings(BaseSettings):
    """Settings of the API, submitter and projector processes (``GX_BACKEND_*``)."""

    model_config = SettingsConfigDict(env_prefix="GX_BACKEND_", env_nested_delimiter="__", extra="ignore")

    # repr=False: the URL may carry the database password and the tokens are secrets; neither belongs in a log.
    database_url: str = Field(default_factory=default_database_url, repr=False)
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=5, ge=0, le=1000)
    migrate_on_start: bool = True
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=DEFAULT_BACKEND_PORTS.api, ge=1, le=65535)
    api_tokens: dict[str, ApiRole] = Field(default_factory=dict, description="bearer token → role", repr=False)
    max_body_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    api_read_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                      description="a client must send a whole request (headers and body) within "
                                                  "this long, else 408 and the connection is closed")
    api_max_head_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024,
                                    description="request line and headers at most; more is answered 431 and the "
                                                "connection closed")
    api_max_connections: int = Field(default=512, ge=1, le=100_000,
                                     description="open connections at most; one more is answered 503 and closed")
    api_keep_alive_s: int = Field(default=5, ge=1, le=600, description="idle seconds allowed between requests")
    service_name: str = "gx-backend-api"
    metrics_host: str = "127.0.0.1"
    submitter_metrics_port: int = Field(default=DEFAULT_BACKEND_PORTS.submitter_metrics, ge=1, le=65535)
    projector_metrics_port: int = Field(default=DEFAULT_BACKEND_PORTS.projector_metrics, ge=1, le=65535)
    log_level: str = "INFO"
    fabric_network_file: Path | None = Field(
        default=None, description="the network.json of the Fabric client bundle (a pod's Secret "
        "backend-fabric-client); unset: the local devnet's state directory (GX_DEVNET_*)")
    submitter: SubmitterSettings = SubmitterSettings()
    projector: ProjectorSettings = ProjectorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if not secrets_dir:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        return (init_settings, env_settings, dotenv_settings,
                SecretsSettingsSource(settings_cls, secrets_dir=Path(secrets_dir)))
