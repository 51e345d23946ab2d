"""The dlt assets: dagster-dlt's `@dlt_assets` over the messaging source, one op per kind of
endpoint in the registry, so that Dagster orders them (statuses are looked up after a send has
landed) and each takes its own launchpad config. Naming and policy are in the translator; each
run builds its source from the settings and its run config.
"""

import tempfile
from pathlib import Path

import dlt
from dagster import AssetExecutionContext, Config
from dagster_dlt import DagsterDltResource, dlt_assets
from pydantic import Field

from messaging_assets.defs.translator import MessagingTranslator
from messaging_assets.defs.writers import WRITER_POOL
from messaging_assets.registry import GROUP, LISTS, OPT_OUTS, PUSHED, SEND, STATUS
from messaging_assets.source import RunOptions, definition_source, messaging_source
from messaging_assets.source.sending import SendRequest, reference_for
from messaging_assets.warehouse.destination import messaging_pipeline

TRANSLATOR = MessagingTranslator()
LIST_NAMES = [endpoint.name for endpoint in LISTS]
PUSHED_NAMES = [endpoint.name for endpoint in PUSHED]
# The pipeline the definitions describe (destination, dataset); each run loads through its own
# (`run_pipeline`, warehouse/run_directories.py).
# Its working directory is this process's own, removed when it exits: dlt creates a pipeline's
# directory wherever it finds no state, and two processes loading the definitions at the same
# moment (two CLI runs) would otherwise both create the same one, and one would fail.
DEFINITION_DIRECTORY = tempfile.TemporaryDirectory(prefix="messaging-assets-definitions-")
DEFINITION_PIPELINE = messaging_pipeline(Path(DEFINITION_DIRECTORY.name))


class SendConfig(Config):
    """Launchpad config for `messaging/sms`. Sending is billed: without `to` and `from` (here or
    in SOURCES__MESSAGING__SMS__*) nothing is sent."""

    to: str | None = Field(default=None, description="Recipient, E.164 (e.g. +4915112345678).")
    from_: str | None = Field(default=None, alias="from", description="Sender id or number.")
    message: str | None = Field(default=None, description="Text; each 160-char part is billed.")
    send_to_opted_out: bool = Field(
        default=False,
        description="Send even if `to` opted out (messaging/opt_outs), for a message the law "
        "allows, such as confirming the opt-out; the send records the opt-out it overrode.",
    )

    def options(self, context: AssetExecutionContext) -> RunOptions:
        # `from` is a Python keyword, so the settings are read by their path.
        to = self.to or dlt.config.get("sources.messaging.sms.to")
        sender = self.from_ or dlt.config.get("sources.messaging.sms.from")
        if not (to and sender):
            return RunOptions()
        text = self.message or dlt.config.get("sources.messaging.sms.message") or ""
        reference = reference_for(context.run.run_id, context.run.root_run_id)
        return RunOptions(
            send=SendRequest(
                to, sender, text, reference, context.run.run_id, self.send_to_opted_out
            )
        )


class StatusConfig(Config):
    request_ids: list[str] = Field(
        default_factory=list,
        description="Extra requestIds to track (sent by other systems), besides the stored ones.",
    )
    only_request_ids: bool = Field(
        default=False,
        description="Look up only `request_ids`, not every pending message: the status sensor "
        "asks for the messages its plan found due.",
    )
    look_up_statuses: bool = Field(
        default=True,
        description="Ask the API about pending messages. False: only merge the delivery reports "
        "not merged yet, asking nothing (the runs that load pushed data).",
    )

    def options(self, context: AssetExecutionContext) -> RunOptions:
        return RunOptions(
            request_ids=self.request_ids,
            only_request_ids=self.only_request_ids,
            look_up_statuses=self.look_up_statuses,
        )


class ListConfig(Config):
    accept_shrink: bool = Field(
        default=False,
        description="Load a list even if it retires more than the allowed share of current rows "
        "(MESSAGING__AUTOMATION__ROW_DROP_SHARE): for a list that shrank on purpose.",
    )

    def options(self, context: AssetExecutionContext) -> RunOptions:
        return RunOptions(accept_shrink=self.accept_shrink)


def op_name(name: str) -> str:
    """The name of the op behind one `@dlt_assets` definition: the key its launchpad config goes
    under."""
    return f"{GROUP}_{name}"


def _dlt_assets_args(name: str, *resources: str) -> dict:
    return {
        "dlt_source": definition_source().with_resources(*resources),
        "dlt_pipeline": DEFINITION_PIPELINE,
        "name": op_name(name),
        "dagster_dlt_translator": TRANSLATOR,
        "pool": WRITER_POOL,
    }


@dlt_assets(**_dlt_assets_args(SEND.name, SEND.name))
def send_assets(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    config: SendConfig,
):
    source = messaging_source(config.options(context)).with_resources(SEND.name)
    yield from dlt.run(context=context, dlt_source=source)


@dlt_assets(**_dlt_assets_args(STATUS.name, STATUS.name))
def status_assets(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    config: StatusConfig,
):
    source = messaging_source(config.options(context)).with_resources(STATUS.name)
    yield from dlt.run(context=context, dlt_source=source)


@dlt_assets(**_dlt_assets_args("pushed", *PUSHED_NAMES))
def pushed_assets(context: AssetExecutionContext, dlt: DagsterDltResource):
    source = messaging_source(RunOptions()).with_resources(*PUSHED_NAMES)
    yield from dlt.run(context=context, dlt_source=source)


@dlt_assets(**_dlt_assets_args("reference", *LIST_NAMES))
def list_assets(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    config: ListConfig,
):
    source = messaging_source(config.options(context)).with_resources(*LIST_NAMES)
    yield from dlt.run(context=context, dlt_source=source)


# Its own op, after the inbound messages it reads (its asset depends on theirs): in the run
# that loads them, it sees them.
@dlt_assets(**_dlt_assets_args(OPT_OUTS.name, OPT_OUTS.name))
def opt_out_assets(context: AssetExecutionContext, dlt: DagsterDltResource):
    source = messaging_source(RunOptions()).with_resources(OPT_OUTS.name)
    yield from dlt.run(context=context, dlt_source=source)
