"""Sensors that keep delivery statuses current, the one that loads what the provider pushed as it
lands, and the automation sensor that heals stale reference data and the delivery summary. All run
by default: none of them can send (`messaging/sms` is never targeted)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_sensor,
    sensor,
)

from messaging_assets.defs import status_plan
from messaging_assets.defs.assets import op_name
from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.defs.delivery_summary import SUMMARY_KEY
from messaging_assets.defs.jobs import DAILY_KEYS, STATUS_KEYS, message_status_job, pushed_data_job
from messaging_assets.defs.status_plan import PendingMessage, pending_messages, plan_status_checks
from messaging_assets.defs.translator import asset_key
from messaging_assets.defs.writers import WRITER_POOL, free_dead_writers
from messaging_assets.registry import SEND, STATUS
from messaging_assets.source.pushed import landed_files, landing_url
from messaging_assets.warehouse.connection import WarehouseUnavailable, read
from messaging_assets.warehouse.destination import destination_type

# Request ids shown in a status run's tags; its run config holds them all.
TAGGED = 5
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


# The config a run of a job gets when it is launched with none, as a sensor's request launches it.
DEFAULT_RUN_CONFIG = {job.name: job.config or {} for job in (message_status_job, pushed_data_job)}


def looks_statuses_up(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Whether the run asks the API for statuses, whatever job or selection launched it: it plans
    to materialize `messaging/messages` (Dagster records the planned materializations when it
    creates the run) and its config does not turn look-ups off, as `pushed_data_job`'s does (it
    only merges the landed reports)."""
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    if not any(record.asset_key in STATUS_KEYS for record in records):
        return False
    config = run.run_config or DEFAULT_RUN_CONFIG.get(run.job_name, {})
    op_config = config.get("ops", {}).get(op_name(STATUS.name), {}).get("config", {})
    return op_config.get("look_up_statuses", True) is not False


def status_runs_in_flight(instance: DagsterInstance) -> list[str]:
    """Runs that will look statuses up anyway: queued or in progress, whoever launched them."""
    return [
        run.run_id
        for run in instance.get_runs(RunsFilter(statuses=IN_FLIGHT))
        if looks_statuses_up(instance, run)
    ]


def pending_or_skip(
    context: SensorEvaluationContext | ScheduleEvaluationContext,
) -> list[PendingMessage] | SkipReason:
    """The stored messages that are not final, read from the warehouse, unless a status run is
    already on its way or the warehouse cannot be read without harm now: then why not."""
    # First, so that a status run that died is failed rather than waited for.
    survey = free_dead_writers(context.instance)
    for note in survey.freed:
        context.log.warning(note)
    in_flight = status_runs_in_flight(context.instance)
    if in_flight:
        return SkipReason(f"A status run is already queued or in progress: {', '.join(in_flight)}.")
    silent = [writer for writer in survey.blocking if writer.silent]
    if silent:
        return SkipReason(silent[0].line())
    # On DuckDB even a read-only open makes a writer's next open of the file fail; PostgreSQL
    # lets readers and writers work side by side.
    if survey.blocking and destination_type() == "duckdb":
        holding = ", ".join(writer.run_id for writer in survey.blocking)
        return SkipReason(
            f"Run(s) {holding} hold the writers' pool {WRITER_POOL}: DuckDB lets no other process "
            "open the file while a run writes it, so the warehouse is read at a later tick."
        )
    try:
        with read() as warehouse:
            return pending_messages(warehouse)
    except WarehouseUnavailable as unavailable:
        return SkipReason(str(unavailable))


def _requested(cursor: str | None) -> dict[str, datetime]:
    return {rid: datetime.fromisoformat(at) for rid, at in json.loads(cursor or "{}").items()}


@sensor(
    name="pending_status_sensor",
    job=message_status_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests a status run for the stored messages that are not final and are due for a "
        "re-check: often while young, rarely once old, never past their validity plus a margin. "
        "The run looks up exactly those. The cursor remembers when each was last requested."
    ),
)
def pending_status_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    pending = pending_or_skip(context)
    if isinstance(pending, SkipReason):
        return pending
    now = datetime.now(timezone.utc)
    requested = _requested(context.cursor)
    plan = plan_status_checks(pending, now, AUTOMATION, requested)
    still_pending = {m.request_id for m in pending}
    cursor = {rid: at for rid, at in requested.items() if rid in still_pending}
    if not plan.due:
        return SensorResult(skip_reason=plan.describe(), cursor=_dump(cursor))
    context.log.info(plan.describe())
    cursor.update(dict.fromkeys(plan.due, now))
    return SensorResult(run_requests=[due_run(plan.due)], cursor=_dump(cursor))


def due_run(due: list[str]) -> RunRequest:
    """A status run for exactly the messages the plan found due: in its run config, and counted
    and sampled in its tags."""
    config = {"request_ids": due, "only_request_ids": True}
    sample = ", ".join(due[:TAGGED]) + (" …" if len(due) > TAGGED else "")
    return RunRequest(
        run_config={"ops": {op_name(STATUS.name): {"config": config}}},
        tags={"messaging/due_messages": str(len(due)), "messaging/due_sample": sample},
    )


def _dump(requested: dict[str, datetime]) -> str:
    return json.dumps({rid: at.isoformat() for rid, at in sorted(requested.items())})


@asset_sensor(
    asset_key=asset_key(SEND),
    name="sms_sent_sensor",
    job=message_status_job,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After a send lands in `messaging.sms`, looks its status up right away; with delivery "
        "reports pushed, leaves it to its report."
    ),
)
def sms_sent_sensor(
    context: SensorEvaluationContext, asset_event: EventLogEntry
) -> RunRequest | SkipReason:
    materialization = asset_event.asset_materialization
    sent = materialization.metadata.get("sent") if materialization else None
    if not sent or not sent.value:
        return SkipReason(f"Run {asset_event.run_id} sent nothing.")
    if status_plan.REPORTS_PUSHED:
        return SkipReason(
            f"Run {asset_event.run_id} sent {sent.value} message(s) asking for delivery reports: "
            "they are pushed, and pending_status_sensor looks a message up only once its report "
            "is overdue."
        )
    sending = context.instance.get_run_by_id(asset_event.run_id)
    if sending is not None and looks_statuses_up(context.instance, sending):
        return SkipReason(f"Run {asset_event.run_id} looked the new statuses up itself.")
    return RunRequest(run_key=f"sent-in-{asset_event.run_id}")


@sensor(
    name="dead_writer_sensor",
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Frees the writers' pool of a run whose process died on this machine and marks that run "
        "failed, so that queued runs and the status sensor go on; names a run that holds the pool "
        "from another machine and has been silent, with the command that frees it. Requests no run."
    ),
)
def dead_writer_sensor(context: SensorEvaluationContext) -> SkipReason:
    survey = free_dead_writers(context.instance)
    silent = [writer.line() for writer in survey.writers if writer.silent]
    said = [*survey.freed, *silent]
    for note in survey.freed:
        context.log.warning(note)
    return SkipReason(" ".join(said) or "No run that holds the writers' pool has died.")


def landed_cursor(files: Sequence[tuple[str, datetime]], lag: timedelta) -> str | None:
    """What a load would read now, in a few characters: the newest landed file, its modification
    time, and a digest of the files modified within the lag before it (the loader reads those
    again, so one that appears late, with an older time, changes the digest); None when nothing
    has landed."""
    if not files:
        return None
    newest, path = max((modified, path) for path, modified in files)
    window = sorted(path for path, modified in files if modified >= newest - lag)
    digest = hashlib.md5("\n".join(window).encode("utf-8")).hexdigest()
    return json.dumps({"newest": path, "modified": newest.isoformat(), "window": digest})


@sensor(
    name="landed_files_sensor",
    job=pushed_data_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests a run that loads the delivery reports and inbound messages the receiver "
        "landed since the last run, and merges the reports into messages (asking the API "
        "nothing). Lists the landing folders; the cursor is the newest landed file and the "
        "files within the landing lag before it. Those files are the run's key: they never "
        "start two runs."
    ),
)
def landed_files_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    url = landing_url()
    cursor = landed_cursor(landed_files(url), AUTOMATION.landing_lag)
    if cursor is None:
        return SkipReason(f"Nothing has landed in {url} yet.")
    newest = json.loads(cursor)
    if cursor == context.cursor:
        return SkipReason(f"Nothing new in {url}: the newest file is still {newest['newest']}.")
    request = RunRequest(
        run_key=f"landed {cursor}",
        tags={"messaging/newest_landed_file": newest["newest"]},
    )
    return SensorResult(run_requests=[request], cursor=cursor)


messaging_automation_sensor = AutomationConditionSensorDefinition(
    "messaging_automation_sensor",
    target=AssetSelection.assets(*DAILY_KEYS, SUMMARY_KEY),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Evaluates the automation conditions: refreshes a stale reference asset, and the delivery "
        "summary after its messages."
    ),
)
