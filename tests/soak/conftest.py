"""A throwaway PostgreSQL cluster the soak test starts, stops (an outage) and starts again.

Never the shared server on 5432: ``initdb`` makes a cluster of its own in a fresh
directory, served on a free port on 127.0.0.1 and a socket directory of its own,
with trust authentication for ``postgres``. ``initdb`` refuses to run as root,
so as root (CI) every server command runs as the ``postgres`` user
(``runuser``), in a directory that user owns. Teardown always stops the server
and removes the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import require

#: The PostgreSQL server binaries (Debian's postgresql-15 package).
PG_BIN = Path(os.environ.get("SOC_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: Seconds pg_ctl waits for the server to start or stop.
PG_WAIT_SECONDS = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayPostgres:
    """One PostgreSQL cluster in ``root``: ``start``, ``stop`` (an outage), ``start`` again."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        #: Outages so far (``stop`` calls after the first start).
        self.stops = 0

    @property
    def url(self) -> str:
        """The store URL of the cluster's ``postgres`` database (trust auth, no password)."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> str:
        command = [str(PG_BIN / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=PG_WAIT_SECONDS + 30,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\nserver log:\n{self.log_tail()}"
            )
        return result.stdout

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log (for failure messages)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no server log: {exc.strerror})"
        return "\n".join(text.splitlines()[-lines:])

    def init(self) -> None:
        """Create the cluster (as ``postgres`` when running as root)."""
        self.sockets.mkdir()
        if self.as_postgres:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",  # a throwaway cluster: it never has to survive a machine crash
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-k {self.sockets} -p {self.port} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(PG_WAIT_SECONDS),
            "-o",
            options,
            "start",
        )
        engine = sa.create_engine(self.url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are disconnected at once)."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_WAIT_SECONDS), "stop"
        )
        self.stops += 1

    @property
    def running(self) -> bool:
        """True while the server's postmaster runs."""
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, timeout=30, check=False
        )
        return result.returncode == 0


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started throwaway PostgreSQL cluster; always stopped and removed afterwards."""
    require(
        (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file(),
        f"PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql-15; "
        "or set SOC_TEST_PG_BIN)",
    )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            require(False, "a 'postgres' user to run initdb as (root may not)")
        require(
            shutil.which("runuser") is not None, "runuser (util-linux), to run initdb as postgres"
        )
    # Not under pytest's tmp_path: as root that is private (0700) to root, and the
    # server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="soc-soak-pg-"))
    cluster = ThrowawayPostgres(root, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.data.is_dir() and cluster.running:
                cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
