"""A load as a Dagster step: dagster-dlt's resource, with what unattended runs need around it.

Each run loads through the pipeline of its own working directory (`warehouse/run_directories.py`).
Before loading, a run finishes what runs that died left behind, waits (bounded) for DuckDB's write
lock, and upgrades tables an earlier version loaded; the materialization's metadata says what it
found, and a failed run that sent names its sends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, OpExecutionContext
from dagster_dlt import DagsterDltResource, DagsterDltTranslator
from dlt.common.pipeline import LoadInfo
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

from messaging_assets.defs.writers import WritersPool
from messaging_assets.registry import BY_NAME, OPT_OUTS, SOURCE
from messaging_assets.settings import resource_settings, variable
from messaging_assets.source.journal import not_stored, send_outcome, sends_of
from messaging_assets.source.sending import reference_for
from messaging_assets.warehouse.connection import connect
from messaging_assets.warehouse.delivery_metrics import opt_outs_per_day
from messaging_assets.warehouse.destination import pipelines_dir
from messaging_assets.warehouse.run_directories import finish_abandoned, run_pipeline
from messaging_assets.warehouse.upgrades import upgrade


class MessagingDltResource(DagsterDltResource):
    """Each load takes its turn in the writers' pool (`writers.py`), so that the assets' bodies
    are only `dlt.run`."""

    writers: WritersPool

    def run(  # type: ignore[override]
        self,
        context: OpExecutionContext | AssetExecutionContext,
        dlt_source: DltSource | None = None,
        dlt_pipeline: Pipeline | None = None,
        dagster_dlt_translator: DagsterDltTranslator | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """dagster-dlt's run, in the run's own pipeline (`dlt_pipeline` is not used: every run
        loads through the pipeline of its own working directory, to the configured destination).
        """
        with self.writers.turn(context), run_pipeline(context.run.run_id) as pipeline:
            notes = {"recovered": finish_abandoned(pipelines_dir(), Path(pipeline.pipelines_dir))}
            with connect(pipeline) as warehouse:
                notes["upgraded"] = "; ".join(upgrade(warehouse)) or None
            for note in filter(None, notes.values()):
                context.log.warning(note)
            events = super().run(context, dlt_source, pipeline, dagster_dlt_translator, **kwargs)
            try:
                for event in events:
                    if isinstance(event, MaterializeResult):
                        extra = {k: MetadataValue.text(note) for k, note in notes.items() if note}
                        event = MaterializeResult(
                            asset_key=event.asset_key, metadata={**(event.metadata or {}), **extra}
                        )
                    yield event
            except Exception as error:
                raise _telling_sends(error, pipeline, context.run.run_id) from error

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
        entry = BY_NAME[resource.name]
        table = dlt_pipeline.default_schema.naming.normalize_table_identifier(resource.name)
        # Where the time went, plotted per materialization in the asset's Plots view.
        for step in dlt_pipeline.last_trace.steps:
            if step.step in ("extract", "normalize", "load") and step.finished_at:
                seconds = (step.finished_at - step.started_at).total_seconds()
                metadata[f"dlt_{step.step}_seconds"] = MetadataValue.float(round(seconds, 3))
        with connect(dlt_pipeline) as warehouse:
            metadata["dagster/row_count"] = MetadataValue.int(warehouse.current_row_count(table))
            if entry.kind == "send":
                run = context.run
                reference = reference_for(run.run_id, run.root_run_id)
                sent, note = send_outcome(warehouse, run.run_id, reference)
                metadata["sent"] = MetadataValue.int(sent)
                if note:
                    metadata["note"] = MetadataValue.text(note)
            if entry == OPT_OUTS:
                # Plotted over materializations in the asset's Plots view.
                opted_out = opt_outs_per_day(warehouse).opted_out
                metadata["opted_out_numbers"] = MetadataValue.int(opted_out)
        if entry.kind == "list":
            metadata["primary_key"] = MetadataValue.text(_key_of(dlt_pipeline, table))
        return metadata


def _telling_sends(error: Exception, pipeline: Pipeline, run_id: str) -> Exception:
    """A failed run that sent says so, with the references: a send is billed, and not lost."""
    try:
        with connect(pipeline) as warehouse:
            sends = sends_of(warehouse, run_id)
    except Exception:
        return error
    return not_stored(error, sends) if sends else error


def _key_of(pipeline: Pipeline, table: str) -> str:
    columns = pipeline.default_schema.tables.get(table, {}).get("columns", {})
    keys = [name for name, column in columns.items() if column.get("primary_key")]
    if keys:
        return ", ".join(keys)
    field = resource_settings(table).primary_key or BY_NAME[table].key
    return (
        f"none: the records carry no `{field}`, so history is kept by row content; choose a key "
        f"with {variable(('sources', SOURCE, table), 'primary_key')}"
    )
