"""The dagster-dlt resource, with what unattended runs need around `pipeline.run()`.

Before each run: wait (bounded) for DuckDB's write lock, and finish or drop load packages that an
earlier, interrupted run left behind. dagster-dlt would drop them silently, and plain dlt would
load them and then ignore the new data; either way a refresh would quietly not happen. After each
run: row counts and the send guard's note in the materialization metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, OpExecutionContext
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dagster_dlt.dlt_event_iterator import DltEventType
from dlt.common.pipeline import LoadInfo
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.source import stored_rows
from messaging_assets.warehouse import writable

NOTHING_SENT = (
    "Nothing sent: set `to` and `from` in the run config (launchpad), or "
    "SOURCES__MESSAGING__SMS__TO and SOURCES__MESSAGING__SMS__FROM."
)


def current_row_count(pipeline: Pipeline, table: str) -> int:
    """Rows a user sees as current: all rows, less the retired versions of scd2 tables."""
    columns = pipeline.default_schema.tables.get(table, {}).get("columns", {})
    where = " WHERE _dlt_valid_to IS NULL" if "_dlt_valid_to" in columns else ""
    with pipeline.sql_client() as client:
        rows = stored_rows(client, table, "count(*)", where)
    return int(rows[0][0]) if rows else 0


def wait_for_duckdb(pipeline: Pipeline) -> None:
    """Fail early and clearly, rather than mid-load, while another process holds the file."""
    if pipeline.destination.destination_name == "duckdb":
        config = pipeline.destination.configuration(None, accept_partial=True)
        with writable(config.credentials.database):
            pass


def finish_pending_packages(pipeline: Pipeline) -> str | None:
    """Load what an interrupted run extracted, or drop it if it cannot load; say which."""
    normalized = list(pipeline.list_normalized_load_packages())
    pending = list(dict.fromkeys([*pipeline.list_extracted_load_packages(), *normalized]))
    if not pending:
        return None
    try:
        if normalized:
            pipeline.load()
        # A run killed just after normalizing leaves an extracted copy of what was loaded above.
        if set(pipeline.list_extracted_load_packages()) - set(normalized):
            pipeline.normalize()
            pipeline.load()
        pipeline.abort_packages()
    except Exception as error:
        pipeline.abort_packages()
        return (
            f"Dropped {len(pending)} load package(s) an earlier run left unfinished "
            f"({', '.join(pending)}), because they could not be loaded: {error}"
        )
    return (
        f"Loaded {len(pending)} load package(s) an earlier run left unfinished "
        f"({', '.join(pending)}) before this run's own load."
    )


class MessagingDltResource(DagsterDltResource):
    def _run(
        self,
        context: OpExecutionContext | AssetExecutionContext,
        dlt_source: DltSource,
        dlt_pipeline: Pipeline,
        dagster_dlt_translator: DagsterDltTranslator,
        **kwargs: Any,
    ) -> Iterator[DltEventType]:
        wait_for_duckdb(dlt_pipeline)
        recovered = finish_pending_packages(dlt_pipeline)
        if recovered:
            context.log.warning(recovered)
        for event in super()._run(
            context, dlt_source, dlt_pipeline, dagster_dlt_translator, **kwargs
        ):
            if recovered and isinstance(event, MaterializeResult):
                metadata = {**(event.metadata or {}), "recovered": MetadataValue.text(recovered)}
                event = MaterializeResult(asset_key=event.asset_key, metadata=metadata)
            yield event

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
