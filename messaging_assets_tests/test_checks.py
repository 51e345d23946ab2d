"""Asset checks run with their asset's materialization and fail on data that breaks them."""

from __future__ import annotations

from dagster import AssetCheckSeverity, AssetKey, ExecuteInProcessResult
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import run_config

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}


def check(result: ExecuteInProcessResult, table: str, name: str) -> AssetCheckEvaluation:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == AssetKey(["messaging", table]) and e.check_name == name
    ]
    return evaluation


def metadata(evaluation: AssetCheckEvaluation) -> dict:
    return {key: value.value for key, value in evaluation.metadata.items()}


def test_checks_run_after_their_asset_in_the_same_run_and_pass_on_good_data(sandbox, run):
    result = run(
        "sms", "messages", "contacts", "phones", "registrations", config=run_config(sms=SEND)
    )

    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    evaluations = result.get_asset_check_evaluations()
    assert steps[-1] == "messaging_checks"
    assert len(evaluations) == 10
    assert all(e.passed for e in evaluations), [
        (e.asset_key, e.check_name) for e in evaluations if not e.passed
    ]


def test_only_the_materialized_assets_checks_run(sandbox: Sandbox, run):
    result = run("phones")

    assert {(e.asset_key.path[-1], e.check_name) for e in result.get_asset_check_evaluations()} == {
        ("phones", "primary_key_unique_not_null"),
        ("phones", "current_rows_not_dropped"),
    }


def test_duplicate_current_primary_keys_fail_the_key_check(sandbox: Sandbox, run, monkeypatch):
    # A key that is not unique in the provider's data: several numbers share a country.
    monkeypatch.setenv("SOURCES__MESSAGING__PHONES__PRIMARY_KEY", "country")

    result = run("phones")

    evaluation = check(result, "phones", "primary_key_unique_not_null")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    found = metadata(evaluation)
    assert found["primary_key"] == "country"
    assert found["duplicated_keys"] > 0
    assert found["null_keys"] == 0


def test_status_outside_the_known_set_fails_the_status_check(sandbox: Sandbox, run):
    (request_id,) = sandbox.add_messages(1)
    # The provider starts answering with a status this project does not know.
    sandbox.inject("messages", Fault.UNKNOWN_STATUS, times=1)

    result = run("messages", config=run_config(request_ids=[request_id]))

    evaluation = check(result, "messages", "status_known")
    assert not evaluation.passed
    assert metadata(evaluation)["unknown_statuses"] == "SCHEDULED (1)"


def test_message_not_final_past_its_validity_warns(sandbox: Sandbox, run):
    # The sandbox dates its messages in 2024: one still ACCEPTED is long past 48 h.
    (request_id,) = sandbox.add_messages(1)

    result = run("messages", config=run_config(request_ids=[request_id]))

    evaluation = check(result, "messages", "final_within_validity")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert metadata(evaluation)["overdue_sample"] == request_id


def test_fresh_send_not_yet_final_is_within_validity(sandbox: Sandbox, run):
    result = run("sms", "messages", config=run_config(sms=SEND))

    assert check(result, "messages", "final_within_validity").passed


def test_current_rows_dropping_by_more_than_the_share_warns(sandbox: Sandbox, run):
    run("contacts")
    sandbox.set_contact_count(60)

    result = run("contacts")

    evaluation = check(result, "contacts", "current_rows_not_dropped")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    found = metadata(evaluation)
    assert (found["previous_load_rows"], found["current_rows"], found["dropped_share"]) == (
        120,
        60,
        0.5,
    )


def test_a_few_rows_deleted_upstream_pass_the_drop_check(sandbox: Sandbox, run, warehouse):
    run("contacts")
    sandbox.remove_contact(warehouse.scalar("SELECT min(contact_id) FROM messaging.contacts"))

    result = run("contacts")

    evaluation = check(result, "contacts", "current_rows_not_dropped")
    assert evaluation.passed
    assert metadata(evaluation)["current_rows"] == 119
