"""The five `messaging/*` assets: dagster-dlt's `@dlt_assets` over the rest_api source.

Three blocks rather than one so that Dagster orders them: statuses are looked up after the send
has landed in DuckDB, and the reference lists load on their own. Each run builds its source and
pipeline afresh, so that run config and configuration changed since start-up take effect.
"""

from dagster import AssetExecutionContext, Config
from dagster_dlt import DagsterDltResource, dlt_assets
from pydantic import Field

from messaging_assets.pipeline import messaging_pipeline
from messaging_assets.source import REFERENCE_RESOURCES, messaging_source
from messaging_assets.translator import MessagingTranslator
from messaging_assets.warehouse import DUCKDB_POOL

TRANSLATOR = MessagingTranslator()


class SmsConfig(Config):
    """Launchpad config for `messaging/sms`. Sending is billed: without `to` and `from` (here or
    in SOURCES__MESSAGING__SMS__*) nothing is sent."""

    to: str | None = Field(default=None, description="Recipient, E.164 (e.g. +4915112345678).")
    from_: str | None = Field(default=None, alias="from", description="Sender id or number.")
    message: str | None = Field(default=None, description="Text; each 160-char part is billed.")


class MessagesConfig(Config):
    request_ids: list[str] = Field(
        default_factory=list,
        description="Extra requestIds to track (sent by other systems), besides the stored ones.",
    )


@dlt_assets(
    dlt_source=messaging_source().with_resources("sms"),
    dlt_pipeline=messaging_pipeline(),
    name="messaging_sms",
    dagster_dlt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def sms_asset(context: AssetExecutionContext, dlt: DagsterDltResource, config: SmsConfig):
    yield from dlt.run(
        context=context,
        dlt_source=messaging_source(
            sms_to=config.to, sms_from=config.from_, sms_message=config.message
        ).with_resources("sms"),
        dlt_pipeline=messaging_pipeline(),
    )


@dlt_assets(
    dlt_source=messaging_source().with_resources("messages"),
    dlt_pipeline=messaging_pipeline(),
    name="messaging_messages",
    dagster_dlt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def messages_asset(context: AssetExecutionContext, dlt: DagsterDltResource, config: MessagesConfig):
    yield from dlt.run(
        context=context,
        dlt_source=messaging_source(request_ids=config.request_ids).with_resources("messages"),
        dlt_pipeline=messaging_pipeline(),
    )


@dlt_assets(
    dlt_source=messaging_source().with_resources(*REFERENCE_RESOURCES),
    dlt_pipeline=messaging_pipeline(),
    name="messaging_reference",
    dagster_dlt_translator=TRANSLATOR,
    pool=DUCKDB_POOL,
)
def reference_assets(context: AssetExecutionContext, dlt: DagsterDltResource):
    yield from dlt.run(
        context=context,
        dlt_source=messaging_source().with_resources(*REFERENCE_RESOURCES),
        dlt_pipeline=messaging_pipeline(),
    )
