"""The five assets end to end, in both API shapes: sandbox API over HTTP, Dagster in-process, a
real DuckDB file, and for the loads and merges of every asset a real PostgreSQL database too."""

from __future__ import annotations

from datetime import datetime

from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    API_KEY,
    Warehouse,
    both_destinations,
    both_shapes,
    metadata_of,
    run_config,
)

pytestmark = both_shapes

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}
REFERENCE = ("contacts", "phones", "registrations")
FINAL = {"DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED"}


@both_destinations
def test_contacts_land_as_typed_current_rows(sandbox: Sandbox, run, warehouse: Warehouse):
    run("contacts")

    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120
    types = warehouse.column_types("contacts")
    assert types["contact_id"] == "VARCHAR"
    assert types["_dlt_valid_from"] == "TIMESTAMP WITH TIME ZONE"
    assert (
        warehouse.scalar("SELECT count(*) FROM messaging.contacts WHERE _dlt_valid_to IS NULL")
        == 120
    )


@both_destinations
def test_each_reference_table_is_keyed_by_its_own_id(sandbox: Sandbox, run, warehouse: Warehouse):
    run(*REFERENCE)

    for table, key, expected in [
        ("contacts", "contact_id", 120),
        ("phones", "phone_number", 30),
        ("registrations", "request_id", 15),
    ]:
        distinct = warehouse.scalar(f"SELECT count(DISTINCT {key}) FROM messaging.{table}")
        nulls = warehouse.scalar(f"SELECT count(*) FROM messaging.{table} WHERE {key} IS NULL")
        assert (distinct, nulls) == (expected, 0), table


@both_destinations
def test_rerun_of_unchanged_reference_data_adds_no_rows(sandbox: Sandbox, run, warehouse):
    run(*REFERENCE)
    before = {t: warehouse.scalar(f"SELECT count(*) FROM messaging.{t}") for t in REFERENCE}

    run(*REFERENCE)

    after = {t: warehouse.scalar(f"SELECT count(*) FROM messaging.{t}") for t in REFERENCE}
    assert after == before == {"contacts": 120, "phones": 30, "registrations": 15}


@both_destinations
def test_contact_removed_upstream_is_kept_but_no_longer_current(
    sandbox: Sandbox, run, warehouse: Warehouse
):
    run("contacts")
    gone = warehouse.scalar("SELECT min(contact_id) FROM messaging.contacts")
    sandbox.remove_contact(gone)

    run("contacts")

    history = warehouse.rows(
        f"SELECT _dlt_valid_to IS NULL FROM messaging.contacts WHERE contact_id = '{gone}'"
    )
    assert history == [(False,)]
    current = "SELECT count(*) FROM messaging.contacts WHERE _dlt_valid_to IS NULL"
    assert warehouse.scalar(current) == 119


def test_materializing_one_asset_calls_only_its_endpoint(sandbox: Sandbox, run):
    run("phones")

    assert {name: sandbox.count(name) for name in ("sms", "messages", *REFERENCE)} == {
        "sms": 0,
        "messages": 0,
        "contacts": 0,
        "phones": 1,
        "registrations": 0,
    }


def test_all_assets_without_send_config_send_nothing(sandbox: Sandbox, run, warehouse):
    result = run("sms", "messages", *REFERENCE)

    assert sandbox.count("sms") == 0
    assert "sms" not in warehouse.tables()
    metadata = metadata_of(result, "sms")
    assert metadata["sent"] == 0
    assert "SOURCES__MESSAGING__SMS__TO" in metadata["note"]


@both_destinations
def test_configured_send_sends_exactly_once_and_stores_it(sandbox: Sandbox, run, warehouse):
    result = run("sms", config=run_config(sms=SEND))

    assert sandbox.count("sms") == 1
    (sent,) = sandbox.sent
    assert sent["message"] == SEND["message"]
    row = warehouse.rows(
        'SELECT request_id, "to", "from", reference, status, submitted_at FROM messaging.sms'
    )
    assert row[0][:5] == (
        sent["requestId"],
        SEND["to"],
        SEND["from"],
        sent["reference"],
        "ACCEPTED",
    )
    assert row[0][5] is not None
    assert metadata_of(result, "sms")["sent"] == 1


def test_send_configured_by_environment(sandbox: Sandbox, run, monkeypatch, warehouse):
    monkeypatch.setenv("SOURCES__MESSAGING__SMS__TO", SEND["to"])
    monkeypatch.setenv("SOURCES__MESSAGING__SMS__FROM", SEND["from"])

    run("sms")

    assert [s["to"] for s in sandbox.sent] == [SEND["to"]]
    assert warehouse.scalar("SELECT count(*) FROM messaging.sms") == 1


def test_status_refresh_never_sends_even_when_send_is_configured(
    sandbox: Sandbox, run, monkeypatch
):
    monkeypatch.setenv("SOURCES__MESSAGING__SMS__TO", SEND["to"])
    monkeypatch.setenv("SOURCES__MESSAGING__SMS__FROM", SEND["from"])
    tracked = sandbox.add_messages(2)

    run("messages", config=run_config(request_ids=tracked))

    assert sandbox.count("sms") == 0
    assert sandbox.count("messages") == 2


def test_send_then_status_in_one_run_looks_up_the_new_message(sandbox: Sandbox, run, warehouse):
    run("sms", "messages", config=run_config(sms=SEND))

    (sent,) = sandbox.sent
    assert warehouse.rows("SELECT request_id, status FROM messaging.messages") == [
        (sent["requestId"], "ACCEPTED")
    ]


@both_destinations
def test_pending_statuses_move_forward_by_merge(sandbox: Sandbox, run, warehouse: Warehouse):
    run("sms", config=run_config(sms=SEND))
    seen = []
    for _ in range(3):
        run("messages")
        seen.append(warehouse.rows("SELECT status FROM messaging.messages"))

    assert [rows[0][0] for rows in seen[:2]] == ["ACCEPTED", "BUFFERED"]
    assert len(seen[2]) == 1 and seen[2][0][0] in FINAL


def test_final_status_is_not_looked_up_again(sandbox: Sandbox, run, warehouse: Warehouse):
    (done,) = sandbox.add_messages(1, final=True)
    (pending,) = sandbox.add_messages(1)
    run("messages", config=run_config(request_ids=[done, pending]))
    sandbox.reset()

    run("messages", config=run_config(request_ids=[done, pending]))

    asked = [r.path.rsplit("/", 1)[-1] for r in sandbox.requests if r.endpoint == "messages"]
    assert asked == [pending]


def test_tracked_request_ids_from_environment_as_comma_list(sandbox, run, monkeypatch, warehouse):
    ids = sandbox.add_messages(3)
    monkeypatch.setenv("SOURCES__MESSAGING__MESSAGES__REQUEST_IDS", " , ".join(ids))

    run("messages")

    assert {r[0] for r in warehouse.rows("SELECT request_id FROM messaging.messages")} == set(ids)


def test_tracked_request_ids_from_environment_as_json_list(sandbox, run, monkeypatch, warehouse):
    ids = sandbox.add_messages(2)
    monkeypatch.setenv("SOURCES__MESSAGING__MESSAGES__REQUEST_IDS", f'["{ids[0]}", "{ids[1]}"]')

    run("messages")

    assert warehouse.scalar("SELECT count(*) FROM messaging.messages") == 2


@both_destinations
def test_unknown_status_is_recorded_not_a_failed_run(sandbox: Sandbox, run, warehouse):
    (expired,) = sandbox.add_messages(1)
    sandbox.expire(expired)

    result = run("messages", config=run_config(request_ids=[expired, "no-such-id"]))

    assert result.success
    assert warehouse.rows(
        "SELECT request_id, status, lookup_error FROM messaging.messages ORDER BY 1"
    ) == sorted([(expired, None, "NOT_FOUND"), ("no-such-id", None, "NOT_FOUND")])
    sandbox.reset()
    run("messages", config=run_config(request_ids=[expired]))
    assert sandbox.count("messages") == 0


@both_destinations
def test_message_columns_are_typed_as_published_even_when_null_in_the_whole_load(
    sandbox, run, warehouse
):
    run("messages", config=run_config(request_ids=sandbox.add_messages(1)))

    types = warehouse.column_types("messages")
    assert warehouse.scalar("SELECT count(*) FROM messaging.messages WHERE error_code IS NULL") == 1
    assert {
        name: types[name]
        for name in (
            "error_code",
            "error_reason",
            "done_date",
            "submit_date",
            "price_effective",
            "overall_price",
            "size",
            "ttid",
        )
    } == {
        "error_code": "VARCHAR",
        "error_reason": "VARCHAR",
        "done_date": "TIMESTAMP WITH TIME ZONE",
        "submit_date": "TIMESTAMP WITH TIME ZONE",
        "price_effective": "TIMESTAMP WITH TIME ZONE",
        "overall_price": "DECIMAL(18,6)",
        "size": "BIGINT",
        "ttid": "VARCHAR",
    }


@both_destinations
def test_provider_timestamps_and_prices_keep_their_values(sandbox: Sandbox, run, warehouse):
    (request_id,) = sandbox.add_messages(1, final=True)
    api = sandbox.message(request_id)

    run("messages", config=run_config(request_ids=[request_id]))

    submit, price = warehouse.rows(
        "SELECT epoch(submit_date), CAST(overall_price AS VARCHAR) FROM messaging.messages"
    )[0]
    expected = datetime.strptime(api["submitDate"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert submit == expected
    assert float(price) == float(api["overallPrice"])


@both_destinations
def test_parts_land_in_child_table_whichever_sent_date_spelling(sandbox: Sandbox, run, warehouse):
    ids = sandbox.add_messages(40, final=True)
    spelled_old = [i for i in ids if "sendDate" in (sandbox.message(i)["parts"] or [{}])[0]]
    assert spelled_old, "the sandbox should serve some parts with the old spelling"

    run("messages", config=run_config(request_ids=ids))

    parts = sum(len(sandbox.message(i)["parts"]) for i in ids)
    assert warehouse.scalar("SELECT count(*) FROM messaging.messages__parts") == parts
    assert (
        warehouse.scalar("SELECT count(*) FROM messaging.messages__parts WHERE sent_date IS NULL")
        == 0
    )
    assert "send_date" not in warehouse.column_types("messages__parts")
    assert warehouse.column_types("messages__parts")["price"] == "DECIMAL(18,6)"


def test_missing_api_key_fails_before_any_request(sandbox: Sandbox, run, monkeypatch):
    monkeypatch.delenv("SOURCES__MESSAGING__API_KEY")

    result = run("contacts", raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "SOURCES__MESSAGING__API_KEY" in message
    assert ".dlt/secrets.toml" in message
    assert sandbox.requests == []


def test_no_template_text_ever_reaches_the_api(sandbox: Sandbox, run):
    run("sms", config=run_config(sms=SEND))
    run("sms", "messages", *REFERENCE)

    assert sandbox.requests, "the runs should have called the API"
    for request in sandbox.requests:
        sent = f"{request.path}?{request.query}"
        assert not any(mark in sent for mark in ("{", "}", "%7B", "%7D")), sent


def test_materialization_metadata_shows_rows_and_columns(sandbox: Sandbox, run):
    result = run("contacts")

    metadata = metadata_of(result, "contacts")
    assert metadata["dagster/row_count"] == 120
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].columns}
    assert columns["contact_id"] == "text"


def test_api_key_is_in_no_event_of_the_run(sandbox: Sandbox, run, instance):
    result = run("sms", "messages", *REFERENCE, config=run_config(sms=SEND))

    logs = instance.all_logs(result.run_id)
    assert logs
    assert all(API_KEY not in str(entry) for entry in logs)
