"""A throwaway PostgreSQL cluster on loopback, for tests and the local profile.

Uses Debian's server binaries (``/usr/lib/postgresql/<version>/bin``): ``initdb`` into a directory, ``pg_ctl``
to start it on 127.0.0.1 with its unix socket in the same directory, and ``stop`` removes nothing but the
process. PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user (then
``root`` must be reachable by that user: a directory of its own under /tmp, not one inside a 0700 tree).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from gxlib.backend.errors import BackendError


class PostgresUnavailableError(BackendError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot start a PostgreSQL cluster: {reason}",
                         hint="install Debian's postgresql: scripts/ensure-system-packages scripts/system-packages.txt")


def postgres_bin_dir() -> Path:
    """The newest installed server's bin directory."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not candidates:
        raise PostgresUnavailableError("no /usr/lib/postgresql/*/bin/initdb")
    return candidates[-1].parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """One cluster in ``root`` (data in ``root/data``, socket and log beside it)."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = "gx"
    bin_dir: Path = field(default_factory=postgres_bin_dir)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self._os_user(), "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PostgresUnavailableError(f"{' '.join(args[:2])} exited {result.returncode}: "
                                           f"{result.stderr.strip() or result.stdout.strip()}\n{log}")
        return result

    @staticmethod
    def _os_user() -> str:
        try:
            return pwd.getpwnam("postgres").pw_name
        except KeyError:
            raise PostgresUnavailableError("running as root and there is no 'postgres' system user") from None

    def start(self) -> PostgresCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(self._os_user())
            shutil.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.root.chmod(0o700)
            # The postgres user must be able to reach the directory.
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--no-locale")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60",
                  "start")
        return self

    def stop(self) -> None:
        """Fast shutdown; if pg_ctl cannot do it, signal the postmaster named in postmaster.pid directly."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")
        except PostgresUnavailableError:
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGINT)
            raise

    def create_database(self, name: str) -> str:
        """Create database ``name`` (over TCP on loopback); returns its SQLAlchemy URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r} must be letters, digits and underscores")
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)
