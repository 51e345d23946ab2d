"""What the provider pushed, loaded from landed files (written with the receiver's own helpers)
into a real warehouse through Dagster: each report and inbound message once, typed as published,
whatever files they came in and whenever those files appeared."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from messaging_assets.receiver.landing import DELIVERY_REPORTS, INBOUND_MESSAGES
from messaging_assets_tests.conftest import (
    Landing,
    Receiver,
    Warehouse,
    both_destinations,
    check,
)

PART = {
    "partId": "p-1",
    "currency": "EUR",
    "price": "0.005",
    "priceEffective": "2018-06-01T00:00:00+0200",
    "sentDate": "2019-07-02T16:47:40+0200",
    "doneDate": "2019-07-02T16:47:45+0200",
    "deliveryState": "DELIVERED",
    "errorCode": "000",
    "statusText": "Your code is 1234",
}


def report(request_id: str, status: str, **fields: object) -> dict:
    """A delivery report's status object, as the provider posts it (at the root)."""
    return {
        "requestId": request_id,
        "status": status,
        "reference": f"ref-{request_id}",
        "submitDate": "2019-07-02T16:47:39+0200",
        "to": "+4915112345678",
        "from": "ACME",
        **fields,
    }


INBOUND = {
    "requestId": "in-1",
    "from": "+48600700800",
    "to": "+4915112345678",
    "message": "Hello <...> again",
    "missingParts": True,
    "contentList": [
        {
            "msgId": "m-1",
            "sentDate": "2019-07-02T16:47:39+0200",
            "sequenceNumber": 1,
            "price": -0.005,
            "currency": "EUR",
            "priceEffective": "2018-06-01T00:00:00+0200",
        },
        {
            "msgId": "m-3",
            "sentDate": "2019-07-02T16:47:41+0200",
            "sequenceNumber": 3,
            "price": 0.0,
            "currency": "EUR",
            "priceEffective": "2018-06-01T00:00:00+0200",
        },
    ],
    "originMCC": "260",
    "originMNC": "09",
    "originTtId": "077292",
    "totalPrice": -0.005,
    "size": 3,
}


@both_destinations
def test_reports_in_either_shape_are_stored_once_typed_like_messages(
    run, landed: Landing, warehouse: Warehouse
):
    delivered = report(
        "r-delivered",
        "DELIVERED",
        doneDate="2019-07-02T16:47:45+0200",
        overallPrice="0.01",
        errorCode="000",
        size=1,
        ttid=77292,
        parts=[PART],
    )
    first = landed.land(DELIVERY_REPORTS, delivered, {"data": report("r-seed", "BUFFERED")})
    # The same report again, in a second file: the provider's retry, or a second receiver's.
    landed.land(DELIVERY_REPORTS, delivered)

    run("delivery_reports")
    run("delivery_reports")

    # The second run read the files again (within the lag) and inserted nothing: the rows keep
    # the load that first stored them.
    assert (
        warehouse.scalar("SELECT count(DISTINCT _dlt_load_id) FROM messaging.delivery_reports") == 1
    )
    rows = warehouse.rows(
        "SELECT request_id, status, epoch(done_date), overall_price, error_code, ttid, size, "
        "landed_file, landed_line FROM messaging.delivery_reports ORDER BY request_id"
    )
    assert [row[:2] for row in rows] == [("r-delivered", "DELIVERED"), ("r-seed", "BUFFERED")]
    done = datetime(2019, 7, 2, 14, 47, 45, tzinfo=timezone.utc).timestamp()
    assert rows[0][2:7] == (done, Decimal("0.010000"), "000", "77292", 1)
    assert rows[0][7:] == (f"delivery_reports/{first.name}", 1)
    assert warehouse.rows(
        "SELECT part_id, price, epoch(price_effective) FROM messaging.delivery_reports__parts"
    ) == [("p-1", Decimal("0.005000"), datetime(2018, 5, 31, 22, tzinfo=timezone.utc).timestamp())]
    types = warehouse.column_types("delivery_reports")
    assert {name: types[name] for name in ("received_at", "submit_date", "overall_price")} == {
        "received_at": "TIMESTAMP WITH TIME ZONE",
        "submit_date": "TIMESTAMP WITH TIME ZONE",
        "overall_price": "DECIMAL(18,6)",
    }


@both_destinations
def test_inbound_messages_keep_exact_decimals_offsets_and_leading_zeros_once_each(
    run, landed: Landing, warehouse: Warehouse
):
    landed.land(INBOUND_MESSAGES, INBOUND)
    # The provider retries until it hears a 2xx: the same message, in another file.
    landed.land(INBOUND_MESSAGES, INBOUND)

    run("inbound_messages")

    (row,) = warehouse.rows(
        "SELECT request_id, missing_parts, total_price, origin_mcc, origin_mnc, origin_tt_id, "
        "size, message FROM messaging.inbound_messages"
    )
    assert row == ("in-1", True, Decimal("-0.005000"), "260", "09", "077292", 3, INBOUND["message"])
    parts = warehouse.rows(
        "SELECT msg_id, sequence_number, price, epoch(sent_date) "
        "FROM messaging.inbound_messages__content_list ORDER BY sequence_number"
    )
    sent = datetime(2019, 7, 2, 14, 47, 39, tzinfo=timezone.utc).timestamp()
    assert parts == [
        ("m-1", 1, Decimal("-0.005000"), sent),
        ("m-3", 3, Decimal("0.000000"), sent + 2),
    ]
    types = warehouse.column_types("inbound_messages")
    assert [types[name] for name in ("missing_parts", "total_price", "origin_mnc", "size")] == [
        "BOOLEAN",
        "DECIMAL(18,6)",
        "VARCHAR",
        "BIGINT",
    ]
    assert warehouse.column_types("inbound_messages__content_list")["sent_date"] == (
        "TIMESTAMP WITH TIME ZONE"
    )


def test_a_file_that_appears_after_a_later_one_was_loaded_is_loaded_next_run(
    run, landed: Landing, warehouse: Warehouse
):
    loaded = landed.land(DELIVERY_REPORTS, report("r-early", "ACCEPTED"))
    run("delivery_reports")
    # Written a moment before the file already loaded, renamed into place only now (a slow
    # flush, another receiver): it keeps the time of its write.
    late = landed.land(DELIVERY_REPORTS, report("r-late", "ACCEPTED"))
    written = loaded.stat().st_mtime - 5
    os.utime(late, (written, written))

    run("delivery_reports")

    assert warehouse.rows("SELECT request_id FROM messaging.delivery_reports ORDER BY 1") == [
        ("r-early",),
        ("r-late",),
    ]


def posted(body: Mapping[str, Any], **spelled: str) -> bytes:
    """`body` as the provider posts it, each field in `spelled` written exactly as given (a
    number as its JSON text)."""
    text = json.dumps({**body, **{name: f"@{name}@" for name in spelled}})
    for name, value in spelled.items():
        text = text.replace(f'"@{name}@"', value)
    return text.encode()


OUT_OF_RANGE_PART = {**INBOUND["contentList"][0], "sentDate": "0001-01-01T00:00:00+0200"}

# One value its column cannot hold, as the provider could post it: (endpoint, body, table, the
# variant column it is kept in, what that column holds).
VALUES_KEPT_ASIDE = {
    # A float sum the provider did not round: DECIMAL(18,6) would have to drop digits.
    "price_with_more_decimals_than_its_column": (
        INBOUND_MESSAGES,
        posted(INBOUND, totalPrice="0.015000000000000001"),
        "inbound_messages",
        "total_price__v_decimal",
        "0.015000000000000001",
    ),
    "number_with_more_digits_than_its_column": (
        INBOUND_MESSAGES,
        posted(INBOUND, totalPrice="1e30"),
        "inbound_messages",
        "total_price__v_decimal",
        "1E+30",
    ),
    "integer_beyond_64_bits": (
        INBOUND_MESSAGES,
        posted(INBOUND, size="18446744073709551616"),
        "inbound_messages",
        "size__v_decimal",
        "18446744073709551616",
    ),
    # A field nobody declared gets dlt's DECIMAL(38,9) from its first value.
    "new_field_with_more_decimals_than_dlt_gives_it": (
        INBOUND_MESSAGES,
        posted(INBOUND, fee="0.0000000001"),
        "inbound_messages",
        "fee__v_decimal",
        "1E-10",
    ),
    # It parses, but is before the year 1 in UTC.
    "timestamp_out_of_range_in_utc": (
        INBOUND_MESSAGES,
        posted({**INBOUND, "contentList": [OUT_OF_RANGE_PART]}),
        "inbound_messages__content_list",
        "sent_date__v_text",
        "0001-01-01T00:00:00+0200",
    ),
    # Shaped like a timestamp, in a year that parses, but no date: the 13th month.
    "timestamp_that_is_no_date": (
        DELIVERY_REPORTS,
        posted(report("r-month", "DELIVERED", submitDate="2026-13-45T00:00:00+0100")),
        "delivery_reports",
        "submit_date__v_text",
        "2026-13-45T00:00:00+0100",
    ),
    "price_text_with_more_decimals_than_its_column": (
        DELIVERY_REPORTS,
        posted(report("r-odd", "DELIVERED", overallPrice="0.0000001")),
        "delivery_reports",
        "overall_price__v_text",
        "0.0000001",
    ),
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("endpoint", "body", "table", "variant", "kept"),
    VALUES_KEPT_ASIDE.values(),
    ids=VALUES_KEPT_ASIDE.keys(),
)
def test_a_pushed_value_its_column_cannot_hold_is_kept_beside_it_and_named_by_the_check(
    run,
    receiver_process: Receiver,
    warehouse: Warehouse,
    endpoint: str,
    body: bytes,
    table: str,
    variant: str,
    kept: str,
):
    assert receiver_process.post(endpoint.replace("_", "-"), body).status == 204

    result = run(endpoint, "messages")

    assert warehouse.rows(f"SELECT {variant} FROM messaging.{table}") == [(kept,)]
    assert warehouse.column_types(table)[variant] == "VARCHAR"
    evaluation = check(result, endpoint, "values_keep_their_types")
    assert not evaluation.passed
    field = variant.rsplit("__v_", 1)[0]
    assert f"{table}.{field}: " in evaluation.description
    assert f"kept in {variant} " in evaluation.description


@pytest.mark.e2e
@both_destinations
def test_after_a_value_kept_aside_later_runs_load_what_lands_next(
    run, receiver_process: Receiver, warehouse: Warehouse
):
    odd = posted({**INBOUND, "requestId": "in-odd"}, totalPrice="0.0000001")
    assert receiver_process.post("inbound-messages", odd).status == 204
    run("inbound_messages")
    following = json.dumps({**INBOUND, "requestId": "in-next"}).encode()
    assert receiver_process.post("inbound-messages", following).status == 204

    run("inbound_messages")

    assert warehouse.rows(
        "SELECT request_id, total_price, total_price__v_decimal FROM messaging.inbound_messages "
        "ORDER BY 1"
    ) == [("in-next", Decimal("-0.005000"), None), ("in-odd", None, "1E-7")]


@pytest.mark.e2e
@both_destinations
def test_an_event_no_table_can_hold_goes_to_unreadable_events_not_the_load(
    run, receiver_process: Receiver, warehouse: Warehouse
):
    # PostgreSQL's text takes no NUL; dlt names no column after a blank field name.
    escaped = posted({**INBOUND, "requestId": "in-nul"}, message='"a\\u0000b"')
    raw = b'{"requestId": "in-raw\x00"}'
    blank = posted({**INBOUND, "requestId": "in-blank", " ": 1})
    for body in (escaped, raw, blank, json.dumps(INBOUND).encode()):
        assert receiver_process.post("inbound-messages", body).status == 204

    result = run("inbound_messages")

    assert warehouse.rows("SELECT request_id FROM messaging.inbound_messages") == [("in-1",)]
    loader = "readable to the receiver, not to the loader: "
    assert warehouse.rows(
        "SELECT problem, body, body_base64 FROM messaging.unreadable_events ORDER BY received_at"
    ) == [
        (
            f"{loader}a string holds U+0000 (NUL), which PostgreSQL cannot store as text",
            escaped.decode(),
            None,
        ),
        (
            "not JSON: Invalid control character at line 1 column 22",
            None,
            base64.b64encode(raw).decode(),
        ),
        (f'{loader}a field without a name (" ")', blank.decode(), None),
    ]
    assert not check(result, "inbound_messages", "no_recent_unreadable_events").passed
