"""A throw-away PostgreSQL server for tests: Debian's initdb/pg_ctl in a temp dir, Unix socket only (no TCP)."""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

PG_USER = "cardsorter"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def start_server() -> Iterator[str]:
    """Yield a postgresql:// URL of a fresh server; skip (with the reason) where PostgreSQL is not installed."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed (requirements/runtime.txt)")
    prefix: list[str] = []
    root = pathlib.Path(tempfile.mkdtemp(prefix="cardsorter-pg-"))
    if os.geteuid() == 0:   # the server refuses to run as root: run it as Debian's postgres user
        runuser = shutil.which("runuser")
        try:
            import pwd

            pg = pwd.getpwnam("postgres")
        except KeyError:
            pg = None
        if runuser is None or pg is None:
            pytest.skip("running as root without a 'postgres' user and runuser: cannot start a PostgreSQL server")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data, sock = root / "data", root
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                        "--locale=C"], check=True, capture_output=True, text=True)
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
                        f"-c listen_addresses='' -k {sock} -c max_connections=40", "start"],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {err.stderr}{log[-2000:]}")
    try:
        yield f"postgresql://{PG_USER}@/postgres?host={sock}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], check=False,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
