"""The source as users configure it: retries, concurrency, the key's header, selectors, keys."""

from __future__ import annotations

import logging
import re

from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import (
    API_KEY,
    Warehouse,
    metadata_of,
    run_config,
)

SEND = {"to": "+4915112345678", "from": "ACME", "message": "hello"}


def test_send_is_not_retried_after_a_server_error(sandbox: Sandbox, run, warehouse: Warehouse):
    sandbox.inject("sms", Fault.SERVER_ERROR, times=1, status=503)

    result = run("sms", config=run_config(sms=SEND), raise_on_error=False)

    assert not result.success
    assert sandbox.count("sms") == 1
    assert "sms" not in warehouse.tables()


def test_send_is_not_retried_after_a_dropped_connection(sandbox: Sandbox, run):
    sandbox.inject("sms", Fault.DROP_CONNECTION, times=1)

    result = run("sms", config=run_config(sms=SEND), raise_on_error=False)

    assert not result.success
    assert sandbox.count("sms") == 1


def test_send_is_retried_after_rate_limit_and_stored_once(sandbox: Sandbox, run, warehouse):
    sandbox.inject("sms", Fault.RATE_LIMIT, times=1, retry_after="0")

    run("sms", config=run_config(sms=SEND))

    assert sandbox.count("sms") == 2
    assert len(sandbox.sent) == 1
    assert warehouse.scalar("SELECT count(*) FROM messaging.sms") == 1


def test_status_look_ups_are_retried_after_a_server_error(sandbox: Sandbox, run, warehouse):
    ids = sandbox.add_messages(1)
    sandbox.inject("messages", Fault.SERVER_ERROR, times=1, status=500)

    run("messages", config=run_config(request_ids=ids))

    assert sandbox.count("messages") == 2
    assert warehouse.scalar("SELECT count(*) FROM messaging.messages") == 1


def test_status_look_ups_run_concurrently(sandbox: Sandbox, run, warehouse: Warehouse):
    ids = sandbox.add_messages(12)
    sandbox.set_latency("messages", 0.2)

    run("messages", config=run_config(request_ids=ids))

    assert sandbox.peak_in_flight("messages") > 1
    assert warehouse.scalar("SELECT count(*) FROM messaging.messages") == 12


def test_look_up_concurrency_is_bounded_by_extract_workers(sandbox, run, monkeypatch):
    monkeypatch.setenv("EXTRACT__WORKERS", "2")
    ids = sandbox.add_messages(8)
    sandbox.set_latency("messages", 0.1)

    run("messages", config=run_config(request_ids=ids))

    assert sandbox.peak_in_flight("messages") == 2


def test_api_key_header_name_is_configurable(run, duckdb_path, monkeypatch):
    with Sandbox(api_key=API_KEY, api_key_header="apikey", contacts=5) as api:
        monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__MESSAGING__API_KEY_HEADER", "apikey")

        run("contacts")

        assert [r.status for r in api.requests] == [200]
    assert Warehouse(duckdb_path).scalar("SELECT count(*) FROM messaging.contacts") == 5


def test_data_selector_is_configurable_per_resource(sandbox, run, monkeypatch, warehouse):
    sandbox.inject("contacts", Fault.NO_DATA_KEY)
    monkeypatch.setenv("SOURCES__MESSAGING__CONTACTS__DATA_SELECTOR", "result")

    run("contacts")

    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120


def test_reference_lists_are_read_into_columns_with_md5_row_versions(
    sandbox, run, warehouse, caplog
):
    caplog.set_level(logging.INFO, logger="messaging_assets.transport")

    run("contacts", "registrations")

    assert "parsed into dicts" not in caplog.text
    for table in ("contacts", "registrations"):
        versions = warehouse.rows(f"SELECT _dlt_id FROM messaging.{table}")
        assert versions and all(re.fullmatch("[0-9a-f]{32}", v) for (v,) in versions)


def test_primary_key_is_configurable_per_resource(sandbox, run, monkeypatch, warehouse):
    monkeypatch.setenv("SOURCES__MESSAGING__CONTACTS__PRIMARY_KEY", "contactEmail")

    result = run("contacts")

    columns = {c.name: c for c in metadata_of(result, "contacts")["dagster/column_schema"].columns}
    assert "primary_key" in columns["contact_email"].constraints.other
    assert "primary_key" not in columns["contact_id"].constraints.other
    assert metadata_of(result, "contacts")["primary_key"] == "contact_email"
    assert warehouse.scalar("SELECT count(DISTINCT contact_email) FROM messaging.contacts") == 120


def test_wrong_api_key_fails_with_the_api_answer(sandbox, run, monkeypatch, warehouse):
    monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", "not-the-key")

    result = run("contacts", raise_on_error=False)

    assert not result.success
    assert [r.status for r in sandbox.requests] == [401]
    assert "contacts" not in warehouse.tables()
