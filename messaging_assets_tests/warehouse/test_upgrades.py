"""A warehouse an earlier version loaded keeps working after the upgrade, and loses no value, on
DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import dlt
import pytest

from messaging_assets import column_hints as columns
from messaging_assets.receiver.landing import DELIVERY_REPORTS
from messaging_assets.sandbox import Sandbox
from messaging_assets.source import bodies
from messaging_assets.warehouse.destination import messaging_pipeline
from messaging_assets_tests.conftest import (
    Destination,
    Landing,
    Warehouse,
    both_destinations,
    metadata_of,
    run_config,
)
from messaging_assets_tests.source.test_pushed import PART, report

DECIMAL = {"data_type": "decimal", "precision": 18, "scale": 6}
BIGINT = {"data_type": "bigint"}
KEY = {"data_type": "text", "nullable": False}
EARLIER = {"priceEffective": DECIMAL, "errorCode": BIGINT}
SEND = {"to": "+4915112345678", "from": "ACME", "message": "hello"}


@pytest.fixture
def earlier_version(destination: Destination, tmp_path: Path) -> None:
    """The tables as the earlier version loaded them through dlt, into the test's destination:
    priceEffective typed as a price, errorCode as a number, sms keyed by requestId."""
    pipeline = messaging_pipeline(tmp_path / "earlier")
    message = {
        "requestId": "old-1",
        "status": "UNDELIVERABLE",
        "priceEffective": "0.0450",
        "errorCode": 27,
        "parts": [{"partId": "p-1", "priceEffective": "0.0450", "errorCode": 27}],
    }
    messages = dlt.resource(
        [message],
        name="messages",
        primary_key="requestId",
        write_disposition="merge",
        columns=columns.named({**columns.MESSAGE, **EARLIER}, "requestId"),
        # Nested hints need each column's name, as the earlier version gave them.
        nested_hints={"parts": {"columns": columns.named({**columns.PART, **EARLIER})}},
    )
    sms = dlt.resource(
        [{"requestId": "old-1", "reference": "messaging-assets-old", "status": "ACCEPTED"}],
        name="sms",
        primary_key="requestId",
        write_disposition="merge",
        columns=columns.named({"requestId": KEY}, "requestId"),
    )
    pipeline.run([messages, sms])


@both_destinations
def test_tables_of_an_earlier_version_are_upgraded_without_losing_a_value(
    earlier_version, sandbox: Sandbox, run, warehouse: Warehouse
):
    (tracked,) = sandbox.add_messages(1, final=True)

    result = run("messages", config=run_config(request_ids=[tracked]))

    types = warehouse.column_types("messages")
    assert (types["price_effective"], types["error_code"]) == (
        "TIMESTAMP WITH TIME ZONE",
        "VARCHAR",
    )
    assert warehouse.rows(
        "SELECT price_effective_before_upgrade, error_code FROM messaging.messages "
        "WHERE request_id = 'old-1'"
    ) == [(Decimal("0.045"), "27")]
    assert warehouse.rows(
        "SELECT price_effective_before_upgrade, error_code FROM messaging.messages__parts "
        "WHERE part_id = 'p-1'"
    ) == [(Decimal("0.045"), "27")]
    assert warehouse.scalar(
        f"SELECT price_effective IS NOT NULL FROM messaging.messages WHERE request_id = '{tracked}'"
    )
    upgraded = metadata_of(result, "messages")["upgraded"]
    assert "messages.price_effective (a price before) kept as" in upgraded


@both_destinations
def test_sends_of_an_earlier_version_keep_their_rows_and_new_ones_need_no_request_id(
    earlier_version, run, warehouse: Warehouse, monkeypatch
):
    with Sandbox(api_key="test-key-5f1c0a", shape="provider", send_answer="empty_201") as api:
        monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__MESSAGING__API_SHAPE", "provider")

        run("sms", config=run_config(sms=SEND))
        (sent,) = api.sent

    assert warehouse.rows("SELECT reference, request_id FROM messaging.sms ORDER BY 1") == [
        (sent["reference"], None),
        ("messaging-assets-old", "old-1"),
    ]


def test_an_upgraded_warehouse_is_upgraded_once(earlier_version, sandbox: Sandbox, run):
    run("messages")

    again = run("messages")

    assert "upgraded" not in metadata_of(again, "messages")


def earlier_load(destination: Destination, tmp_path: Path, resource) -> None:
    """`resource` loaded as the earlier version loaded it, into the test's destination: dlt's
    normalizer nesting the parts, with ids of its own."""
    messaging_pipeline(tmp_path / "earlier").run(resource)


def unlinked_parts(warehouse: Warehouse, table: str) -> int:
    """Parts whose parent is no row of `table`."""
    return warehouse.scalar(
        f"SELECT count(*) FROM messaging.{table}__parts AS p WHERE NOT EXISTS "
        f"(SELECT 1 FROM messaging.{table} AS s WHERE s._dlt_id = p._dlt_parent_id)"
    )


@both_destinations
def test_parts_of_an_earlier_version_are_replaced_when_their_message_is_merged_again(
    destination: Destination, tmp_path: Path, sandbox: Sandbox, run, warehouse: Warehouse
):
    (tracked,) = sandbox.add_messages(1, final=True)
    old_parts = [{"partId": "old-part-1"}, {"partId": "old-part-2"}]
    earlier_load(
        destination,
        tmp_path,
        dlt.resource(
            [{"requestId": tracked, "status": "BUFFERED", "parts": old_parts}],
            name="messages",
            primary_key="requestId",
            write_disposition="merge",
            columns=columns.named(columns.MESSAGE, "requestId"),
            nested_hints={"parts": {"columns": columns.named(columns.PART)}},
        ),
    )

    result = run("messages", config=run_config(request_ids=[tracked]))

    new_parts = [part["partId"] for part in sandbox.message(tracked)["parts"]]
    message_id = tracked
    assert warehouse.rows(
        "SELECT _dlt_id FROM messaging.messages WHERE request_id = '" + tracked + "'"
    ) == [(message_id,)]
    assert warehouse.rows(
        "SELECT part_id, _dlt_parent_id, _dlt_root_id, _dlt_list_idx, _dlt_id "
        "FROM messaging.messages__parts ORDER BY _dlt_list_idx"
    ) == [
        (part_id, message_id, message_id, idx, f"{message_id}_{idx}")
        for idx, part_id in enumerate(new_parts)
    ]
    assert unlinked_parts(warehouse, "messages") == 0
    upgraded = metadata_of(result, "messages")["upgraded"]
    assert "messages__parts linked to messages by the ids of their keys" in upgraded


@both_destinations
def test_a_report_of_an_earlier_version_landed_again_is_stored_once_with_its_parts_once(
    destination: Destination, tmp_path: Path, run, landed: Landing, warehouse: Warehouse
):
    second = {**PART, "partId": "p-2"}
    pushed = report("r-1", "DELIVERED", doneDate="2019-07-02T16:47:45+0200", parts=[PART, second])
    report_id = bodies.digest(pushed)
    earlier = {
        **json.loads(json.dumps(pushed)),
        "reportId": report_id,
        "receivedAt": datetime(2019, 7, 2, 14, 47, 46, tzinfo=timezone.utc),
        "landedFile": "delivery_reports/earlier.jsonl",
        "landedLine": 1,
        "body": json.dumps(pushed),
    }
    earlier_load(
        destination,
        tmp_path,
        dlt.resource(
            [earlier],
            name="delivery_reports",
            primary_key="reportId",
            write_disposition={"disposition": "merge", "strategy": "insert-only"},
            columns=columns.named(columns.REPORT, "reportId"),
            nested_hints={"parts": {"columns": columns.named(columns.PART)}},
        ),
    )
    landed.land(DELIVERY_REPORTS, pushed)

    result = run("delivery_reports")

    report_row_id = report_id
    assert warehouse.rows(
        "SELECT report_id, _dlt_id, landed_file FROM messaging.delivery_reports"
    ) == [(report_id, report_row_id, "delivery_reports/earlier.jsonl")]
    assert warehouse.rows(
        "SELECT part_id, _dlt_parent_id, _dlt_root_id, _dlt_list_idx, _dlt_id "
        "FROM messaging.delivery_reports__parts ORDER BY _dlt_list_idx"
    ) == [
        (part_id, report_row_id, report_row_id, idx, f"{report_row_id}_{idx}")
        for idx, part_id in enumerate(["p-1", "p-2"])
    ]
    upgraded = metadata_of(result, "delivery_reports")["upgraded"]
    assert "delivery_reports__parts linked to delivery_reports by the ids of their keys" in upgraded
