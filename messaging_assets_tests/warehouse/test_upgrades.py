"""A warehouse an earlier version loaded keeps working after the upgrade, and loses no value, on
DuckDB and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dlt
import pytest

from messaging_assets import column_hints as columns
from messaging_assets.sandbox import Sandbox
from messaging_assets.warehouse.destination import messaging_pipeline
from messaging_assets_tests.conftest import (
    Destination,
    Warehouse,
    both_destinations,
    metadata_of,
    run_config,
)

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
