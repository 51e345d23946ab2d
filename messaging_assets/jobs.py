"""The asset jobs that schedules and sensors launch. Neither selects `messaging/sms`: only a person
sends (billed)."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, define_asset_job

from messaging_assets.source import REFERENCE_RESOURCES
from messaging_assets.translator import GROUP

MESSAGES = AssetKey([GROUP, "messages"])
REFERENCE = [AssetKey([GROUP, name]) for name in REFERENCE_RESOURCES]

message_status_job = define_asset_job(
    "message_status_job",
    selection=AssetSelection.assets(MESSAGES),
    description="Looks up the delivery status of every stored message not yet final. Never sends.",
)

reference_data_job = define_asset_job(
    "reference_data_job",
    selection=AssetSelection.assets(*REFERENCE),
    description="Reloads contacts, phones and registrations.",
)
