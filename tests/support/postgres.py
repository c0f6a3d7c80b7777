"""A throwaway PostgreSQL cluster on loopback, for the shared-store tests.

    with Postgres.start(tmp) as pg:
        url = pg.create_database("team")      # postgresql://postgres@127.0.0.1:PORT/team
        pg.stop(); pg.start_again()            # the database going away and coming back

Debian's `postgresql` package provides the binaries (scripts/setup installs it).
`initdb` refuses to run as root, so as root the cluster belongs to the
`postgres` user (`runuser`); as anyone else, to that user. Trust
authentication on 127.0.0.1 only, fsync off: a test cluster, nothing more.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    bin: Path
    data: Path
    port: int
    as_user: list[str]

    @classmethod
    def start(cls, root: Path) -> Postgres:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: run `bash scripts/setup` (it installs `postgresql`)")
        as_user: list[str] = []
        if os.geteuid() == 0:
            # The postgres user must reach the directory: not inside pytest's 0700 temporary tree.
            as_user = ["runuser", "-u", "postgres", "--"]
            root = Path(tempfile.mkdtemp(prefix="authsome-pg-"))
            root.chmod(0o755)
            shutil.chown(root, "postgres", "postgres")
        data = root / "pgdata"
        pg = cls(bin_dir, data, _free_port(), as_user)
        pg._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        pg.start_again()
        return pg

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stdout}{proc.stderr}")

    def start_again(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.data} "
                   "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-l", str(self.data / "log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> str:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, database: str) -> str:
        proc = subprocess.run([str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "--data-only", database], capture_output=True, text=True, timeout=60, check=True)
        return proc.stdout

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.data.parent, ignore_errors=True)
