"""How dlt resources become Dagster assets: keys, group, descriptions and lineage."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

GROUP = "messaging"

DESCRIPTIONS = {
    "sms": (
        "Sends one SMS when `to` and `from` are configured (billed!) and stores its requestId, "
        "to, from, reference and submit time. Without them it sends nothing."
    ),
    "messages": (
        "Delivery status of every message sent through `messaging/sms`, of tracked requestIds, "
        "and of stored messages not yet in a final state. Never sends. Parts are in "
        "`messages__parts`."
    ),
    "contacts": "The account's contacts, with history (scd2): current rows have no _dlt_valid_to.",
    "phones": "The account's phone numbers, with history (scd2).",
    "registrations": "Number provisioning requests, with history (scd2).",
}

# Statuses are looked up for the requestIds that sends return, so the graph says so; the other
# resources read the API alone (dagster-dlt would otherwise hang each off an external asset).
UPSTREAM = {"messages": [AssetKey([GROUP, "sms"])]}


class MessagingTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        name = data.resource.name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=AssetKey([GROUP, name]),
                group_name=GROUP,
                description=DESCRIPTIONS[name],
                deps=UPSTREAM.get(name, []),
            )
        )
