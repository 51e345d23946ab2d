"""How dlt resources become Dagster assets: keys, group, descriptions, lineage, and how fresh
each must stay (freshness policy) and what refreshes it without a person (automation condition)."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from messaging_assets.settings import SETTINGS, AutomationSettings
from messaging_assets.source import REFERENCE_RESOURCES

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


def refresh_when_stale() -> AutomationCondition:
    """Materialize once per episode of staleness, unless a run is already on it.

    The freshness daemon re-evaluates a while after a materialization, so "stale" outlasts the run
    that fixed it; asking "not yet requested since it went stale" keeps that lag, and a run that
    failed against a broken API, from turning into a run every automation tick.
    """
    stale = (
        AutomationCondition.freshness_warned() | AutomationCondition.freshness_failed()
    ).with_label("freshness warned or failed")
    became_stale = (
        AutomationCondition.freshness_warned().newly_true()
        | AutomationCondition.freshness_failed().newly_true()
    ).with_label("became stale")
    requested_since = AutomationCondition.newly_requested().since(became_stale)
    return (
        stale
        & ~AutomationCondition.in_progress()
        & ~requested_since.with_label("already requested since it became stale")
    ).with_label("refresh when stale")


class MessagingTranslator(DagsterDltTranslator):
    def __init__(self, settings: AutomationSettings = SETTINGS) -> None:
        self.settings = settings

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
                freshness_policy=self.freshness_policy(name),
                automation_condition=self.automation_condition(name),
            )
        )

    def freshness_policy(self, name: str) -> FreshnessPolicy | None:
        # Sending is billed and happens on request only: `sms` has no expected cadence.
        if name in REFERENCE_RESOURCES:
            return FreshnessPolicy.time_window(
                fail_window=self.settings.reference_fail, warn_window=self.settings.reference_warn
            )
        if name == "messages":
            return FreshnessPolicy.time_window(
                fail_window=self.settings.status_fail, warn_window=self.settings.status_warn
            )
        return None

    def automation_condition(self, name: str) -> AutomationCondition | None:
        # Statuses are kept current by sensors that know which messages are pending; `sms` sends.
        return refresh_when_stale() if name in REFERENCE_RESOURCES else None
