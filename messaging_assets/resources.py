"""The dagster-dlt resource, with the metadata users look for after a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, MetadataValue, OpExecutionContext
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster_dlt import DagsterDltResource
from dlt.common.pipeline import LoadInfo
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.extract.resource import DltResource
from dlt.pipeline.pipeline import Pipeline

NOTHING_SENT = (
    "Nothing sent: set `to` and `from` in the run config (launchpad), or "
    "SOURCES__MESSAGING__SMS__TO and SOURCES__MESSAGING__SMS__FROM."
)


def current_row_count(pipeline: Pipeline, table: str) -> int:
    """Rows a user sees as current: all rows, less the retired versions of scd2 tables."""
    columns = pipeline.default_schema.tables.get(table, {}).get("columns", {})
    where = " WHERE _dlt_valid_to IS NULL" if "_dlt_valid_to" in columns else ""
    with pipeline.sql_client() as client:
        try:
            rows = client.execute_sql(
                f"SELECT count(*) FROM {client.make_qualified_table_name(table)}{where}"
            )
        except DatabaseUndefinedRelation:
            return 0
    return int(rows[0][0])


class MessagingDltResource(DagsterDltResource):
    def extract_resource_metadata(
        self,
        context: OpExecutionContext | AssetExecutionContext,
        resource: DltResource,
        load_info: LoadInfo,
        dlt_pipeline: Pipeline,
    ) -> Mapping[str, Any]:
        metadata = dict(
            super().extract_resource_metadata(context, resource, load_info, dlt_pipeline)
        )
        table = dlt_pipeline.default_schema.naming.normalize_table_identifier(resource.name)
        metadata.update(TableMetadataSet(row_count=current_row_count(dlt_pipeline, table)))
        if resource.name == "sms":
            rows_loaded = metadata.get("rows_loaded")
            sent = rows_loaded.value if rows_loaded else 0
            metadata["sent"] = MetadataValue.int(sent)
            if not sent:
                # A configured send either stores its row or fails the run, so no row means
                # the guard held.
                metadata["note"] = MetadataValue.text(NOTHING_SENT)
        return metadata
