"""The asset jobs that schedules and sensors launch, from the registry's automation profiles.
Neither selects a resource that sends: only a person sends (billed)."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, define_asset_job

from messaging_assets.defs.translator import asset_key
from messaging_assets.registry import with_automation

STATUS_KEYS: list[AssetKey] = [asset_key(endpoint) for endpoint in with_automation("status")]
DAILY_KEYS: list[AssetKey] = [asset_key(endpoint) for endpoint in with_automation("daily")]

message_status_job = define_asset_job(
    "message_status_job",
    selection=AssetSelection.assets(*STATUS_KEYS),
    description="Looks up the delivery status of messages not yet final. Never sends.",
)

reference_data_job = define_asset_job(
    "reference_data_job",
    selection=AssetSelection.assets(*DAILY_KEYS),
    description="Reloads the reference lists: "
    + ", ".join(key.path[-1] for key in DAILY_KEYS)
    + ".",
)
