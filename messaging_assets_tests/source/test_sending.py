"""Sending is billed: a send the API accepted is never lost and never repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ReexecutionOptions,
    define_asset_job,
    execute_job,
    reconstructable,
)

from messaging_assets.definitions import defs
from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import (
    API_KEY,
    REPO_ROOT,
    Warehouse,
    both_destinations,
    failure_text,
    materialize_command,
    metadata_of,
    point_at,
    run_config,
)

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}
SEND_ENV = {"SOURCES__MESSAGING__SMS__TO": SEND["to"], "SOURCES__MESSAGING__SMS__FROM": "ACME"}
STORED = "SELECT reference, request_id, outcome, note FROM messaging.sms ORDER BY reference"


def test_send_accepted_without_a_body_is_stored_with_a_note_and_never_looked_up(
    run, warehouse: Warehouse, monkeypatch
):
    with Sandbox(api_key=API_KEY, shape="provider", send_answer="empty_201") as api:
        point_at(api, monkeypatch)

        result = run("sms", "messages", config=run_config(sms=SEND))

        (sent,) = api.sent
        assert api.count("messages") == 0
    ((reference, request_id, outcome, note),) = warehouse.rows(STORED)
    assert (reference, request_id, outcome) == (sent["reference"], None, "accepted")
    assert note == "accepted without an answer body: no requestId, so no status can be looked up"
    assert metadata_of(result, "sms")["sent"] == 1


@both_destinations
def test_send_whose_answer_cannot_be_read_is_stored_not_sent_again(
    sandbox: Sandbox, run, warehouse
):
    sandbox.inject("sms", Fault.MALFORMED_JSON, times=1)

    run("sms", config=run_config(sms=SEND))
    run("sms")

    (sent,) = sandbox.sent
    ((reference, request_id, outcome, note),) = warehouse.rows(STORED)
    assert (reference, request_id, outcome) == (sent["reference"], None, "accepted")
    assert note.startswith("accepted; the answer was not understood: messaging/sms: GET")


def test_refused_send_is_not_billed_and_may_be_sent_again(sandbox: Sandbox, run, warehouse):
    sandbox.inject("sms", Fault.SERVER_ERROR, times=1, status=400)

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))
    run("sms", config=run_config(sms=SEND))

    assert "messaging/sms: GET /messaging/v1/sms answered 400" in message
    assert len(sandbox.sent) == 1
    assert [row[2] for row in warehouse.rows(STORED)] == ["accepted"]


SMS, MESSAGES = AssetKey(["messaging", "sms"]), AssetKey(["messaging", "messages"])


def send_job():
    job = define_asset_job("send_and_look_up", selection=AssetSelection.assets(SMS, MESSAGES))
    return Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def(job.name)


def test_reexecuting_a_run_that_sent_never_sends_again(
    sandbox: Sandbox, persistent_instance: DagsterInstance, warehouse: Warehouse
):
    # The run sends, then fails looking the status up; its re-execution re-runs every step.
    sandbox.inject("messages", Fault.SERVER_ERROR, status=400)
    config = run_config(sms=SEND)
    first = execute_job(
        reconstructable(send_job),
        instance=persistent_instance,
        run_config=config,
        raise_on_error=False,
    )
    sandbox.clear_faults()

    again = execute_job(
        reconstructable(send_job),
        instance=persistent_instance,
        run_config=config,
        reexecution_options=ReexecutionOptions(
            parent_run_id=first.run_id, step_selection=["messaging_sms", "messaging_messages"]
        ),
    )

    assert not first.success and again.success
    assert len(sandbox.sent) == 1
    assert warehouse.scalar("SELECT count(*) FROM messaging.sms") == 1
    (note,) = [
        m.metadata["note"].value
        for m in again.asset_materializations_for_node("messaging_sms")
        if "note" in m.metadata
    ]
    assert note.startswith(f"Run {first.run_id} already sent this run's message")


@pytest.mark.e2e
def test_two_sends_at_the_same_moment_are_both_stored(
    sandbox: Sandbox, duckdb_path: Path, tmp_path: Path, warehouse: Warehouse
):
    # Each with a Dagster home of its own, sharing the DuckDB file and dlt's working directory.
    sandbox.set_latency("sms", 0.5)
    launched = []
    for n in range(2):
        home = tmp_path / f"home-{n}"
        home.mkdir()
        launched.append(
            subprocess.Popen(
                materialize_command("messaging/sms"),
                cwd=REPO_ROOT,
                env={**os.environ, **SEND_ENV, "DAGSTER_HOME": str(home)},
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    errors = [process.communicate(timeout=300)[1] for process in launched]

    assert [process.returncode for process in launched] == [0, 0], errors

    assert len(sandbox.sent) == 2
    assert sorted(row[0] for row in warehouse.rows(STORED)) == sorted(
        sent["reference"] for sent in sandbox.sent
    )


@pytest.mark.e2e
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_send_interrupted_after_the_request_left_is_stored_by_the_next_run(
    sandbox: Sandbox, duckdb_path: Path, tmp_path: Path, run, warehouse: Warehouse, stop
):
    sandbox.set_latency("sms", 3)
    process = subprocess.Popen(
        materialize_command("messaging/sms"),
        cwd=REPO_ROOT,
        env={**os.environ, **SEND_ENV, "DAGSTER_HOME": str(tmp_path)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while sandbox.count("sms") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(stop)
    error = process.communicate(timeout=60)[1]
    while not sandbox.sent and time.monotonic() < deadline:
        time.sleep(0.05)  # the sandbox finishes the send the client stopped waiting for

    run("sms")

    (sent,) = sandbox.sent
    assert process.returncode != 0
    assert f"Ask the provider for reference `{sent['reference']}`" in error
    ((reference, request_id, outcome, note),) = warehouse.rows(STORED)
    assert (reference, request_id, outcome) == (sent["reference"], None, "unknown")
    assert note == "interrupted while waiting for the answer"
    assert sandbox.count("sms") == 1
