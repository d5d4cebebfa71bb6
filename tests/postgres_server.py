"""A throw-away PostgreSQL server for the tests: Debian's ``postgresql``
binaries, a fresh data directory under the system temporary directory,
listening on 127.0.0.1 only, with trust authentication for its own
superuser.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the
server runs as the ``postgres`` account the Debian package creates, and its
directory is handed to that account.  ``.ci/run`` installs the package when
it is missing; elsewhere a machine without it skips the tests that need it.
"""

from __future__ import annotations

__all__ = ("PostgresServer", "find_postgres_bin")

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

SERVICE_ACCOUNT = "postgres"
"""Account the server runs as when the tests run as root."""


def find_postgres_bin() -> Path | None:
    """Directory of the PostgreSQL server programs (``initdb``, ``pg_ctl``),
    newest installed major version first, or `None` if there is none."""
    on_path = shutil.which("initdb") or shutil.which("pg_ctl")
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """Start a private PostgreSQL server; `stop` removes it and its data.

    Parameters
    ----------
    bin_dir : `pathlib.Path`
        Directory of ``initdb`` and ``pg_ctl`` (`find_postgres_bin`).
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="obs_vista_pg_"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = SERVICE_ACCOUNT if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVICE_ACCOUNT)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._server(
            "initdb", "-D", self.data, "-U", self.user, "--auth=trust", "--encoding=UTF8", "--no-sync"
        )
        # fsync off: the data directory is thrown away, durability buys nothing here.
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._server("pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-o", options, "-w", "start")

    def _server(self, program: str, *args: str | Path) -> None:
        command = [str(self.bin_dir / program), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_ACCOUNT, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(
                f"{program} failed: {result.stderr.strip()}"
                + (f"\n{log.read_text()[-2000:]}" if log.exists() else "")
            )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database of this server, as a butler
        registry's ``db`` setting."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database with the ``btree_gist`` extension daf_butler's
        PostgreSQL registry needs; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as db:
            db.execute("CREATE EXTENSION btree_gist")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        try:
            self._server("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
