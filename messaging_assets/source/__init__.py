"""The messaging API as one dlt source: a resource per registry entry, and everything that talks
to the API (sessions, answers, paging, lists, statuses, sending and its journal, arrow pages and
the values kept beside their column) or reads what it pushed (the receiver's landing zone), and
what is derived from that in the warehouse (opt-outs).

It may import dlt, the warehouse layer, the registry and the settings; never Dagster (a test
holds it to that).

The source's settings are injected the dlt way (`[sources.messaging]` in .dlt/config.toml and
.dlt/secrets.toml, or SOURCES__MESSAGING__* environment variables); what a run asks for (a send,
statuses to track, a shrink to accept) comes as `RunOptions` from the Dagster run config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from messaging_assets.registry import LISTS, PUSHED, SOURCE
from messaging_assets.settings import automation_settings
from messaging_assets.source.api import Api
from messaging_assets.source.lists import list_resource
from messaging_assets.source.opt_outs import opt_out_resource
from messaging_assets.source.pushed import landing_url, pushed_resource
from messaging_assets.source.sending import SendRequest, send_resource
from messaging_assets.source.statuses import status_resource
from messaging_assets.source.variants import TEXT_VARIANTS


@dataclass(frozen=True)
class RunOptions:
    """What one run asks for, from its Dagster run config."""

    send: SendRequest | None = None
    request_ids: Sequence[str] = ()
    # Look up only `request_ids` (the status sensor's due messages), not every pending message.
    only_request_ids: bool = False
    # Ask the API about pending messages; without, `messages` only merges delivery reports.
    look_up_statuses: bool = True
    accept_shrink: bool = False


@dlt.source(name=SOURCE, section=SOURCE)
def messaging_source(
    options: RunOptions,
    base_url: str = dlt.config.value,
    api_key: TSecretStrValue | None = dlt.secrets.value,
    api_shape: str = "data",
    api_key_header: str | None = None,
) -> list[DltResource]:
    """Every resource of the API. `api_shape` is `data` (`{"data": ...}` envelopes) or
    `provider` (the provider's published contract); `api_key_header` defaults per shape."""
    api = Api.configured(base_url, api_key, api_shape, api_key_header)
    dlt.current.source_schema().update_preferred_types(TEXT_VARIANTS)
    # Where the receiver lands files, and how far back they are read again (pushed.py).
    url, lag = landing_url(), automation_settings().landing_lag_seconds
    return [
        send_resource(api, options.send),
        status_resource(
            api, options.request_ids, options.only_request_ids, options.look_up_statuses
        ),
        *(list_resource(api, resource, options.accept_shrink) for resource in LISTS),
        *(pushed_resource(resource, url, lag) for resource in PUSHED),
        opt_out_resource(),
    ]


def definition_source() -> DltSource:
    """The source as the asset definitions see it: its resources and tables. Every setting is
    given here, none read, so that no mistake in one stops the code location from loading; a
    run builds its own source from the settings."""
    return messaging_source(
        RunOptions(),
        base_url="https://definitions.invalid",
        api_key=None,
        api_shape="data",
        api_key_header=None,
    )
