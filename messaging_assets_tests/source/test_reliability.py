"""Faults from the sandbox and the machine: ride out what is transient, fail clearly on what is
not, never send twice, never lose or change what is stored, never show the key."""

from __future__ import annotations

import email.utils
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import (
    API_KEY,
    REPO_ROOT,
    Warehouse,
    failure_text,
    free_port,
    materialize_cli,
    materialize_command,
    metadata_of,
    run_config,
)

SEND = {"to": "+4915112345678", "from": "ACME", "message": "hello"}
SNAPSHOT = (
    "SELECT contact_id, _dlt_valid_from, _dlt_valid_to, _dlt_id FROM messaging.contacts ORDER BY 4"
)


def gaps(sandbox: Sandbox, endpoint: str) -> list[float]:
    times = [r.received_at for r in sandbox.requests if r.endpoint == endpoint]
    return [b - a for a, b in itertools.pairwise(times)]


# Transient faults: ridden out


def test_rate_limit_waits_for_retry_after_seconds(sandbox: Sandbox, run, warehouse):
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=1, retry_after="2")

    run("contacts")

    assert sandbox.count("contacts") == 2
    assert gaps(sandbox, "contacts")[0] >= 2.0
    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120


def test_rate_limit_waits_for_retry_after_http_date(sandbox: Sandbox, run):
    # An HTTP date is a moment, not a wait: the retry comes no earlier than it, however long the
    # run took to send its first request (seconds, on a loaded machine).
    now, clock = time.time(), time.monotonic()
    retry_at = int(now) + 6  # whole seconds, as the header says it
    sandbox.inject(
        "phones",
        Fault.RATE_LIMIT,
        times=1,
        retry_after=email.utils.formatdate(retry_at, usegmt=True),
    )

    run("phones")

    first, retry = (now + r.received_at - clock for r in sandbox.requests if r.endpoint == "phones")
    assert first < retry_at, "the run's first request came after the date: nothing to wait for"
    assert retry >= retry_at - 0.1


def test_retry_after_is_capped_by_max_retry_delay(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "1")
    sandbox.inject("phones", Fault.RATE_LIMIT, times=1, retry_after="3600")

    run("phones")

    assert gaps(sandbox, "phones")[0] < 10


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(sandbox: Sandbox, run, warehouse, status):
    sandbox.inject("registrations", Fault.SERVER_ERROR, times=2, status=status)

    run("registrations")

    assert sandbox.count("registrations") == 3
    assert warehouse.scalar("SELECT count(*) FROM messaging.registrations") == 15


def test_dropped_connection_is_retried(sandbox: Sandbox, run, warehouse):
    sandbox.inject("contacts", Fault.DROP_CONNECTION, times=1)

    run("contacts")

    assert sandbox.count("contacts") == 2
    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120


def test_timeout_is_retried(sandbox: Sandbox, run, monkeypatch, warehouse):
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", "0.5")
    sandbox.inject("phones", Fault.LATENCY, times=1, latency=2.0)

    run("phones")

    assert sandbox.count("phones") == 2
    assert warehouse.scalar("SELECT count(*) FROM messaging.phones") == 30


def test_attempts_come_from_dlt_runtime_settings(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "3")
    sandbox.inject("contacts", Fault.SERVER_ERROR, status=503)

    result = run("contacts", raise_on_error=False)

    assert not result.success
    assert sandbox.count("contacts") == 3


def test_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(
    sandbox: Sandbox, run, monkeypatch
):
    # transport.EnvironmentOnce reads these once per host and run instead of once per request.
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")

    message = failure_text(run("contacts", raise_on_error=False))

    assert "proxy" in message.lower()
    assert sandbox.count("contacts") == 0

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert run("contacts").success
    assert sandbox.count("contacts") == 1


def test_last_attempt_error_names_resource_path_and_status(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    sandbox.inject("contacts", Fault.SERVER_ERROR, status=503)

    message = failure_text(run("contacts", raise_on_error=False))

    assert "messaging/contacts: GET /byon/contacts/v1 answered 503" in message
    assert API_KEY not in message


def test_rate_limit_after_last_attempt_fails_with_its_status(sandbox, run, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    sandbox.inject("phones", Fault.RATE_LIMIT, retry_after="0")

    message = failure_text(run("phones", raise_on_error=False))

    assert "messaging/phones: GET /byon/phonebook/v1/numbers answered 429" in message


# The send: at most once


def test_send_after_server_error_reports_unknown_outcome_with_reference(sandbox, run):
    sandbox.inject("sms", Fault.SERVER_ERROR, times=1, status=500)

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))

    assert sandbox.count("sms") == 1
    assert "may or may not have reached the API" in message
    (request,) = sandbox.requests
    reference = dict(p.split("=", 1) for p in request.query.split("&"))["reference"]
    assert reference in message


def test_send_after_timeout_is_not_retried(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.setenv("RUNTIME__REQUEST_TIMEOUT", "0.5")
    sandbox.inject("sms", Fault.LATENCY, times=1, latency=2.0)

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))

    assert sandbox.count("sms") == 1
    assert "may or may not have reached the API" in message


def test_send_to_a_refusing_address_is_retried_and_says_so(run, duckdb_path, monkeypatch):
    monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", API_KEY)
    monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")

    message = failure_text(run("sms", config=run_config(sms=SEND), raise_on_error=False))

    assert "may or may not" not in message
    assert "refused" in message.lower()


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_not_retried_and_says_where_it_is_set(sandbox, run, monkeypatch, status):
    if status == 401:
        monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", "wrong-key")
    else:
        sandbox.inject("contacts", Fault.SERVER_ERROR, status=403)

    message = failure_text(run("contacts", raise_on_error=False))

    assert sandbox.count("contacts") == 1
    assert f"answered {status}: the API rejected the key" in message
    assert "SOURCES__MESSAGING__API_KEY" in message and ".dlt/secrets.toml" in message


# Bad input: a clear error, and every table as it was


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Fault.MALFORMED_JSON, "answered malformed JSON"),
        (Fault.HTML_200, "answered 'text/html; charset=utf-8', not JSON"),
        (Fault.NO_DATA_KEY, "has no `data` in its answer (['result'])"),
        (Fault.WRONG_SHAPE, "answered dict at `data`, not a list"),
        (Fault.MISSING_KEY, "lack the key `contactId` (SOURCES__MESSAGING__CONTACTS__PRIMARY_KEY)"),
    ],
)
def test_bad_answer_fails_naming_resource_and_problem_and_keeps_table(
    sandbox: Sandbox, run, warehouse: Warehouse, fault, problem
):
    run("contacts")
    before = warehouse.rows(SNAPSHOT)
    sandbox.inject("contacts", fault)

    result = run("contacts", raise_on_error=False)

    assert not result.success
    message = failure_text(result)
    assert "contacts" in message and problem in message
    assert warehouse.rows(SNAPSHOT) == before


@pytest.mark.parametrize(("resource", "rows"), [("contacts", 120), ("phones", 30)])
def test_answer_after_a_byte_order_mark_loads(sandbox: Sandbox, run, warehouse, resource, rows):
    # Contacts are read by pyarrow, which skips a BOM. Phones are parsed into dicts: orjson
    # refuses a BOM, and the standard library's parser, tried next, reads it.
    sandbox.inject(resource, Fault.BYTE_ORDER_MARK, times=1)

    run(resource)

    assert warehouse.rows(f"SELECT count(*) FROM messaging.{resource}") == [(rows,)]


def test_value_of_the_wrong_type_is_kept_aside_and_the_rest_of_the_record_loads(
    sandbox, run, warehouse
):
    (request_id,) = sandbox.add_messages(1)
    sandbox.inject("messages", Fault.WRONG_TYPE, times=1)

    result = run("messages", config=run_config(request_ids=[request_id]))

    assert result.success
    assert warehouse.rows("SELECT request_id, size, size__v_text FROM messaging.messages") == [
        (request_id, None, "three")
    ]
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "values_keep_their_types"
    ]
    assert not evaluation.passed


def test_extra_field_is_kept_as_a_new_column(sandbox: Sandbox, run, warehouse):
    sandbox.inject("contacts", Fault.EXTRA_FIELD, times=1)

    run("contacts")

    assert warehouse.rows(
        "SELECT count(*) FROM messaging.contacts WHERE added_later = 'surprise'"
    ) == [(1,)]


def test_empty_204_loads_no_records_and_retires_nothing(sandbox: Sandbox, run, warehouse):
    run("registrations")
    before = warehouse.rows("SELECT * FROM messaging.registrations ORDER BY request_id")
    sandbox.inject("registrations", Fault.EMPTY_204)

    result = run("registrations")

    assert "rows_loaded" not in metadata_of(result, "registrations")
    assert warehouse.rows("SELECT * FROM messaging.registrations ORDER BY request_id") == before


# Failures mid-run: nothing lost, nothing doubled


@pytest.mark.e2e
def test_unfinished_load_that_cannot_load_is_dropped_with_a_report(
    sandbox: Sandbox, duckdb_path: Path, run, warehouse: Warehouse
):
    kill_during(sandbox, duckdb_path, ["messaging/phones"], stage="normalized")
    # A crash while the package was written: its data file is cut short.
    (job,) = leftover_jobs("phones")
    job.write_bytes(job.read_bytes()[:100])

    result = run("phones")

    recovered = metadata_of(result, "phones")["recovered"]
    assert recovered.startswith("Dropped 1 load package(s)")
    assert warehouse.scalar("SELECT count(*) FROM messaging.phones") == 30
    assert not leftover_jobs("phones")


@pytest.mark.e2e
def test_send_whose_load_was_interrupted_is_stored_by_the_next_run(
    sandbox: Sandbox, duckdb_path: Path, run, warehouse: Warehouse
):
    kill_during(sandbox, duckdb_path, ["messaging/sms"], stage="normalized", env=SEND_ENV)
    assert len(sandbox.sent) == 1

    result = run("messages")

    assert warehouse.rows("SELECT request_id FROM messaging.sms") == [
        (sandbox.sent[0]["requestId"],)
    ]
    assert metadata_of(result, "messages")["recovered"].startswith("Loaded 1 load package(s)")
    assert sandbox.count("sms") == 1


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["extracting", "normalized"])
def test_run_killed_mid_way_is_completed_by_the_next_without_duplicates(
    stage: str, duckdb_path: Path, run, monkeypatch
):
    with Sandbox(api_key=API_KEY, contacts=60_000) as big:
        monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", big.url)
        if stage == "extracting":
            big.set_latency("contacts", 3.0)
        kill_during(big, duckdb_path, ["messaging/contacts"], stage=stage)
        big.set_latency("contacts", 0)

        run("contacts")

    warehouse = Warehouse(duckdb_path)
    current = "FROM messaging.contacts WHERE _dlt_valid_to IS NULL"
    assert warehouse.scalar(f"SELECT count(*) {current}") == 60_000
    assert warehouse.scalar(f"SELECT count(DISTINCT contact_id) {current}") == 60_000
    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 60_000


def test_each_run_works_in_its_own_directory_and_leaves_none_behind(sandbox, run):
    run("phones")
    run("phones")

    assert list((Path(os.environ["PIPELINES_DIR"]) / "runs").iterdir()) == []


@pytest.mark.e2e
def test_locked_duckdb_file_is_waited_for_then_loaded(sandbox, run, duckdb_path, monkeypatch):
    run("phones")
    holder = hold_write_lock(duckdb_path, seconds=2)
    try:
        result = run("phones")
    finally:
        holder.wait(timeout=30)

    assert result.success
    assert Warehouse(duckdb_path).scalar("SELECT count(*) FROM messaging.phones") == 30


@pytest.mark.e2e
def test_locked_duckdb_file_fails_naming_the_file_and_the_holder(
    sandbox, run, duckdb_path, monkeypatch
):
    monkeypatch.setenv("DESTINATION__DUCKDB__LOCK_TIMEOUT", "1")
    run("phones")
    holder = hold_write_lock(duckdb_path, seconds=5)
    try:
        message = failure_text(run("phones", raise_on_error=False))
    finally:
        holder.wait(timeout=30)

    assert f"The DuckDB file {duckdb_path} is locked by another process" in message
    assert f"PID {holder.pid}" in message
    # dlt's hint for any failed connection, which misleads for a lock.
    assert "credentials" not in message
    assert "internet" not in message
    assert sandbox.count("phones") == 1


# Secrets


# (asset, settings, fault injected on its endpoint): a good run, a 401, a 404 on a wrong base
# URL, retries that end in a 500, and a gateway that echoes the request, key included, into a
# 2xx text body and into the provider's error explanations.
KEY_SCENARIOS = [
    ("contacts", {}, None),
    ("contacts", {"SOURCES__MESSAGING__API_KEY_HEADER": "x-wrong-header"}, None),
    ("contacts", {"SOURCES__MESSAGING__BASE_URL": "{url}/wrong/base"}, None),
    ("contacts", {}, Fault.SERVER_ERROR),
    ("contacts", {}, Fault.ECHO_HEADERS),
    ("contacts", {}, Fault.ECHO_HEADERS_PROBLEM),
    ("messages", {}, Fault.ECHO_HEADERS),
    ("messages", {}, Fault.ECHO_HEADERS_PROBLEM),
]


@pytest.mark.e2e
def test_key_appears_nowhere_a_run_writes(sandbox: Sandbox, duckdb_path: Path, tmp_path: Path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (tracked,) = sandbox.add_messages(1)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS": tracked,
        "RUNTIME__REQUEST_MAX_ATTEMPTS": "2",
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0",
    }
    outputs = []
    for asset, settings, fault in KEY_SCENARIOS:
        sandbox.clear_faults()
        if fault:
            sandbox.inject(asset, fault)
        settings = {name: value.format(url=sandbox.url) for name, value in settings.items()}
        outputs.append(materialize_cli(f"messaging/{asset}", env={**env, **settings}))

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run_logs = [
            str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)
        ]
    # Everything on disk: the event log, compute logs, and dlt's working files and traces.
    written = [
        path
        for root in (dagster_home, Path(os.environ["PIPELINES_DIR"]))
        for path in root.rglob("*")
        if path.is_file() and API_KEY.encode() in path.read_bytes()
    ]

    assert [o.returncode == 0 for o in outputs] == [True] + [False] * 7
    assert len({log.split("run_id=")[1][:36] for log in run_logs if "run_id=" in log}) == 8
    assert "not JSON: 'GET /byon/contacts/v1 HTTP/1.1 Host: 127.0.0.1" in outputs[4].stderr
    assert "answered 500 Internal Server Error (the API says: " in outputs[5].stderr
    assert "answered 400 Bad Request (the API says: Bad Request: " in outputs[7].stderr
    for text in [*(o.stdout + o.stderr for o in outputs), *run_logs]:
        assert API_KEY not in text
    assert written == []


def test_key_with_a_control_character_is_refused_without_showing_it(sandbox, run, monkeypatch):
    # A control character inside the key: no HTTP header can carry it.
    monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", "s3cr3t\rvalue")

    message = failure_text(run("contacts", raise_on_error=False))

    assert "the API key in SOURCES__MESSAGING__API_KEY contains a control character" in message
    assert "s3cr3t" not in message
    assert sandbox.requests == []


def test_key_with_surrounding_whitespace_is_used_without_it(sandbox, run, monkeypatch, warehouse):
    # A secret copied from a file with Windows line ends.
    monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", f"  {API_KEY}\r\n")

    run("contacts")

    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120


# Helpers that drive the real CLI in a subprocess


SEND_ENV = {"SOURCES__MESSAGING__SMS__TO": SEND["to"], "SOURCES__MESSAGING__SMS__FROM": "ACME"}


def kill_during(
    sandbox: Sandbox, duckdb_path: Path, selection: list[str], stage: str, env: dict | None = None
) -> None:
    """SIGKILL a CLI materialization once it is extracting (the API was called) or loading
    (dlt has a normalized package on disk)."""
    dagster_home = duckdb_path.parent / "killed_dagster_home"
    dagster_home.mkdir(exist_ok=True)
    process = subprocess.Popen(
        materialize_command(*selection),
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if stage == "extracting" and len(sandbox.requests) > 0:
                break
            if stage == "normalized" and leftover_jobs():
                break
            time.sleep(0.002)
        assert process.poll() is None, f"the run ended before it was {stage}"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def leftover_jobs(table: str = "") -> list[Path]:
    """Data files of load packages that runs left normalized in their working directories."""
    runs = Path(os.environ["PIPELINES_DIR"]) / "runs"
    return sorted(runs.glob(f"*/messaging/load/normalized/*/new_jobs/{table}*"))


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding DuckDB's write lock, as a user's DuckDB shell would."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            "print('held', flush=True); "
            f"time.sleep({seconds})",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder
