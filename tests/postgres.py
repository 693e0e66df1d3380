"""A real PostgreSQL server for the tests: an unprivileged cluster in a temporary folder,
listening on a free loopback port (its socket in that folder too), stopped at the end.

PostgreSQL refuses to run as root: when the tests run as root (CI, this machine), the cluster
belongs to the unprivileged user `nobody` and its programs run through `runuser`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voxloop_bench import free_port

# Debian keeps the server programs out of PATH (pg_ctlcluster wraps them); look there too.
SEARCH_PATHS = [*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
UNPRIVILEGED_USER = "nobody"
SUPERUSER, PASSWORD = "voxloop", "not-a-secret"
START_SECONDS = 60


def find_program(name: str) -> str | None:
    """The path of a PostgreSQL server program (initdb, pg_ctl), or None if not installed."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH_PATHS:
        if (folder / name).exists():
            return str(folder / name)
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if not (find_program("initdb") and find_program("pg_ctl")):
        return "PostgreSQL's server programs are not installed (scripts/setup.sh --test does it)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: PostgreSQL cannot run as an unprivileged user"
    return None


class PostgresCluster:
    """One running cluster; `url(database)` names a database of it, `create_database` adds one."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data, self.log = folder / "data", folder / "server.log"
        self._numbers = itertools.count(1)

    def _run(self, *command: str, check: bool = True) -> int:
        """Run a server program as the cluster's owner; a failure shows its log."""
        as_owner = ["runuser", "-u", UNPRIVILEGED_USER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_owner, *command], capture_output=True, text=True)
        if check and done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {done.stderr}{done.stdout}\n{log[-2000:]}")
        return done.returncode

    def init(self) -> None:
        """Create the cluster: password logins over TCP, trust only on its private socket."""
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD)
        self._run(
            str(find_program("initdb")), "-D", str(self.data), "-U", SUPERUSER,
            f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder}"
        )
        self._run(
            str(find_program("pg_ctl")), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", str(START_SECONDS), "start",
        )  # fmt: skip

    def ensure_started(self) -> None:
        """Start the server unless it runs (after a test that stopped it, whatever happened)."""
        if self._run(str(find_program("pg_ctl")), "-D", str(self.data), "status", check=False):
            self.start()  # pg_ctl status: 3 when not running

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: 'fast' ends sessions cleanly, 'immediate' is like a crash."""
        self._run(str(find_program("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A connection URL for `database`, with a user and password as a deployment has."""
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"voxloop_test_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started cluster in a fresh temporary folder, stopped and removed at the end."""
    # Not under pytest's tmp_path: its folders are private to root, and the owner must reach it.
    folder = Path(tempfile.mkdtemp(prefix="voxloop-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, UNPRIVILEGED_USER)
    cluster = PostgresCluster(folder)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):  # not running: a failed start, or a test
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
