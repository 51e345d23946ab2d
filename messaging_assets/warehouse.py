"""Reading the DuckDB file without getting in the writer's way, and the pool that owns writing.

DuckDB lets one process write a file, and no other process open it meanwhile, not even to read.
Every step that opens the file in a run (the loads and the checks) is in `DUCKDB_POOL`, limited to
one slot in dagster.yaml, so runs take turns instead of failing on the lock. Sensors run outside
runs: they open the file read-only for a moment and skip their tick while a writer holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from messaging_assets.pipeline import database_path
from messaging_assets.source import SOURCE_NAME

DUCKDB_POOL = "messaging_duckdb"


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
