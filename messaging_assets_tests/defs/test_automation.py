"""Schedules, freshness policies and automation conditions, as the daemon would see them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    build_schedule_context,
    evaluate_automation_conditions,
)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

from messaging_assets.definitions import defs
from messaging_assets.defs.automation import freshness_policy
from messaging_assets.defs.jobs import PUSHED_RUN_CONFIG
from messaging_assets.defs.schedules import (
    message_status_schedule,
    pushed_data_schedule,
    reference_data_schedule,
)
from messaging_assets.defs.sensors import landed_files_sensor, messaging_automation_sensor
from messaging_assets.sandbox import Sandbox
from messaging_assets.settings import AutomationSettings, automation_settings
from messaging_assets_tests.conftest import run_config
from messaging_assets_tests.defs.test_sensors import SEND, status_schedule_tick

REFERENCE = {AssetKey(["messaging", n]) for n in ("contacts", "phones", "registrations")}
MESSAGES = AssetKey(["messaging", "messages"])
SMS = AssetKey(["messaging", "sms"])
PUSHED = {AssetKey(["messaging", n]) for n in ("delivery_reports", "inbound_messages")}
OPT_OUTS = AssetKey(["messaging", "opt_outs"])


@pytest.fixture
def instance(persistent_instance: DagsterInstance) -> DagsterInstance:
    return persistent_instance


def selected_assets(job_name: str) -> set[AssetKey]:
    return set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)


def test_reference_schedule_runs_daily_at_two_utc_selecting_only_reference_data():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    )

    (request,) = reference_data_schedule.evaluate_tick(context).run_requests

    assert (reference_data_schedule.cron_schedule, reference_data_schedule.execution_timezone) == (
        "0 2 * * *",
        "UTC",
    )
    assert request.job_name in (None, reference_data_schedule.job_name)
    assert selected_assets(reference_data_schedule.job_name) == REFERENCE


def test_message_status_schedule_selects_only_messages_more_often_than_its_warn_window():
    assert selected_assets(message_status_schedule.job_name) == {MESSAGES}
    assert message_status_schedule.cron_schedule == "*/20 * * * *"


def test_no_schedule_or_sensor_can_send():
    jobs = {s.job_name for s in defs.schedules} | {s.job_name for s in defs.sensors if s.has_jobs}

    assert all(SMS not in selected_assets(job) for job in jobs)
    assert SMS not in messaging_automation_sensor.asset_selection.resolve(
        defs.resolve_asset_graph()
    )


def test_schedules_and_automation_sensor_run_by_default():
    assert {s.name: s.default_status for s in defs.schedules} == {
        "reference_data_schedule": DefaultScheduleStatus.RUNNING,
        "message_status_schedule": DefaultScheduleStatus.RUNNING,
        "pushed_data_schedule": DefaultScheduleStatus.RUNNING,
    }
    assert messaging_automation_sensor.default_status == DefaultSensorStatus.RUNNING


def test_pushed_data_loads_with_messages_and_opt_outs_asking_the_api_nothing_fresh_in_30_min():
    assert landed_files_sensor.job_name == pushed_data_schedule.job_name
    assert landed_files_sensor.default_status == DefaultSensorStatus.RUNNING
    assert selected_assets(pushed_data_schedule.job_name) == PUSHED | {MESSAGES, OPT_OUTS}
    assert defs.resolve_job_def(pushed_data_schedule.job_name).run_config == PUSHED_RUN_CONFIG
    assert pushed_data_schedule.cron_schedule == "*/20 * * * *"
    graph = defs.resolve_asset_graph()
    for key in PUSHED:
        policy = graph.get(key).freshness_policy
        assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (
            timedelta(minutes=30),
            timedelta(hours=1),
        )
        assert graph.get(key).automation_condition is None
    assert graph.get(MESSAGES).parent_keys == {SMS, AssetKey(["messaging", "delivery_reports"])}


def test_status_schedule_run_with_nothing_pending_succeeds_without_calling_the_api(
    sandbox: Sandbox, duckdb_path, instance
):
    job = defs.resolve_job_def(message_status_schedule.job_name)

    result = job.execute_in_process(instance=instance)

    assert result.success
    assert sandbox.requests == []


def test_status_schedule_without_reports_pushed_requests_a_run_for_every_pending_message(
    instance,
):
    (request,) = message_status_schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=datetime.now(timezone.utc)
        )
    ).run_requests

    # No request ids in its config: the run asks about every stored message not yet final.
    assert request.run_config == {}


def test_status_schedule_with_reports_pushed_skips_while_no_report_is_overdue(
    sandbox: Sandbox, run, instance, reports_pushed
):
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent

    result = message_status_schedule.evaluate_tick(
        build_schedule_context(
            instance=instance, scheduled_execution_time=datetime.now(timezone.utc)
        )
    )

    assert result.run_requests == []
    assert result.skip_message.startswith(
        f"No pending message is due for a status check. Next checks: {sent['requestId']} at "
    )


def test_status_schedule_with_reports_pushed_looks_up_only_messages_whose_report_is_overdue(
    sandbox: Sandbox, run, instance, reports_pushed
):
    # Pending but dated 2024, long past validity: what the schedule used to ask about too.
    run("messages", config=run_config(request_ids=sandbox.add_messages(1)))
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent

    (request,) = status_schedule_tick(instance).run_requests
    sandbox.reset()
    run("messages", config=request.run_config)

    assert request.tags["messaging/due_sample"] == sent["requestId"]
    assert [r.path.rsplit("/", 1)[-1] for r in sandbox.requests] == [sent["requestId"]]


def test_settings_come_from_dlt_config_environment_variables(monkeypatch):
    monkeypatch.setenv("MESSAGING__AUTOMATION__REFERENCE_CRON", "30 4 * * 1")
    monkeypatch.setenv("MESSAGING__AUTOMATION__SCHEDULE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("MESSAGING__AUTOMATION__REFERENCE_WARN_HOURS", "12")
    monkeypatch.setenv("MESSAGING__AUTOMATION__VALIDITY_HOURS", "24")
    monkeypatch.setenv("MESSAGING__AUTOMATION__ROW_DROP_SHARE", "0.6")

    settings = automation_settings()

    assert (settings.reference_cron, settings.schedule_timezone) == ("30 4 * * 1", "Europe/Berlin")
    assert settings.reference_warn == timedelta(hours=12)
    assert settings.give_up_after == timedelta(hours=26)
    assert settings.row_drop_share == 0.6


def test_reference_data_warns_at_25_hours_and_fails_at_26():
    graph = defs.resolve_asset_graph()

    for key in REFERENCE:
        policy = graph.get(key).freshness_policy
        assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (
            timedelta(hours=25),
            timedelta(hours=26),
        )


def test_messages_warn_at_30_minutes_and_fail_at_an_hour_without_automation():
    node = defs.resolve_asset_graph().get(MESSAGES)

    policy = node.freshness_policy
    assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (
        timedelta(minutes=30),
        timedelta(hours=1),
    )
    assert node.automation_condition is None


def test_sms_has_no_freshness_policy_and_no_automation():
    node = defs.resolve_asset_graph().get(SMS)

    assert (node.freshness_policy, node.automation_condition) == (None, None)


def test_freshness_windows_follow_the_settings():
    settings = AutomationSettings(status_warn_minutes=10, status_fail_minutes=20)

    policy = freshness_policy("status", settings)

    assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (
        timedelta(minutes=10),
        timedelta(minutes=20),
    )


def test_reference_asset_that_went_stale_is_requested_once(instance: DagsterInstance):
    contacts = AssetKey(["messaging", "contacts"])
    fresh = evaluate_automation_conditions(defs=defs, instance=instance)
    # What the freshness daemon records when the warn window passes.
    instance._report_runless_asset_event(
        FreshnessStateChange(
            key=contacts,
            previous_state=FreshnessState.PASS,
            new_state=FreshnessState.WARN,
            state_change_timestamp=datetime.now(timezone.utc).timestamp(),
        )
    )

    stale = evaluate_automation_conditions(defs=defs, instance=instance, cursor=fresh.cursor)
    again = evaluate_automation_conditions(defs=defs, instance=instance, cursor=stale.cursor)

    assert fresh.total_requested == 0
    assert stale.get_requested_partitions(contacts) == {None}
    assert stale.total_requested == 1
    assert again.total_requested == 0
