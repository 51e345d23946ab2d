"""When the status sensor asks again: back-off by age, giving up past validity, real rows; with
delivery reports pushed, only once a report is overdue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from messaging_assets.defs.status_plan import (
    REPORTS_PUSHED,
    PendingMessage,
    pending_messages,
    plan_status_checks,
)
from messaging_assets.sandbox import Sandbox
from messaging_assets.settings import AutomationSettings
from messaging_assets.warehouse.connection import read
from messaging_assets_tests.conftest import run_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = AutomationSettings()
SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}


def message(
    submitted_ago: timedelta, checked_ago: timedelta | None, status: str = "BUFFERED"
) -> PendingMessage:
    checked = NOW - checked_ago if checked_ago is not None else None
    return PendingMessage("rid", status, NOW - submitted_ago, checked)


def test_message_never_checked_is_due_at_once():
    plan = plan_status_checks([message(timedelta(seconds=5), None)], NOW, SETTINGS)

    assert plan.due == ["rid"]


def test_message_sent_minutes_ago_is_checked_again_after_a_minute():
    young = message(timedelta(minutes=2), checked_ago=timedelta(seconds=30))

    plan = plan_status_checks([young], NOW, SETTINGS)

    assert plan.waiting == [(NOW + timedelta(seconds=30), "rid")]
    assert plan_status_checks([young], NOW + timedelta(seconds=31), SETTINGS).due == ["rid"]


def test_message_sent_a_day_ago_waits_hours_between_checks():
    old = message(timedelta(hours=24), checked_ago=timedelta(hours=1))

    plan = plan_status_checks([old], NOW, SETTINGS)

    assert plan.waiting == [(NOW + timedelta(hours=5), "rid")]


def test_message_past_validity_and_margin_is_no_longer_polled():
    within = message(timedelta(hours=49), checked_ago=timedelta(hours=7))
    past = PendingMessage("past", "BUFFERED", NOW - timedelta(hours=50, minutes=1), None)

    plan = plan_status_checks([within, past], NOW, SETTINGS)

    assert (plan.due, plan.given_up) == (["rid"], ["past"])
    assert "1 message(s) past validity + margin are no longer polled" in plan.describe()


def test_requested_look_up_holds_a_message_back_like_a_check():
    young = message(timedelta(minutes=2), checked_ago=None)

    plan = plan_status_checks([young], NOW, SETTINGS, requested={"rid": NOW})

    assert plan.due == []
    assert plan.describe().endswith(
        f"Next checks: rid at {(NOW + timedelta(minutes=1)):%Y-%m-%dT%H:%M:%SZ}."
    )


def test_stored_sends_are_pending_until_their_status_is_final(sandbox: Sandbox, run, duckdb_path):
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent
    with read() as warehouse:
        before_lookup = pending_messages(warehouse)

    for _ in range(3):
        run("messages")

    with read() as warehouse:
        assert pending_messages(warehouse) == []
    (pending,) = before_lookup
    assert (pending.request_id, pending.status, pending.checked_at) == (
        sent["requestId"],
        "ACCEPTED",
        None,
    )
    assert datetime.now(timezone.utc) - pending.submitted_at < timedelta(minutes=5)


def test_unknown_message_is_not_pending(sandbox: Sandbox, run, duckdb_path):
    (forgotten,) = sandbox.add_messages(1)
    sandbox.expire(forgotten)

    run("messages", config=run_config(request_ids=[forgotten]))

    with read() as warehouse:
        assert pending_messages(warehouse) == []


# With delivery reports pushed: look-ups only reconcile


def test_without_reports_a_new_send_is_due_at_once_as_before():
    fresh = message(timedelta(seconds=5), None, status="ACCEPTED")

    assert REPORTS_PUSHED is False  # no SOURCES__MESSAGING__RECEIVER__PUBLIC_URL in the tests
    assert plan_status_checks([fresh], NOW, SETTINGS).due == ["rid"]
    assert plan_status_checks([fresh], NOW, SETTINGS, reports_pushed=False).due == ["rid"]


def test_with_reports_a_message_without_its_report_is_due_only_once_it_is_overdue():
    sent = message(timedelta(seconds=5), None, status="ACCEPTED")
    overdue = NOW - timedelta(seconds=5) + timedelta(minutes=15)

    plan = plan_status_checks([sent], NOW, SETTINGS, reports_pushed=True)
    just_before = overdue - timedelta(seconds=1)

    assert (plan.due, plan.waiting) == ([], [(overdue, "rid")])
    assert plan_status_checks([sent], just_before, SETTINGS, reports_pushed=True).due == []
    assert plan_status_checks([sent], overdue, SETTINGS, reports_pushed=True).due == ["rid"]


def test_with_reports_a_message_still_accepted_after_its_overdue_look_up_backs_off():
    # Looked up at 15 minutes, still ACCEPTED: a quarter of its age later, as without reports.
    late = message(timedelta(minutes=16), checked_ago=timedelta(minutes=1), status="ACCEPTED")

    plan = plan_status_checks([late], NOW, SETTINGS, reports_pushed=True)

    assert plan.waiting == [(NOW + timedelta(minutes=3), "rid")]


def test_with_reports_a_buffered_message_is_due_once_its_validity_ends():
    # Its BUFFERED report (or an overdue look-up) came; its final report may come any time until
    # the provider expires it, so only then is it overdue, whatever look-ups came before.
    buffered = message(timedelta(hours=1), checked_ago=timedelta(minutes=45))
    overdue = NOW - timedelta(hours=1) + timedelta(hours=48, minutes=15)

    plan = plan_status_checks([buffered], NOW, SETTINGS, reports_pushed=True)

    assert plan.waiting == [(overdue, "rid")]
    assert plan_status_checks([buffered], overdue, SETTINGS, reports_pushed=True).due == ["rid"]
    later = overdue + timedelta(hours=2)
    assert plan_status_checks([buffered], later, SETTINGS, reports_pushed=True).given_up == ["rid"]


def test_with_reports_a_message_whose_final_state_is_stored_is_never_due(
    sandbox: Sandbox, run, duckdb_path
):
    run("sms", config=run_config(sms=SEND))
    run("sms", config=run_config(sms={**SEND, "message": "second"}))
    (final, pending) = [sent["requestId"] for sent in sandbox.sent]
    only_final = {"request_ids": [final], "only_request_ids": True}
    for _ in range(3):
        run("messages", config={"ops": {"messaging_messages": {"config": only_final}}})

    with read() as warehouse:
        stored = pending_messages(warehouse)
    plans = [
        plan_status_checks(stored, NOW + timedelta(hours=hours), SETTINGS, reports_pushed=True)
        for hours in (0, 1, 49)
    ]

    assert [m.request_id for m in stored] == [pending]
    assert all(final not in [*plan.due, *(rid for _, rid in plan.waiting)] for plan in plans)
