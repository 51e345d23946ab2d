"""The dlt pipeline every asset loads through, and where it keeps its working files.

The destination is dlt's own setting, `DESTINATION_TYPE` (default `duckdb`: the file
`data/messaging_assets.duckdb`, or `DESTINATION__DUCKDB__CREDENTIALS`), with credentials the dlt
way (`DESTINATION__POSTGRES__CREDENTIALS=postgresql://...`). Everything is read per run, so a
changed setting counts from the next run on.

On PostgreSQL every connection dlt opens for the project (loads, merges, the project's own SQL)
asks for the `work_mem` of POSTGRES_WORK_MEM below, unless the credentials carry `options` of their
own (a user's way to choose another value):
dlt's scd2 merge finds retired rows with `NOT IN (SELECT ...)`, which PostgreSQL only runs as a
hash lookup while the hashed row versions fit in work_mem (times `hash_mem_multiplier`); past
that, every row is compared with every row: re-running a list of 200,000 contacts had not
finished after 16 minutes at PostgreSQL's default of 4MB, and took 2.4 s at 64MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.registry import SOURCE

# Not named after the dataset: DuckDB names the file's catalog after its stem, and
# `messaging.<table>` would be ambiguous between that catalog and the schema.
DEFAULT_DATABASE = "data/messaging_assets.duckdb"
# dlt's working files (load packages of runs that did not finish), kept next to the default
# DuckDB file rather than in ~/.dlt, so that two checkouts never finish each other's loads.
DEFAULT_PIPELINES_DIR = "data/pipelines"
# Enough to hash the row versions of lists of about 1.8 million rows (about 70 bytes per row in
# PostgreSQL's estimate, against work_mem x hash_mem_multiplier, 2 by default). Written without a
# space: dlt hands the credentials to the ADBC driver as a URL in which a space becomes `+`, which
# PostgreSQL then refuses, and for the same reason it is not added to options a user set.
POSTGRES_WORK_MEM = "-cwork_mem=64MB"


def destination_type() -> str:
    return str(dlt.config.get("destination_type") or "duckdb")


def database_path() -> str:
    """The DuckDB file (DESTINATION__DUCKDB__CREDENTIALS, or `[destination.duckdb] credentials`
    in .dlt/secrets.toml)."""
    return str(dlt.secrets.get("destination.duckdb.credentials") or DEFAULT_DATABASE)


def pipelines_dir() -> Path:
    return Path(dlt.config.get("pipelines_dir") or DEFAULT_PIPELINES_DIR)


def destination(read_only: bool = False) -> Any:
    """The configured destination; DuckDB opened read-only for readers that must not block a
    writer's next open."""
    if destination_type() == "postgres":
        return postgres_destination()
    if destination_type() != "duckdb":
        return destination_type()
    database = database_path()
    if not read_only:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(credentials=DuckDbCredentials(database, read_only=read_only))


def postgres_destination() -> Any:
    """PostgreSQL with the credentials dlt resolves, asking for POSTGRES_WORK_MEM unless they
    carry `options` of their own. Credentials that do not resolve are left for dlt to report
    when a run connects."""
    factory = dlt.destinations.postgres()
    credentials = factory.configuration(None, accept_partial=True).credentials
    if not isinstance(credentials, PostgresCredentials) or not credentials.is_resolved():
        return factory
    query = credentials.query or {}
    if "options" not in query:
        credentials.query = {**query, "options": POSTGRES_WORK_MEM}
    return dlt.destinations.postgres(credentials=credentials)


def messaging_pipeline(workdir: Path | None = None, read_only: bool = False) -> Pipeline:
    """The pipeline, its working files in `workdir` (a run's own: see run_directories.py)."""
    return dlt.pipeline(
        pipeline_name=SOURCE,
        destination=destination(read_only),
        dataset_name=SOURCE,
        pipelines_dir=str(workdir or pipelines_dir()),
    )
