"""The code location, as `dagster dev` and `dagster asset materialize -m ...` load it."""

from dagster import Definitions, in_process_executor

from messaging_assets.assets import messages_asset, reference_assets, sms_asset
from messaging_assets.delivery_summary import DELIVERY_SUMMARY_CHECKS, delivery_summary
from messaging_assets.resources import MessagingDltResource

defs = Definitions(
    assets=[sms_asset, messages_asset, reference_assets, delivery_summary],
    asset_checks=DELIVERY_SUMMARY_CHECKS,
    resources={"dlt": MessagingDltResource()},
    # DuckDB takes one writing process per file: run the steps of a run one after another.
    executor=in_process_executor,
)
