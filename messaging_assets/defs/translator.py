"""How dlt resources become Dagster assets: keys, group, descriptions, lineage, freshness and
automation, all read from the resource's registry entry."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from messaging_assets.defs import automation
from messaging_assets.registry import BY_NAME, GROUP, Endpoint
from messaging_assets.settings import AutomationSettings


def asset_key(endpoint: Endpoint) -> AssetKey:
    """The asset of a registry entry: `messaging/<name>`."""
    return AssetKey([GROUP, endpoint.name])


class MessagingTranslator(DagsterDltTranslator):
    def __init__(self, settings: AutomationSettings = automation.AUTOMATION) -> None:
        self.settings = settings

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        endpoint = BY_NAME[data.resource.name]
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=asset_key(endpoint),
                group_name=GROUP,
                description=endpoint.description,
                deps=[asset_key(BY_NAME[name]) for name in endpoint.upstream],
                freshness_policy=automation.freshness_policy(endpoint.automation, self.settings),
                automation_condition=automation.automation_condition(endpoint.automation),
            )
        )
