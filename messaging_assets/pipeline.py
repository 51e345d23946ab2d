"""The dlt pipeline every asset loads through: DuckDB by default, dataset `messaging`."""

from __future__ import annotations

from pathlib import Path

import dlt
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.source import SOURCE_NAME

# Not named after the dataset: DuckDB names the file's catalog after its stem, and
# `messaging.<table>` would be ambiguous between that catalog and the schema.
DEFAULT_DATABASE = "data/messaging_assets.duckdb"


def database_path() -> str:
    return dlt.secrets.get("destination.duckdb.credentials") or DEFAULT_DATABASE


def messaging_pipeline() -> Pipeline:
    """Built per run, so that DESTINATION__DUCKDB__CREDENTIALS (or `[destination.duckdb]
    credentials` in .dlt/secrets.toml) set after start-up still decides where data lands.
    To outgrow one machine, change `destination` here to a warehouse; the assets stay as they are.
    """
    database = database_path()
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=SOURCE_NAME,
        destination=dlt.destinations.duckdb(credentials=database),
        dataset_name=SOURCE_NAME,
    )
