"""The dlt pipeline every asset loads through, and where it keeps its working files.

The destination is dlt's own setting, `DESTINATION_TYPE` (default `duckdb`: the file
`data/messaging_assets.duckdb`, or `DESTINATION__DUCKDB__CREDENTIALS`), with credentials the dlt
way (`DESTINATION__POSTGRES__CREDENTIALS=postgresql://...`). Everything is read per run, so a
changed setting counts from the next run on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.registry import SOURCE

# Not named after the dataset: DuckDB names the file's catalog after its stem, and
# `messaging.<table>` would be ambiguous between that catalog and the schema.
DEFAULT_DATABASE = "data/messaging_assets.duckdb"
# dlt's working files (load packages of runs that did not finish), kept next to the default
# DuckDB file rather than in ~/.dlt, so that two checkouts never finish each other's loads.
DEFAULT_PIPELINES_DIR = "data/pipelines"


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
    if destination_type() != "duckdb":
        return destination_type()
    database = database_path()
    if not read_only:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return dlt.destinations.duckdb(credentials=DuckDbCredentials(database, read_only=read_only))


def messaging_pipeline(workdir: Path | None = None, read_only: bool = False) -> Pipeline:
    """The pipeline, its working files in `workdir` (a run's own directory; see runs.py)."""
    return dlt.pipeline(
        pipeline_name=SOURCE,
        destination=destination(read_only),
        dataset_name=SOURCE,
        pipelines_dir=str(workdir or pipelines_dir()),
    )
