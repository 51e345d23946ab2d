"""The sensors evaluated against a real instance and a DuckDB file filled by real runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.definitions.schedule_definition import ScheduleExecutionData
from dagster._core.definitions.sensor_definition import SensorExecutionData

from messaging_assets.definitions import defs
from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.defs.jobs import message_status_job, pushed_data_job
from messaging_assets.defs.schedules import message_status_schedule
from messaging_assets.defs.sensors import (
    dead_writer_sensor,
    landed_files_sensor,
    pending_status_sensor,
    sms_sent_sensor,
)
from messaging_assets.defs.writers import WRITER_POOL, RunLife
from messaging_assets.receiver.landing import DELIVERY_REPORTS, INBOUND_MESSAGES
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    Destination,
    Landing,
    Warehouse,
    both_destinations,
    hold_the_pool,
    run_config,
)
from messaging_assets_tests.source.test_pushed import INBOUND, report

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}


@pytest.fixture
def instance(persistent_instance: DagsterInstance) -> DagsterInstance:
    # Sensors read run history and cursors: they need the instance to persist.
    return persistent_instance


def tick(sensor, instance: DagsterInstance, cursor: str | None = None) -> SensorExecutionData:
    """One evaluation, as the daemon runs it."""
    return sensor.evaluate_tick(
        build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    )


def status_schedule_tick(instance: DagsterInstance) -> ScheduleExecutionData:
    """The safety-net schedule's tick, once the report of a message sent now is overdue."""
    at = datetime.now(timezone.utc) + AUTOMATION.report_overdue + timedelta(minutes=1)
    return message_status_schedule.evaluate_tick(
        build_schedule_context(instance=instance, scheduled_execution_time=at)
    )


@pytest.fixture(params=["pending_status_sensor", "message_status_schedule with reports pushed"])
def status_tick(
    request: pytest.FixtureRequest, instance: DagsterInstance
) -> Callable[[], SensorExecutionData | ScheduleExecutionData]:
    """What plans status look-ups: the status sensor, and with reports pushed the schedule too."""
    if request.param == "pending_status_sensor":
        return lambda: tick(pending_status_sensor, instance)
    request.getfixturevalue("reports_pushed")
    return lambda: status_schedule_tick(instance)


def started(instance: DagsterInstance, job_name: str) -> str:
    """A run of the job, in progress, as the daemon or a CLI creates it; its id."""
    job = defs.resolve_job_def(job_name)
    return instance.create_run_for_job(job, status=DagsterRunStatus.STARTED).run_id


def test_status_sensors_run_by_default():
    assert pending_status_sensor.default_status == DefaultSensorStatus.RUNNING
    assert sms_sent_sensor.default_status == DefaultSensorStatus.RUNNING
    assert pending_status_sensor.job_name == sms_sent_sensor.job_name == message_status_job.name


@both_destinations
def test_pending_sensor_requests_a_status_run_for_a_send_not_yet_looked_up(
    sandbox: Sandbox, run, instance
):
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent

    result = tick(pending_status_sensor, instance)

    (request,) = result.run_requests
    assert request.tags["messaging/due_messages"] == "1"
    assert sent["requestId"] in json.loads(result.cursor)
    print(f"tick requested a {pending_status_sensor.job_name} run; cursor {result.cursor}")


def test_status_run_the_sensor_requests_looks_up_exactly_the_due_messages(
    sandbox: Sandbox, run, instance
):
    for _ in range(4):
        run("sms", config=run_config(sms=SEND))
    sent = [message["requestId"] for message in sandbox.sent]
    # Two of them were requested a moment ago (the cursor says so): not due again yet.
    held_back = json.dumps({rid: datetime.now(timezone.utc).isoformat() for rid in sent[:2]})

    (request,) = tick(pending_status_sensor, instance, cursor=held_back).run_requests
    sandbox.reset()
    result = run("messages", config=request.run_config)

    asked = sorted(r.path.rsplit("/", 1)[-1] for r in sandbox.requests)
    assert asked == sorted(sent[2:])
    assert request.tags["messaging/due_messages"] == "2"
    assert set(request.tags["messaging/due_sample"].split(", ")) == set(sent[2:])
    assert result.success


@both_destinations
def test_pending_sensor_skips_when_every_status_is_final(sandbox: Sandbox, run, instance):
    run("messages", config=run_config(request_ids=sandbox.add_messages(2, final=True)))

    result = tick(pending_status_sensor, instance)

    assert result.run_requests == []
    assert result.skip_message == "No pending message is due for a status check."


def test_pending_sensor_backs_off_after_a_fresh_look_up(sandbox: Sandbox, run, instance):
    run("sms", config=run_config(sms=SEND))
    run("messages")
    (sent,) = sandbox.sent

    result = tick(pending_status_sensor, instance)

    assert result.run_requests == []
    assert f"Next checks: {sent['requestId']} at " in result.skip_message
    print(result.skip_message)


def test_pending_sensor_cursor_holds_back_a_message_it_just_requested(
    sandbox: Sandbox, run, instance
):
    run("sms", config=run_config(sms=SEND))
    first = tick(pending_status_sensor, instance)

    # The requested run has not happened (or failed): the message is still never checked.
    second = tick(pending_status_sensor, instance, cursor=first.cursor)

    assert len(first.run_requests) == 1
    assert second.run_requests == []
    assert "Next checks:" in second.skip_message


def test_pending_sensor_stops_polling_messages_past_validity(sandbox: Sandbox, run, instance):
    # The sandbox dates its messages in 2024: long past the 48 h validity.
    run("messages", config=run_config(request_ids=sandbox.add_messages(1)))

    result = tick(pending_status_sensor, instance)

    assert result.run_requests == []
    assert "1 message(s) past validity + margin are no longer polled" in result.skip_message


def test_no_status_run_is_requested_while_one_is_in_progress(
    sandbox: Sandbox, run, instance, status_tick
):
    run("sms", config=run_config(sms=SEND))
    in_progress = started(instance, message_status_job.name)

    result = status_tick()

    assert result.run_requests == []
    assert result.skip_message == f"A status run is already queued or in progress: {in_progress}."


def test_a_run_that_only_merges_pushed_reports_does_not_hold_back_a_status_run(
    sandbox: Sandbox, run, instance, status_tick
):
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent
    started(instance, pushed_data_job.name)

    (request,) = status_tick().run_requests

    assert request.run_config["ops"]["messaging_messages"]["config"]["request_ids"] == [
        sent["requestId"]
    ]


def test_pending_sensor_skips_when_the_duckdb_file_does_not_exist(instance, duckdb_path: Path):
    result = tick(pending_status_sensor, instance)

    assert result.run_requests == []
    assert "does not exist yet" in result.skip_message
    assert not duckdb_path.exists()


@pytest.mark.e2e
def test_pending_sensor_skips_while_another_process_writes(
    sandbox: Sandbox, run, instance, duckdb_path: Path
):
    run("sms", config=run_config(sms=SEND))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(duckdb_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "open"
        result = tick(pending_status_sensor, instance)
    finally:
        writer.communicate(timeout=30)

    assert result.run_requests == []
    assert "is held by a writer" in result.skip_message
    assert f"PID {writer.pid}" in result.skip_message
    assert "credentials" not in result.skip_message
    assert len(tick(pending_status_sensor, instance).run_requests) == 1


@both_destinations
def test_a_run_holding_the_writers_pool_keeps_status_planning_off_duckdb_only(
    sandbox: Sandbox, run, instance, destination: Destination, status_tick
):
    run("sms", config=run_config(sms=SEND))
    writing = started(instance, pushed_data_job.name)
    # What a run's load step does before it opens the warehouse, this process being the run's.
    life = RunLife(instance, writing)
    try:
        instance.event_log_storage.claim_concurrency_slot(
            WRITER_POOL, writing, "messaging_messages"
        )
        result = status_tick()
    finally:
        life.stop()

    if destination.name == "duckdb":
        assert result.run_requests == []
        assert result.skip_message == (
            f"Run(s) {writing} hold the writers' pool {WRITER_POOL}: DuckDB lets no other "
            "process open the file while a run writes it, so the warehouse is read at a later "
            "tick."
        )
    else:
        # PostgreSQL lets readers and writers work side by side.
        assert len(result.run_requests) == 1


@pytest.mark.e2e
@pytest.mark.parametrize(
    "sensor", [pending_status_sensor, dead_writer_sensor], ids=lambda s: s.name
)
def test_a_status_run_killed_holding_the_pool_is_failed_and_freed_by_the_sensors(
    sensor, sandbox: Sandbox, run, instance, dagster_home: Path, tmp_path: Path
):
    run("sms", config=run_config(sms=SEND))
    killed = hold_the_pool(sandbox, "messages", dagster_home, tmp_path / "killed.log")
    killed.kill()
    killed.wait()
    dead = instance.get_runs()[0]

    result = tick(sensor, instance)

    assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    pool = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
    assert (pool.claimed_slots, pool.pending_steps) == ([], [])
    if sensor is dead_writer_sensor:
        assert result.skip_message.startswith(f"Run {dead.run_id}: its process {killed.pid} on ")
    assert len(tick(pending_status_sensor, instance).run_requests) == 1


def test_sms_sent_sensor_requests_a_status_run_after_a_send(sandbox: Sandbox, run, instance):
    sending = run("sms", config=run_config(sms=SEND))

    result = tick(sms_sent_sensor, instance)

    (request,) = result.run_requests
    assert request.run_key == f"sent-in-{sending.run_id}"


def test_sms_sent_sensor_skips_a_run_that_sent_nothing(sandbox: Sandbox, run, instance):
    quiet = run("sms")

    result = tick(sms_sent_sensor, instance)

    assert result.run_requests == []
    assert result.skip_message == f"Run {quiet.run_id} sent nothing."


def test_sms_sent_sensor_skips_when_the_send_run_looked_statuses_up(
    sandbox: Sandbox, run, instance
):
    both = run("sms", "messages", config=run_config(sms=SEND))

    result = tick(sms_sent_sensor, instance)

    assert result.run_requests == []
    assert result.skip_message == f"Run {both.run_id} looked the new statuses up itself."


def test_sms_sent_sensor_leaves_a_send_to_its_pushed_report(
    sandbox: Sandbox, run, instance, reports_pushed
):
    sending = run("sms", config=run_config(sms=SEND))

    result = tick(sms_sent_sensor, instance)

    assert result.run_requests == []
    assert result.skip_message == (
        f"Run {sending.run_id} sent 1 message(s) asking for delivery reports: they are pushed, "
        "and pending_status_sensor looks a message up only once its report is overdue."
    )


def test_landed_files_sensor_requests_one_run_for_new_files_and_none_again_for_them(
    sandbox: Sandbox, landed: Landing, instance, warehouse: Warehouse
):
    assert tick(landed_files_sensor, instance).skip_message.startswith("Nothing has landed in ")
    landed.land(DELIVERY_REPORTS, report("r-1", "DELIVERED"))
    newest = landed.land(INBOUND_MESSAGES, INBOUND)

    first = tick(landed_files_sensor, instance)
    (request,) = first.run_requests
    job = defs.get_job_def(landed_files_sensor.job_name)
    assert job.execute_in_process(instance=instance, run_config=request.run_config).success
    again = tick(landed_files_sensor, instance, cursor=first.cursor)

    assert again.run_requests == []
    assert again.skip_message.endswith(f"the newest file is still inbound_messages/{newest.name}.")
    assert warehouse.rows("SELECT request_id, status FROM messaging.messages") == [
        ("r-1", "DELIVERED")
    ]
    assert warehouse.scalar("SELECT count(*) FROM messaging.inbound_messages") == 1
    assert sandbox.requests == []
    # A file written before the newest one, renamed into place only now: the next run reads it.
    late = landed.land(DELIVERY_REPORTS, report("r-2", "ACCEPTED"))
    written = newest.stat().st_mtime - 1
    os.utime(late, (written, written))
    (late_run,) = tick(landed_files_sensor, instance, cursor=first.cursor).run_requests
    assert late_run.run_key != request.run_key
    # Whatever the cursor says, the same files are the same run: Dagster never starts it twice.
    assert tick(landed_files_sensor, instance).run_requests[0].run_key == late_run.run_key
