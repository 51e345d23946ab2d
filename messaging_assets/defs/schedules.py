"""Schedules. None selects `messaging/sms`: sending is billed and only a person sends."""

from __future__ import annotations

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
)

from messaging_assets.defs import status_plan
from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.defs.jobs import message_status_job, pushed_data_job, reference_data_job
from messaging_assets.defs.sensors import due_run, pending_or_skip
from messaging_assets.defs.status_plan import plan_status_checks

# What every schedule here shares: the settings' timezone, and on by default (none can send).
SHARED = {
    "execution_timezone": AUTOMATION.schedule_timezone,
    "default_status": DefaultScheduleStatus.RUNNING,
}


def _overdue_statuses(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Without reports pushed, a run that looks up every pending message. With them, a run for
    the messages whose report is overdue at the tick's time, as the status sensor would plan it,
    or why not: a look-up of a message whose report is on its way only spends a request."""
    if not status_plan.REPORTS_PUSHED:
        return RunRequest()
    pending = pending_or_skip(context)
    if isinstance(pending, SkipReason):
        return pending
    plan = plan_status_checks(pending, context.scheduled_execution_time, AUTOMATION)
    if not plan.due:
        return SkipReason(plan.describe())
    context.log.info(plan.describe())
    return due_run(plan.due)


reference_data_schedule = ScheduleDefinition(
    name="reference_data_schedule",
    job=reference_data_job,
    cron_schedule=AUTOMATION.reference_cron,
    description="Reloads the reference lists daily (automation: reference_cron).",
    **SHARED,
)

# The status sensor does the real work; this catches whatever it missed (daemon down, sensor
# stopped, a tick skipped while the file was locked). Without reports pushed, with nothing pending
# its run asks the API nothing and still succeeds, which also keeps `messaging/messages` within its
# freshness window; with them, pushed_data_schedule's runs merge into `messaging/messages` and
# keep it fresh, so a tick with nothing overdue requests no run.
message_status_schedule = ScheduleDefinition(
    name="message_status_schedule",
    job=message_status_job,
    cron_schedule=AUTOMATION.status_cron,
    execution_fn=_overdue_statuses,
    description="Safety net: looks up pending statuses; with delivery reports pushed, only those "
    "whose report is overdue (automation: status_cron).",
    **SHARED,
)

# The landed-files sensor does the real work; this catches what it missed (daemon down, sensor
# stopped) and keeps the pushed assets within their freshness window on a day nothing is pushed.
pushed_data_schedule = ScheduleDefinition(
    name="pushed_data_schedule",
    job=pushed_data_job,
    cron_schedule=AUTOMATION.pushed_cron,
    description="Safety net: loads the landing zone (automation: pushed_cron).",
    **SHARED,
)
