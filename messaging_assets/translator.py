"""How dlt resources become Dagster assets: keys, group, descriptions, lineage, freshness and
automation, all read from the resource's registry entry."""

from __future__ import annotations

from dagster import AssetSpec
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from messaging_assets import automation
from messaging_assets.registry import BY_NAME, GROUP
from messaging_assets.settings import AutomationSettings


class MessagingTranslator(DagsterDltTranslator):
    def __init__(self, settings: AutomationSettings = automation.AUTOMATION) -> None:
        self.settings = settings

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        resource = BY_NAME[data.resource.name]
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=resource.asset_key,
                group_name=GROUP,
                description=resource.description,
                deps=[BY_NAME[name].asset_key for name in resource.upstream],
                freshness_policy=automation.freshness_policy(resource.automation, self.settings),
                automation_condition=automation.automation_condition(resource.automation),
            )
        )
