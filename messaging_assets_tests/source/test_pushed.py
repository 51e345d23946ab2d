"""What the provider pushed, loaded from landed files (written with the receiver's own helpers)
into a real warehouse through Dagster: each report and inbound message once, typed as published,
whatever files they came in and whenever those files appeared."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

from messaging_assets.receiver.landing import DELIVERY_REPORTS, INBOUND_MESSAGES
from messaging_assets_tests.conftest import Landing, Warehouse, both_destinations

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
