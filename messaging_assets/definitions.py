"""The code location, as `dagster dev`, `dg` and `dagster asset materialize -m ...` load it."""

from messaging_assets.settings import check_settings_files

# Before the imports below read their first setting: a broken settings file fails here, in one
# line, rather than as dlt's traceback from whichever import reads a setting first.
check_settings_files()

from dagster import Definitions, in_process_executor

from messaging_assets.defs.assets import (
    list_assets,
    opt_out_assets,
    pushed_assets,
    send_assets,
    status_assets,
)
from messaging_assets.defs.checks import messaging_checks
from messaging_assets.defs.delivery_summary import DELIVERY_SUMMARY_CHECKS, delivery_summary
from messaging_assets.defs.dlt_resource import MessagingDltResource
from messaging_assets.defs.jobs import message_status_job, pushed_data_job, reference_data_job
from messaging_assets.defs.schedules import (
    message_status_schedule,
    pushed_data_schedule,
    reference_data_schedule,
)
from messaging_assets.defs.sensors import (
    dead_writer_sensor,
    landed_files_sensor,
    messaging_automation_sensor,
    pending_status_sensor,
    sms_sent_sensor,
)
from messaging_assets.defs.writers import WritersPool

WRITERS = WritersPool()

defs = Definitions(
    assets=[
        send_assets,
        status_assets,
        list_assets,
        pushed_assets,
        opt_out_assets,
        delivery_summary,
    ],
    asset_checks=[messaging_checks, *DELIVERY_SUMMARY_CHECKS],
    jobs=[message_status_job, reference_data_job, pushed_data_job],
    schedules=[reference_data_schedule, message_status_schedule, pushed_data_schedule],
    sensors=[
        pending_status_sensor,
        sms_sent_sensor,
        landed_files_sensor,
        messaging_automation_sensor,
        dead_writer_sensor,
    ],
    resources={"dlt": MessagingDltResource(writers=WRITERS), "writers": WRITERS},
    # One writer at a time: run the steps of a run one after another.
    executor=in_process_executor,
)
