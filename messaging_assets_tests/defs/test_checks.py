"""Asset checks run with their asset's materialization and fail on data that breaks them, on
DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetCheckSeverity

from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.receiver.landing import DELIVERY_REPORTS, INBOUND_MESSAGES
from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import (
    Landing,
    Warehouse,
    both_destinations,
    check,
    check_metadata,
    run_config,
)
from messaging_assets_tests.source.test_opt_outs import SENT, reply
from messaging_assets_tests.source.test_pushed import report

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}


@both_destinations
def test_checks_run_after_their_asset_in_the_same_run_and_pass_on_good_data(sandbox, run):
    result = run(
        "sms", "messages", "contacts", "phones", "registrations", config=run_config(sms=SEND)
    )

    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    evaluations = result.get_asset_check_evaluations()
    assert steps[-1] == "messaging_checks"
    assert len(evaluations) == 12
    assert all(e.passed for e in evaluations), [
        (e.asset_key, e.check_name) for e in evaluations if not e.passed
    ]


def test_only_the_materialized_assets_checks_run(sandbox: Sandbox, run):
    result = run("phones")

    assert {(e.asset_key.path[-1], e.check_name) for e in result.get_asset_check_evaluations()} == {
        ("phones", "primary_key_unique_not_null"),
        ("phones", "values_keep_their_types"),
    }


@both_destinations
def test_duplicate_primary_keys_fail_the_key_check(sandbox: Sandbox, run, warehouse: Warehouse):
    (done,) = sandbox.add_messages(1, final=True)
    run("messages", config=run_config(request_ids=[done]))
    # The API answers one status per id, so the duplicate is written by hand, as a bad manual
    # fix would leave it; the next run looks nothing up (the status is final) and keeps it.
    warehouse.execute(
        "INSERT INTO messaging.messages (request_id, status, _dlt_load_id, _dlt_id) "
        "SELECT request_id, status, _dlt_load_id, 'copy' FROM messaging.messages"
    )

    result = run("messages")

    evaluation = check(result, "messages", "primary_key_unique_not_null")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    found = check_metadata(evaluation)
    assert (found["primary_key"], found["duplicated_keys"], found["null_keys"]) == (
        "request_id",
        1,
        0,
    )
    assert found["duplicated_sample"] == done


@both_destinations
def test_value_that_does_not_fit_its_type_is_kept_and_fails_the_values_check(
    sandbox, run, warehouse
):
    first, second = sandbox.add_messages(2)
    sandbox.inject("messages", Fault.ODD_VALUE, times=1)

    result = run("messages", config=run_config(request_ids=[first, second]))

    assert warehouse.scalar("SELECT count(*) FROM messaging.messages") == 2
    evaluation = check(result, "messages", "values_keep_their_types")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    details = check_metadata(evaluation)["details"]
    assert (
        "messages.overall_price: text values in 1 current row(s), where the column is decimal; "
        "they are kept in overall_price__v_text"
    ) in details
    assert (
        "messages.submit_date: text values in 1 current row(s), where the column is timestamp; "
        "they are kept in submit_date__v_text"
    ) in details
    odd = warehouse.scalar(
        "SELECT request_id FROM messaging.messages WHERE overall_price__v_text = 'n/a'"
    )
    assert f"(e.g. request_id {odd})" in details


@both_destinations
def test_status_outside_the_known_set_fails_the_status_check(sandbox: Sandbox, run):
    (request_id,) = sandbox.add_messages(1)
    # The provider starts answering with a status this project does not know.
    sandbox.inject("messages", Fault.UNKNOWN_STATUS, times=1)

    result = run("messages", config=run_config(request_ids=[request_id]))

    evaluation = check(result, "messages", "status_known")
    assert not evaluation.passed
    assert check_metadata(evaluation)["unknown_statuses"] == "SCHEDULED (1)"


@both_destinations
def test_message_not_final_past_its_validity_warns(sandbox: Sandbox, run):
    # The sandbox dates its messages in 2024: one still ACCEPTED is long past 48 h.
    (request_id,) = sandbox.add_messages(1)

    result = run("messages", config=run_config(request_ids=[request_id]))

    evaluation = check(result, "messages", "final_within_validity")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert check_metadata(evaluation)["overdue_sample"] == request_id


def test_fresh_send_not_yet_final_is_within_validity(sandbox: Sandbox, run):
    result = run("sms", "messages", config=run_config(sms=SEND))

    assert check(result, "messages", "final_within_validity").passed


@both_destinations
def test_unreadable_events_are_kept_and_fail_their_endpoints_check_while_recent(
    run, landed: Landing, warehouse: Warehouse
):
    now = datetime.now(timezone.utc)
    mixed = landed.land(
        DELIVERY_REPORTS, "not JSON", report("r-1", "DELIVERED"), {"requestId": 5}, b"\xff\xfe"
    )
    # A landed line cut short (a broken copy of the landing zone): kept too, dated by its file.
    cut = landed.write(DELIVERY_REPORTS, b'{"received_at": "2026-01-0', datetime.now(timezone.utc))
    # Older than the check's window: kept, but no longer failing the check.
    landed.land(INBOUND_MESSAGES, {"from": "+48600700800"}, received_at=now - timedelta(days=8))

    result = run("delivery_reports", "inbound_messages")

    rows = warehouse.rows(
        "SELECT endpoint, landed_file, landed_line, problem, body, body_base64 "
        "FROM messaging.unreadable_events ORDER BY endpoint, landed_file, landed_line"
    )
    reports = f"delivery_reports/{mixed.name}"
    assert [row[:3] for row in rows] == [
        ("delivery_reports", reports, 1),
        ("delivery_reports", reports, 3),
        ("delivery_reports", reports, 4),
        ("delivery_reports", f"delivery_reports/{cut.name}", 1),
        ("inbound_messages", rows[-1][1], 1),
    ]
    assert [row[4:] for row in rows[:3]] == [
        ("not JSON", None),
        ('{"requestId": 5}', None),
        (None, "//4="),
    ]
    assert rows[1][3] == "requestId is not a non-empty string: 5"
    assert "not a landed event" in rows[3][3]
    assert warehouse.scalar("SELECT request_id FROM messaging.delivery_reports") == "r-1"
    evaluation = check(result, "delivery_reports", "no_recent_unreadable_events")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    found = check_metadata(evaluation)
    assert (found["unreadable_events"], found["endpoint"]) == (4, "delivery_reports")
    assert f"{reports}:1 (not JSON" in found["sample"]
    assert AUTOMATION.unreadable_window_days == found["window_days"] == 7
    assert check(result, "inbound_messages", "no_recent_unreadable_events").passed


@both_destinations
@pytest.mark.parametrize(
    ("submitted_minutes", "passed"),
    [pytest.param(-30, True, id="before-the-opt-out"), pytest.param(30, False, id="after-it")],
)
def test_a_report_of_another_senders_message_after_an_opt_out_fails_the_check(
    run, landed: Landing, submitted_minutes: int, passed: bool
):
    landed.land(INBOUND_MESSAGES, reply("stop-1", "STOP", 0, sender="+4915112345678"))
    submitted = SENT + timedelta(minutes=submitted_minutes)
    # Another system using the account, which wrote the number its own way.
    landed.land(
        DELIVERY_REPORTS,
        report(
            "r-1",
            "DELIVERED",
            to="0049 151 12345678",
            **{"from": "OTHERAPP", "submitDate": submitted.isoformat()},
        ),
    )

    result = run("inbound_messages", "delivery_reports", "opt_outs")

    evaluation = check(result, "opt_outs", "no_messages_to_opted_out_numbers")
    assert evaluation.passed is passed
    if not passed:
        assert check_metadata(evaluation) == {
            "messages": 1,
            "numbers": 1,
            "sender_ids": "OTHERAPP",
            "sample": f"r-1 from OTHERAPP to +49151****678 at {submitted.isoformat()}",
        }


def test_a_send_made_with_the_opt_out_override_passes_the_check(
    sandbox, run, landed: Landing, warehouse: Warehouse
):
    landed.land(INBOUND_MESSAGES, reply("stop-1", "STOP", 0, sender=SEND["to"]))
    run("inbound_messages", "opt_outs")
    run("sms", config=run_config(sms={**SEND, "send_to_opted_out": True}))
    request_id = warehouse.scalar("SELECT request_id FROM messaging.sms")
    now = datetime.now(timezone.utc).isoformat()
    landed.land(DELIVERY_REPORTS, report(request_id, "DELIVERED", submitDate=now))

    result = run("delivery_reports", "opt_outs")

    assert check(result, "opt_outs", "no_messages_to_opted_out_numbers").passed
