"""The one way to read and write the warehouse: dlt's own client for the configured destination.

Checks, status polling and sensors, the send journal, the delivery summary and the report all go
through `connect` (a step in a run) or `read` (a sensor between runs), so they work on any dlt SQL
destination. What is DuckDB's alone lives here too: one process writes the file at a time, so a
writer waits (bounded) for the lock, and a reader opens the file read-only and gives up at once
while a writer holds it.
"""

from __future__ import annotations

import fcntl
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.client import JobClientBase
from dlt.destinations.exceptions import DestinationConnectionError
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.warehouse import sql
from messaging_assets.warehouse.destination import (
    database_path,
    destination_type,
    messaging_pipeline,
)

LOCK_TIMEOUT_KEY = "destination.duckdb.lock_timeout"
DEFAULT_LOCK_TIMEOUT = 30.0


class WarehouseUnavailable(Exception):
    """The warehouse cannot be read now; the message says why (a sensor's skip reason)."""


class WarehouseMissing(WarehouseUnavailable):
    """Nothing has been loaded yet."""


class DuckDBLocked(RuntimeError):
    pass


class Connection:
    """An open connection to the dataset."""

    def __init__(self, job_client: JobClientBase) -> None:
        self._job = job_client
        self.client = job_client.sql_client  # type: ignore[attr-defined]
        self.dialect = self.client.capabilities.sqlglot_dialect

    def location(self) -> str:
        """Where the dataset is, as dlt tells it: the DuckDB file, or host:port/database."""
        return str(self._job.config.data_location())

    def table(self, name: str) -> str:
        return self.client.make_qualified_table_name(name)

    def column(self, name: str) -> str:
        """A column's name quoted for SQL: `from` and `to` are columns of messages."""
        return str(self.client.escape_column_name(name))

    def tables(self) -> list[str]:
        """The names of the dataset's tables, in order."""
        return [
            name
            for (name,) in self.rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY 1",
                self.client.dataset_name,
            )
        ]

    def translated(self, statement: str) -> str:
        """A statement written in DuckDB's dialect, in this destination's."""
        return sql.translate(statement, self.dialect)

    def rows(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a statement in standard SQL, `%s` marking its arguments."""
        found = self.client.execute_sql(statement, *args)
        return [tuple(row) for row in found or ()]

    def scalar(self, statement: str, *args: Any) -> Any:
        return self.rows(statement, *args)[0][0]

    def execute(self, statement: str, *args: Any) -> None:
        self.client.execute_sql(statement, *args)

    def column_schemas(self, tables: Iterable[str]) -> dict[str, dict[str, Any]]:
        """dlt's description of every column of each table that exists."""
        storage = self._job.get_storage_tables(list(tables))  # type: ignore[attr-defined]
        return {table: dict(found) for table, found in storage if found}

    def columns(self, tables: Iterable[str]) -> dict[str, dict[str, str]]:
        """The data type (dlt's name) of every column of each table that exists."""
        return {
            table: {name: str(column.get("data_type")) for name, column in found.items()}
            for table, found in self.column_schemas(tables).items()
        }

    def ensure_dataset(self) -> None:
        if not self.client.has_dataset():
            self.client.create_dataset()

    def has_table(self, table: str) -> bool:
        return bool(self.columns([table]))

    def current_row_count(self, table: str) -> int:
        """Rows a user sees as current (0 while the table does not exist)."""
        found = self.columns([table]).get(table)
        if found is None:
            return 0
        where = sql.current_rows(sql.VALID_TO in found)
        return int(self.scalar(f"SELECT count(*) FROM {self.table(table)} WHERE {where}"))

    @contextmanager
    def staging(self) -> Iterator[None]:
        """Table names and storage look-ups point at dlt's staging dataset meanwhile."""
        with self.client.with_staging_dataset():
            yield

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.client.begin_transaction():
            yield


@contextmanager
def one_writer() -> Iterator[None]:
    """On DuckDB, one step of this project writes the file at a time, across processes and
    Dagster instances: the writers' pool orders the steps of one instance, this lock file next to
    the database those of separate ones (two CLI runs, each with its own DAGSTER_HOME). A step
    takes it for its whole length, so another waits its turn instead of failing on the file's
    lock mid-way."""
    if destination_type() != "duckdb":
        yield
        return
    path = Path(database_path() + ".writers.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def connect(pipeline: Pipeline | None = None) -> Iterator[Connection]:
    """A read-write connection. On DuckDB it waits, up to DESTINATION__DUCKDB__LOCK_TIMEOUT
    seconds, for another process (a load, a DuckDB shell, a sensor) to let go of the file."""
    if pipeline is None:
        with _scratch_pipeline() as scratch, connect(scratch) as connection:
            yield connection
        return
    timeout = float(dlt.config.get(LOCK_TIMEOUT_KEY) or DEFAULT_LOCK_TIMEOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            job_client = _open(pipeline)
            break
        except Exception as error:
            if not _is_lock(error):
                raise
            if time.monotonic() >= deadline:
                raise DuckDBLocked(
                    f"The DuckDB file {database_path()} is locked by another process and stayed "
                    f"locked for {timeout:.0f}s: {_reason(error).rstrip('.')}. Close that "
                    "connection (a DuckDB shell, a notebook), or wait longer with "
                    "DESTINATION__DUCKDB__LOCK_TIMEOUT."
                ) from None
            time.sleep(0.25)
    with _closing(job_client) as connection:
        yield connection


@contextmanager
def read() -> Iterator[Connection]:
    """A connection for a reader between runs (a sensor, the report): on DuckDB read-only, and
    never waiting for, nor creating, the file."""
    if destination_type() == "duckdb" and not Path(database_path()).exists():
        raise WarehouseMissing(
            f"DuckDB file {database_path()} does not exist yet: nothing loaded so far."
        )
    with _scratch_pipeline(read_only=True) as pipeline:
        try:
            job_client = _open(pipeline)
        except Exception as error:
            if _is_lock(error):
                raise WarehouseUnavailable(
                    f"DuckDB file {database_path()} is held by a writer; trying again next tick. "
                    f"({_reason(error)})"
                ) from error
            raise
        with _closing(job_client) as connection:
            yield connection


def _open(pipeline: Pipeline) -> JobClientBase:
    job_client = pipeline.destination_client()
    job_client.sql_client.open_connection()  # type: ignore[attr-defined]
    return job_client


@contextmanager
def _closing(job_client: JobClientBase) -> Iterator[Connection]:
    try:
        yield Connection(job_client)
    finally:
        job_client.sql_client.close_connection()  # type: ignore[attr-defined]


def _is_lock(error: BaseException) -> bool:
    return destination_type() == "duckdb" and "lock" in str(error).lower()


def _reason(error: BaseException) -> str:
    """DuckDB's own words for a failed open (the file, and the holder's PID), without the hint
    dlt puts before them on any failed connection: that the credentials may be wrong or the
    internet down, neither of which holds for a locked file."""
    if isinstance(error, DestinationConnectionError) and error.inner_exc is not None:
        return str(error.inner_exc)
    return str(error)


@contextmanager
def _scratch_pipeline(read_only: bool = False) -> Iterator[Pipeline]:
    """A pipeline used only for its client, its working files thrown away: readers in several
    processes at once never share them, nor touch a run's."""
    with tempfile.TemporaryDirectory(prefix="messaging-reader-") as workdir:
        yield messaging_pipeline(Path(workdir), read_only=read_only)
