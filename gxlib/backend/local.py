"""``gx backend up|down|status``: the three backend services as local processes next to the devnet.

Each service (api, submitter, projector) runs ``gx serve <service>`` detached, with its pid, log and settings
under ``<devnet state>/backend/<service>/``. The database defaults to a SQLite file there unless
GX_BACKEND_DATABASE_URL names another (PostgreSQL in production); once the services run, a backend given no
database is the running services' (so `gx backend status` and the benches read the database the services write),
and a different one given explicitly is refused (:class:`BackendDatabaseMismatchError`). The API gets an admin
bearer token written to ``<devnet state>/backend/api-token`` (mode 0600) unless tokens are configured.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel

from gxlib.backend.db import make_engine, migrate
from gxlib.backend.dburl import redacted_database_url
from gxlib.backend.settings import ApiRole, BackendSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.errors import GxError
from gxlib.files import write_private
from gxlib.progress import Progress

SERVICES = ("api", "submitter", "projector")


class BackendUpError(GxError):
    """A backend service did not start; carries the end of its log."""


class BackendDatabaseMismatchError(GxError):
    """The backend's services run on another database than the one given."""

    def __init__(self, running: str, given: str) -> None:
        super().__init__(f"the backend runs on {redacted_database_url(running)}, not on the given "
                         f"{redacted_database_url(given)}",
                         hint="pass the database URL `gx backend up` was given (--database-url or "
                              "GX_BACKEND_DATABASE_URL), leave it out to use the running backend's, or run "
                              "`gx backend down` first to move the backend")
        self.running = running
        self.given = given


@dataclass(frozen=True)
class BackendService:
    name: str
    dir: Path
    host: str
    port: int
    health_path: str
    kind: str = ""  # the `gx serve` service it runs; default: its name (a replica has its own name)

    @property
    def service(self) -> str:
        return self.kind or self.name

    @property
    def log_file(self) -> Path:
        return self.dir / "service.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "service.pid"

    @property
    def marker(self) -> tuple[str, str]:
        return (processes.BACKEND_SERVICE_MARKER, str(self.dir))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def healthy(self) -> tuple[bool, str | None]:
        try:
            response = httpx.get(self.url + self.health_path, timeout=2.0)
        except httpx.HTTPError as exc:
            return False, f"{self.url}{self.health_path} unreachable: {exc.__class__.__name__}"
        return response.status_code == 200, None if response.status_code == 200 else f"HTTP {response.status_code}"


class ServiceStatus(BaseModel):
    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str | None
    log_file: str


class BackendStatus(BaseModel):
    """What `gx backend status` shows; ``database_url`` has its password redacted (``***``)."""

    database_url: str
    token_file: str | None
    services: list[ServiceStatus]

    @property
    def all_healthy(self) -> bool:
        return all(s.healthy for s in self.services)


API_TOKEN_FILE = "api-token"


def devnet_api_token_file(devnet_state_dir: Path) -> Path:
    """Where `gx backend up` keeps the generated admin token of the devnet in ``devnet_state_dir``."""
    return devnet_state_dir.expanduser().resolve() / "backend" / API_TOKEN_FILE


class LocalBackend:
    """The backend of one devnet, run as local processes."""

    def __init__(self, devnet: Devnet, settings: BackendSettings | None = None,
                 progress: Progress | None = None, *, root: Path | None = None) -> None:
        self.devnet = devnet
        # Everything of this backend (pids, logs, the SQLite file, the token) lives here; inside the devnet's
        # state directory by default, so `gx devnet down --purge` removes it too.
        self.root = root or devnet.layout.root / "backend"
        settings = settings or BackendSettings()
        self.progress = progress or devnet.progress
        host = settings.api_host
        self.services = [
            BackendService("api", self.root / "api", host, settings.api_port, "/healthz"),
            BackendService("submitter", self.root / "submitter", settings.metrics_host,
                           settings.submitter_metrics_port, "/metrics"),
            BackendService("projector", self.root / "projector", settings.metrics_host,
                           settings.projector_metrics_port, "/metrics"),
        ]
        # Given no database: the running services' one, else the SQLite file beside them.
        if "database_url" not in settings.model_fields_set:
            url = self.running_database_url() or f"sqlite:///{self.root / 'gx-backend.sqlite3'}"
            settings = settings.model_copy(update={"database_url": url})
        self.settings = settings

    @property
    def token_file(self) -> Path:
        return self.root / API_TOKEN_FILE

    def api_tokens(self) -> dict[str, ApiRole]:
        """The configured tokens, or one generated admin token kept in ``token_file``."""
        if self.settings.api_tokens:
            return dict(self.settings.api_tokens)
        if not self.token_file.exists():
            write_private(self.token_file, secrets.token_urlsafe(32) + "\n")
        return {self.token_file.read_text().strip(): ApiRole.ADMIN}

    def _environment(self, service: BackendService) -> dict[str, str]:
        s = self.settings
        return {
            processes.BACKEND_SERVICE_MARKER: str(service.dir),
            "GX_DEVNET_STATE_DIR": str(self.devnet.layout.root),
            "GX_BACKEND_DATABASE_URL": s.database_url,
            "GX_BACKEND_MIGRATE_ON_START": "false",
            "GX_BACKEND_API_HOST": s.api_host,
            "GX_BACKEND_API_PORT": str(s.api_port),
            "GX_BACKEND_METRICS_HOST": s.metrics_host,
            "GX_BACKEND_SUBMITTER_METRICS_PORT": str(service.port if service.service == "submitter"
                                                     else s.submitter_metrics_port),
            "GX_BACKEND_PROJECTOR_METRICS_PORT": str(s.projector_metrics_port),
            "GX_BACKEND_API_TOKENS": json.dumps({k: v.value for k, v in self.api_tokens().items()}),
            "GX_BACKEND_LOG_LEVEL": s.log_level,
            "GX_BACKEND_DB_POOL_SIZE": str(s.db_pool_size),
            "GX_BACKEND_DB_MAX_OVERFLOW": str(s.db_max_overflow),
            "GX_BACKEND_SUBMITTER": s.submitter.model_dump_json(exclude_none=True),
            "GX_BACKEND_PROJECTOR": s.projector.model_dump_json(),
            "PYTHONUNBUFFERED": "1",
        }

    def up(self) -> list[str]:
        """Start the services that are not running (migrating the database first). Returns those started."""
        self.require_running_database()
        if not self.devnet.status().all_healthy:
            raise BackendUpError(f"the devnet in {self.devnet.layout.root} is not up", hint="run `gx devnet up`")
        self.root.mkdir(parents=True, exist_ok=True)
        with self.progress.task("database schema (migrations)"):
            engine = make_engine(self.settings.database_url)
            try:
                migrate(engine)
            finally:
                engine.dispose()
        started = []
        for service in self.services:
            if processes.running_pid(service):
                continue
            self._start(service)
            started.append(service.name)
        for service in self.services:
            self._wait_healthy(service)
        return started

    def _start(self, service: BackendService) -> int:
        if not processes.port_is_free(service.host, service.port):
            raise BackendUpError(f"port {service.port} on {service.host} ({service.name}) is already in use",
                                 hint="stop what listens there or change GX_BACKEND_*_PORT")
        service.dir.mkdir(parents=True, exist_ok=True)
        return processes.start_node(service, [sys.executable, "-m", "gxlib.cli", "serve", service.service],
                                    self._environment(service))

    def submitter_replica(self, number: int, metrics_port: int) -> BackendService:
        """Another submitter process on the same database (``submitter-<number>``, its own directory and metrics
        port); start it with :meth:`start_extra` and stop it with ``processes.stop_node``."""
        return BackendService(f"submitter-{number}", self.root / f"submitter-{number}", self.settings.metrics_host,
                              metrics_port, "/metrics", kind="submitter")

    def start_extra(self, service: BackendService) -> int:
        """Start a service that is not one of the three (e.g. a :meth:`submitter_replica`) and wait until it is
        healthy; returns its pid."""
        pid = processes.running_pid(service) or self._start(service)
        self._wait_healthy(service)
        return pid

    def _wait_healthy(self, service: BackendService) -> None:
        def probe() -> tuple[bool, str | None]:
            if processes.has_exited(service):
                raise BackendUpError(f"{service.name} exited during start-up; last lines of {service.log_file}:\n"
                                     f"{processes.log_tail(service, 30)}")
            return service.healthy()

        self.progress.wait_until(f"backend {service.name} at {service.url}{service.health_path}", probe,
                                 timeout_s=60)

    def down(self) -> dict[str, list[int]]:
        """SIGTERM every service (they drain), SIGKILL after 20 s."""
        return {s.name: pids for s in self.services if (pids := processes.stop_node(s, timeout_s=20))}

    def status(self) -> BackendStatus:
        states = []
        for service in self.services:
            pid = processes.running_pid(service)
            healthy, detail = service.healthy() if pid else (False, "not running")
            states.append(ServiceStatus(name=service.name, url=service.url, pid=pid, running=pid is not None,
                                        healthy=healthy, detail=detail, log_file=str(service.log_file)))
        token = str(self.token_file) if self.token_file.exists() else None
        database_url = self.running_database_url() or self.settings.database_url  # what the services write
        return BackendStatus(database_url=redacted_database_url(database_url), token_file=token,
                             services=states)

    def running_database_url(self) -> str | None:
        """The database URL the running services were started with (their ``GX_BACKEND_DATABASE_URL``, as `gx
        backend up` gave it, the first running service's), or None when none runs."""
        for service in self.services:
            pid = processes.running_pid(service)
            if pid is not None and (url := processes.env_value(pid, "GX_BACKEND_DATABASE_URL")) is not None:
                return url
        return None

    def require_running_database(self) -> None:
        """Refuse (:class:`BackendDatabaseMismatchError`) when services run on another database than this
        backend's: starting the rest, or reading this one, would split the backend in two."""
        running = self.running_database_url()
        if running is not None and running != self.settings.database_url:
            raise BackendDatabaseMismatchError(running, self.settings.database_url)

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait until the outbox has nothing pending or in flight (for tests and runbooks)."""
        from gxlib.backend.outbox import Outbox

        engine = make_engine(self.settings.database_url)
        try:
            outbox = Outbox(engine)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                counts = outbox.counts()
                if not counts.get("PENDING") and not counts.get("PROCESSING"):
                    return
                time.sleep(0.2)
        finally:
            engine.dispose()
