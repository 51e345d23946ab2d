"""The dlt pipeline every asset loads through: DuckDB by default, dataset `messaging`."""

from __future__ import annotations

import dlt
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.source import SOURCE_NAME


def messaging_pipeline() -> Pipeline:
    # The destination's credentials (the DuckDB file) resolve when a run loads, from
    # DESTINATION__DUCKDB__CREDENTIALS or .dlt/config.toml, so that the same code can point at
    # a warehouse by configuration alone.
    return dlt.pipeline(pipeline_name=SOURCE_NAME, destination="duckdb", dataset_name=SOURCE_NAME)
