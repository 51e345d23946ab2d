"""Reading the DuckDB file without getting in the writer's way, and the pool that owns writing.

DuckDB lets one process write a file, and no other process open it meanwhile, not even to read.
Every step that opens the file in a run (the loads and the checks) is in `DUCKDB_POOL`, limited to
one slot in dagster.yaml, so runs take turns instead of failing on the lock. Sensors run outside
runs: they open the file read-only for a moment and skip their tick while a writer holds it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt
import duckdb

from messaging_assets.pipeline import database_path
from messaging_assets.source import SOURCE_NAME

DUCKDB_POOL = "messaging_duckdb"


LOCK_TIMEOUT_KEY = "destination.duckdb.lock_timeout"
DEFAULT_LOCK_TIMEOUT = 30.0


class DuckDBLocked(RuntimeError):
    pass


@contextmanager
def writable(path: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection once no other process holds the file (a dlt load, a user's DuckDB
    shell, a sensor reading), waiting DESTINATION__DUCKDB__LOCK_TIMEOUT seconds at most."""
    path = path or database_path()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    timeout = float(dlt.config.get(LOCK_TIMEOUT_KEY) or DEFAULT_LOCK_TIMEOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(path)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise DuckDBLocked(
                    f"The DuckDB file {path} is locked by another process and stayed locked for "
                    f"{timeout:.0f}s: {error}. Close that connection (a DuckDB shell, a notebook), "
                    "or wait longer with DESTINATION__DUCKDB__LOCK_TIMEOUT."
                ) from None
            time.sleep(0.25)
    try:
        yield con
    finally:
        con.close()


class WarehouseUnavailable(Exception):
    """The file cannot be read now; the message says why, for a sensor's skip reason."""


class WarehouseMissing(WarehouseUnavailable):
    """Nothing has been loaded yet."""


@contextmanager
def read_only(path: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit. Never creates the file."""
    path = path or database_path()
    if not os.path.exists(path):
        raise WarehouseMissing(f"DuckDB file {path} does not exist yet: nothing loaded so far.")
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.IOException as error:
        raise WarehouseUnavailable(
            f"DuckDB file {path} is held by a writer; trying again next tick. ({error})"
        ) from error
    try:
        yield con
    finally:
        con.close()


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SOURCE_NAME]
    ).fetchall()
    return {row[0] for row in rows}
