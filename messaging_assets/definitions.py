"""The code location, as `dagster dev`, `dg` and `dagster asset materialize -m ...` load it."""

from dagster import Definitions, in_process_executor

from messaging_assets.assets import list_assets, send_assets, status_assets
from messaging_assets.checks import messaging_checks
from messaging_assets.delivery_summary import DELIVERY_SUMMARY_CHECKS, delivery_summary
from messaging_assets.jobs import message_status_job, reference_data_job
from messaging_assets.loads import MessagingDltResource
from messaging_assets.schedules import message_status_schedule, reference_data_schedule
from messaging_assets.sensors import (
    dead_writer_sensor,
    messaging_automation_sensor,
    pending_status_sensor,
    sms_sent_sensor,
)
from messaging_assets.writers import WritersPool

defs = Definitions(
    assets=[send_assets, status_assets, list_assets, delivery_summary],
    asset_checks=[messaging_checks, *DELIVERY_SUMMARY_CHECKS],
    jobs=[message_status_job, reference_data_job],
    schedules=[reference_data_schedule, message_status_schedule],
    sensors=[
        pending_status_sensor,
        sms_sent_sensor,
        messaging_automation_sensor,
        dead_writer_sensor,
    ],
    resources={"dlt": MessagingDltResource(), "writers": WritersPool()},
    # One writer at a time: run the steps of a run one after another.
    executor=in_process_executor,
)
