"""Schedules. None selects `messaging/sms`: sending is billed and only a person sends."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.defs.jobs import message_status_job, pushed_data_job, reference_data_job

reference_data_schedule = ScheduleDefinition(
    name="reference_data_schedule",
    job=reference_data_job,
    cron_schedule=AUTOMATION.reference_cron,
    execution_timezone=AUTOMATION.schedule_timezone,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Reloads the reference lists daily (automation: reference_cron).",
)

# The status sensor does the real work; this catches whatever it missed (daemon down, sensor
# stopped, a tick skipped while the file was locked). With nothing pending the run asks the API
# nothing and still succeeds, which also keeps `messaging/messages` within its freshness window.
message_status_schedule = ScheduleDefinition(
    name="message_status_schedule",
    job=message_status_job,
    cron_schedule=AUTOMATION.status_cron,
    execution_timezone=AUTOMATION.schedule_timezone,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Safety net: looks up pending statuses (automation: status_cron).",
)

# The landed-files sensor does the real work; this catches what it missed (daemon down, sensor
# stopped) and keeps the pushed assets within their freshness window on a day nothing is pushed.
pushed_data_schedule = ScheduleDefinition(
    name="pushed_data_schedule",
    job=pushed_data_job,
    cron_schedule=AUTOMATION.pushed_cron,
    execution_timezone=AUTOMATION.schedule_timezone,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Safety net: loads the landing zone (automation: pushed_cron).",
)
