"""Status look-ups: which requestIds are asked about, and how; a requestId is data, never path."""

from __future__ import annotations

import json
import os

import pytest

from messaging_assets.sandbox import HOSTILE_REQUEST_ID, Fault, Sandbox
from messaging_assets.source.statuses import InvalidRequestIds, parse_request_ids
from messaging_assets_tests.conftest import (
    Warehouse,
    failure_text,
    materialize_cli,
    run_config,
)

SEND = {"to": "+4915112345678", "from": "ACME", "message": "hello"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("a,,a, b", ["a", "b"]),
        (["x", " y "], ["x", "y"]),
        ("", []),
        (None, []),
    ],
)
def test_request_ids_parse_from_json_list_or_comma_string(given, expected):
    assert parse_request_ids(given, "the setting") == expected


# Ids that would leave the status path: a billed send, another endpoint, a query, a nested path,
# and one that needs percent-encoding.
NOT_IDS = [
    "../sms?to=%2B4915112345678&from=EVIL&message=billed",
    "../../../byon/contacts/v1",
    "x?limit=1",
    "a/b",
    "a b",
]


@pytest.mark.parametrize("not_an_id", NOT_IDS)
def test_request_id_setting_that_is_not_an_id_is_refused_before_any_request(
    sandbox: Sandbox, run, monkeypatch, not_an_id
):
    monkeypatch.setenv("SOURCES__MESSAGING__MESSAGES__REQUEST_IDS", json.dumps([not_an_id]))

    message = failure_text(run("messages", raise_on_error=False))

    assert "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS" in message
    assert repr(not_an_id) in message
    assert (sandbox.requests, sandbox.sent) == ([], [])


@pytest.mark.parametrize("not_an_id", NOT_IDS)
def test_request_id_in_run_config_that_is_not_an_id_is_refused_before_any_request(
    sandbox: Sandbox, run, not_an_id
):
    (good,) = sandbox.add_messages(1)

    result = run("messages", config=run_config(request_ids=[good, not_an_id]), raise_on_error=False)

    message = failure_text(result)
    assert "run config `request_ids`" in message and repr(not_an_id) in message
    assert (sandbox.requests, sandbox.sent) == ([], [])


def test_request_ids_setting_that_is_not_a_list_names_the_setting():
    with pytest.raises(InvalidRequestIds, match="SETTING is not a JSON list"):
        parse_request_ids("[abc", "SETTING")


@pytest.mark.e2e
def test_broken_request_ids_setting_fails_only_status_runs(sandbox: Sandbox, duckdb_path):
    env = {**os.environ, "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS": "[abc"}

    contacts = materialize_cli("messaging/contacts", env=env)
    statuses = materialize_cli("messaging/messages", env=env)

    assert contacts.returncode == 0, contacts.stderr[-2000:]
    assert statuses.returncode != 0
    assert "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS is not a JSON list" in statuses.stderr
    assert sandbox.count("messages") == 0


def test_stored_request_id_that_is_not_an_id_is_recorded_once_and_never_asked(
    sandbox: Sandbox, run, warehouse: Warehouse
):
    # A broken or hostile API answers a send with a requestId that is a path.
    sandbox.inject("sms", Fault.HOSTILE_REQUEST_ID, times=1)
    run("sms", config=run_config(sms=SEND))

    run("messages")
    run("messages")

    assert warehouse.rows("SELECT request_id, status, lookup_error FROM messaging.messages") == [
        (HOSTILE_REQUEST_ID, None, "INVALID_REQUEST_ID")
    ]
    assert sandbox.count("messages") == 0
    assert len(sandbox.sent) == 1
    assert [r.path for r in sandbox.requests if r.endpoint != "sms"] == []


def test_look_ups_keep_under_the_ceiling_across_all_workers(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.setenv("SOURCES__MESSAGING__MESSAGES__MAX_REQUESTS_PER_SECOND", "20")
    monkeypatch.setenv("EXTRACT__WORKERS", "10")
    ids = sandbox.add_messages(41)

    run("messages", config=run_config(request_ids=ids))

    arrivals = sorted(r.received_at for r in sandbox.requests if r.endpoint == "messages")
    assert len(arrivals) == 41
    # Evenly spaced at 20 a second: 40 gaps of 50 ms, and never more than 21 in any second.
    assert arrivals[-1] - arrivals[0] >= 1.9
    assert max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals) <= 21
