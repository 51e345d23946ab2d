"""Sending is billed: a send the API accepted is never lost and never repeated."""

from __future__ import annotations

import json
import logging
import os
import secrets
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
from messaging_assets.receiver import landing
from messaging_assets.receiver.landing import INBOUND_MESSAGES
from messaging_assets.sandbox import Fault, ReportTiming, Sandbox
from messaging_assets.sandbox.wait import wait_until_pushed
from messaging_assets_tests.conftest import (
    API_KEY,
    REPO_ROOT,
    Landing,
    Receiver,
    Warehouse,
    both_destinations,
    failure_text,
    free_port,
    materialize_cli,
    materialize_command,
    metadata_of,
    point_at,
    run_config,
)
from messaging_assets_tests.conftest import TOKEN as RECEIVER_TOKEN
from messaging_assets_tests.source.test_opt_outs import reply

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


# Sends that ask for delivery reports (SOURCES__MESSAGING__RECEIVER__PUBLIC_URL)

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def receiver_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """PUBLIC_URL and the token set, the way a user sets them; nothing listens there."""
    public_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__PUBLIC_URL", public_url)
    return public_url


def sends(sandbox: Sandbox) -> list:
    return [request for request in sandbox.requests if request.endpoint == "sms"]


def test_with_public_url_a_send_carries_its_delivery_report_url(
    sandbox: Sandbox, run, duckdb_path, receiver_url: str
):
    run("sms", config=run_config(sms=SEND))

    (request,) = sends(sandbox)
    assert request.params["callbackUrl"] == f"{receiver_url}/{TOKEN}/delivery-reports"
    assert request.params["callbackMethod"] == "POST"


def test_without_public_url_a_send_carries_no_callback(sandbox: Sandbox, run, duckdb_path):
    run("sms", config=run_config(sms=SEND))

    (request,) = sends(sandbox)
    assert not {"callbackUrl", "callbackMethod"} & request.params.keys()


def test_public_url_without_a_token_fails_the_send_before_anything_is_sent(
    sandbox: Sandbox, run, duckdb_path, monkeypatch
):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__PUBLIC_URL", "https://hooks.example.com")

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))

    assert "SOURCES__MESSAGING__RECEIVER__TOKEN is not set" in message
    assert sends(sandbox) == []


def test_a_send_that_never_arrived_names_its_url_without_the_token(
    sandbox: Sandbox, run, duckdb_path, receiver_url: str, monkeypatch
):
    # A connection error quotes the URL, query and all: the callbackUrl with the token.
    monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))

    assert "callbackUrl=http%3A%2F%2F127.0.0.1%3A" in message
    assert "%2F***%2Fdelivery-reports" in message
    assert TOKEN not in message


def test_urllib3_debug_log_shows_the_send_without_the_token(
    sandbox: Sandbox, run, duckdb_path, receiver_url: str, caplog
):
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")

    run("sms", config=run_config(sms=SEND))

    (line,) = [r.getMessage() for r in caplog.records if "/messaging/v1/sms?" in r.getMessage()]
    assert "%2F***%2Fdelivery-reports" in line
    assert TOKEN not in caplog.text


@pytest.mark.e2e
def test_a_sends_delivery_reports_land_in_the_receiver(
    sandbox: Sandbox, run, duckdb_path, tmp_path: Path, monkeypatch
):
    receiver = Receiver(tmp_path / "landing", tmp_path / "receiver.log").start()
    try:
        monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", RECEIVER_TOKEN)
        monkeypatch.setenv(
            "SOURCES__MESSAGING__RECEIVER__PUBLIC_URL", f"http://127.0.0.1:{receiver.port}"
        )
        sandbox.report_timing = ReportTiming(accepted_after=0, changed_after=0.1)

        run("sms", config=run_config(sms=SEND))
        wait_until_pushed(sandbox.url, timeout=30)
    finally:
        receiver.stop()

    (sent,) = sandbox.sent
    reports = [json.loads(e.body)["data"] for e in receiver.events(landing.DELIVERY_REPORTS)]
    assert [(r["requestId"], r["reference"]) for r in reports] == [
        (sent["requestId"], sent["reference"])
    ] * 2
    assert [r["status"] for r in reports] == ["ACCEPTED", "DELIVERED"]


@pytest.mark.e2e
def test_the_receiver_token_appears_nowhere_a_run_writes(
    sandbox: Sandbox, duckdb_path: Path, tmp_path: Path
):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {
        **os.environ,
        **SEND_ENV,
        "DAGSTER_HOME": str(dagster_home),
        "SOURCES__MESSAGING__RECEIVER__TOKEN": TOKEN,
        "SOURCES__MESSAGING__RECEIVER__PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "RUNTIME__REQUEST_MAX_ATTEMPTS": "2",
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0",
    }
    # A good send; a gateway that echoes the request, URL included, into a 400's explanation; and
    # an API that cannot be reached (the error quotes the URL).
    scenarios = [
        (None, {}),
        (Fault.ECHO_HEADERS_PROBLEM, {}),
        (None, {"SOURCES__MESSAGING__BASE_URL": f"http://127.0.0.1:{free_port()}"}),
    ]
    outputs = []
    for fault, settings in scenarios:
        sandbox.clear_faults()
        if fault:
            sandbox.inject("sms", fault, times=1)
        outputs.append(materialize_cli("messaging/sms", env={**env, **settings}))

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run_logs = [
            str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)
        ]
    # Everything on disk: the event log, compute logs, dlt's working files and traces, the
    # warehouse (the send journal's notes).
    written = [
        path
        for root in (dagster_home, Path(os.environ["PIPELINES_DIR"]), duckdb_path.parent)
        for path in root.rglob("*")
        if path.is_file() and TOKEN.encode() in path.read_bytes()
    ]

    assert [o.returncode == 0 for o in outputs] == [True, False, False]
    assert len(sends(sandbox)) == 2 and all(TOKEN in r.query for r in sends(sandbox))
    assert "%2F***%2Fdelivery-reports" in outputs[1].stderr
    assert "%2F***%2Fdelivery-reports" in outputs[2].stderr
    for text in [*(o.stdout + o.stderr for o in outputs), *run_logs]:
        assert TOKEN not in text
    assert written == []


@pytest.fixture
def opted_out(run, landed: Landing) -> None:
    """SEND's recipient replied STOP, and the pushed data was loaded."""
    landed.land(INBOUND_MESSAGES, reply("stop-1", "STOP", 1, sender=SEND["to"]))
    run("inbound_messages", "opt_outs")


@both_destinations
def test_a_send_to_an_opted_out_number_is_refused_before_anything_is_sent(
    opted_out, sandbox: Sandbox, run, warehouse: Warehouse
):
    result = run("sms", config=run_config(sms=SEND), raise_on_error=False)

    assert not result.success
    assert sandbox.sent == []
    error = failure_text(result)
    assert (
        "messaging/sms: +49151****678 opted out: it replied STOP at 2026-12-01 09:01:00 UTC "
        "(inbound message stop-1, messaging.opt_outs). Nothing was sent."
    ) in error
    assert "`send_to_opted_out: true` in the run config (ops.messaging_sms.config)" in error
    assert SEND["to"] not in error
    assert warehouse.scalar("SELECT count(*) FROM messaging.send_journal") == 0


@both_destinations
def test_a_send_to_an_opted_out_number_with_the_override_is_sent_and_records_it(
    opted_out, sandbox: Sandbox, run, warehouse: Warehouse
):
    run("sms", config=run_config(sms={**SEND, "send_to_opted_out": True}))

    (sent,) = sandbox.sent
    assert warehouse.rows("SELECT reference, outcome, opt_out_override FROM messaging.sms") == [
        (
            sent["reference"],
            "accepted",
            "send_to_opted_out: it replied STOP at 2026-12-01 09:01:00 UTC "
            "(inbound message stop-1, messaging.opt_outs)",
        )
    ]
