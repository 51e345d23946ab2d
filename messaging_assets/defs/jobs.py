"""The asset jobs that schedules and sensors launch, from the registry's automation profiles.
Neither selects a resource that sends: only a person sends (billed)."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, define_asset_job

from messaging_assets.defs.assets import op_name
from messaging_assets.defs.translator import asset_key
from messaging_assets.registry import STATUS, with_automation

STATUS_KEYS: list[AssetKey] = [asset_key(endpoint) for endpoint in with_automation("status")]
DAILY_KEYS: list[AssetKey] = [asset_key(endpoint) for endpoint in with_automation("daily")]
PUSHED_KEYS: list[AssetKey] = [asset_key(endpoint) for endpoint in with_automation("pushed")]

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

# The reports merge into messages in the same run; the status sensor and schedule do the look-ups,
# paced by their plan, so a run that loads pushed data asks the API nothing.
PUSHED_RUN_CONFIG = {"ops": {op_name(STATUS.name): {"config": {"look_up_statuses": False}}}}

pushed_data_job = define_asset_job(
    "pushed_data_job",
    selection=AssetSelection.assets(*PUSHED_KEYS, asset_key(STATUS)),
    config=PUSHED_RUN_CONFIG,
    description="Loads what the provider pushed (delivery reports, inbound messages) from the "
    "landing zone and merges the reports into messages. Asks the API nothing.",
)
