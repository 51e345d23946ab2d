"""Delivery reports and messages with their parts as two tables of their own: a batch every value
of which is stored as it came goes as arrow, any other as dicts; either way the rows, their ids
(a status's key; its key, `_` and a part's place) and their types are the same."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import dlt
import pytest

from messaging_assets.defs.jobs import PUSHED_RUN_CONFIG
from messaging_assets.receiver.landing import DELIVERY_REPORTS
from messaging_assets.registry import STATUS
from messaging_assets.source import bodies, row_ids, status_tables
from messaging_assets.source.arrow_pages import NotColumnar
from messaging_assets.source.variants import Columns
from messaging_assets_tests.conftest import Landing, Warehouse, both_destinations
from messaging_assets_tests.source.test_pushed import PART, report

UTC = timezone.utc
CLEAN_PART = {"partId": "p-1", "price": "0.005", "priceEffective": "2018-06-01T00:00:00+0200"}


def clean_status(**fields: Any) -> dict[str, Any]:
    """A message's status object every value of which its column stores as it is."""
    return {
        "requestId": "m-1",
        "status": "DELIVERED",
        "submitDate": "2019-07-02T16:47:39+0200",
        "overallPrice": "0.045",
        "size": 1,
        "ttid": "77292",
        "parts": [dict(CLEAN_PART)],
        **fields,
    }


def as_tables(status: dict[str, Any]):
    """The message's status and parts tables, as `status_tables.items` builds them."""
    rows = [status]
    parts = status_tables.split(rows, STATUS.key)
    return status_tables.status_tables(
        rows,
        parts,
        STATUS.name,
        STATUS.columns,
        STATUS.nested[status_tables.PARTS],
        Columns(dlt.Schema("messaging"), STATUS.tables()),
        "load-1",
        STATUS.key,
    )


def test_a_clean_batch_becomes_arrow_with_times_in_utc_and_exact_decimals():
    statuses, parts = as_tables(clean_status())

    (status,) = statuses.to_pylist()
    message_id = "m-1"
    assert {name: status[name] for name in ("submit_date", "overall_price", "size", "ttid")} == {
        "submit_date": datetime(2019, 7, 2, 14, 47, 39, tzinfo=UTC),
        "overall_price": Decimal("0.045000"),
        "size": 1,
        "ttid": "77292",
    }
    assert (status["_dlt_id"], status["_dlt_load_id"]) == (message_id, "load-1")
    (part,) = parts.to_pylist()
    assert {name: part[name] for name in ("part_id", "price", "price_effective")} == {
        "part_id": "p-1",
        "price": Decimal("0.005000"),
        "price_effective": datetime(2018, 5, 31, 22, tzinfo=UTC),
    }
    assert part["_dlt_load_id"] == "load-1"
    assert {k: part[k] for k in row_ids.part_ids(message_id, 0)} == row_ids.part_ids(message_id, 0)


def test_an_arrow_batch_is_as_nullable_as_its_columns_are_declared():
    statuses, parts = as_tables(clean_status())

    never_null = {field.name for field in statuses.schema if not field.nullable}
    assert never_null == {"request_id", "_dlt_id", "_dlt_load_id"}
    never_null = {field.name for field in parts.schema if not field.nullable}
    assert never_null == {"_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        pytest.param({"surprise": "x"}, "not declared", id="undeclared field"),
        pytest.param({"ttid": True}, "Expected bytes", id="boolean in a text field"),
        pytest.param({"size": 1.0}, "not an integer", id="float in a bigint field"),
        pytest.param(
            {"submitDate": "2019-07-02T16:47:39"}, "zone offset", id="timestamp without offset"
        ),
        pytest.param(
            {"submitDate": "2019-13-02T16:47:39+0200"}, "Failed to parse", id="13th month"
        ),
        pytest.param(
            {"submitDate": "0002-01-01T00:30:00+0100"},
            "outside the years 2 to 9998",
            id="offset takes it before year 2",
        ),
        pytest.param({"overallPrice": "0.0450001"}, "data loss", id="decimal with 7 decimals"),
        pytest.param({"parts": ["p-1"]}, "not declared", id="part that is a string"),
    ],
)
def test_a_value_not_stored_as_it_came_keeps_the_batch_from_arrow(fields, why):
    with pytest.raises(NotColumnar, match=why):
        as_tables(clean_status(**fields))


def test_an_integer_in_a_text_field_is_stored_as_its_text_from_dicts_and_from_json():
    statuses, _ = as_tables(clean_status(ttid=77292))
    parsed = status_tables.status_objects(['{"requestId": "m-1", "ttid": 77292}'])

    assert statuses["ttid"].to_pylist() == parsed["ttid"].to_pylist() == ["77292"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"requestId": "m-1", "surprise": 1}', id="undeclared field"),
        pytest.param(
            '{"requestId": "m-1", "parts": [{"surprise": 1}]}', id="undeclared part field"
        ),
        pytest.param('{"requestId": "m-1", "ttid": 1.5}', id="fractional ttid"),
        pytest.param(
            '{"requestId": "m-1", "ttid": "2026-01-01T00:00:00Z"}', id="ttid read as a time"
        ),
        pytest.param('{"data": {"requestId": "m-1"}}', id="under data"),
        pytest.param('{"requestId": "m-1", "size": "1"}', id="text in an integer field"),
        pytest.param(
            '{"requestId": "m-1", "parts": [{"sendDate": "2026-01-01T00:00:00+0100"}]}',
            id="sendDate",
        ),
        pytest.param('{"requestId": "m-1", "status": "x\\u0000"}', id="escaped NUL"),
    ],
)
def test_a_body_read_in_columns_is_refused_unless_every_value_is_declared_and_of_its_type(body):
    with pytest.raises(NotColumnar):
        status_tables.status_objects([body])


def test_no_two_parts_share_an_id_whatever_their_keys():
    keys = ["a", "a_1", "a_1_0", "a_10", "a_"]
    ids = [row_ids.part_id(key, position) for key in keys for position in range(12)]

    assert len(set(ids)) == len(ids)


# The same reports, alone (loaded as arrow), or beside one with a field nobody declared (the
# whole batch loaded as dicts).
PATHS = [pytest.param([], id="arrow"), pytest.param([{"surprise": "x"}], id="dicts")]
SECOND_PART = {**PART, "partId": "p-2", "price": "-0.0125", "priceEffective": None}


@both_destinations
@pytest.mark.parametrize("beside", PATHS)
def test_a_batch_loaded_as_dicts_stores_the_same_rows_as_one_loaded_as_arrow(
    run, landed: Landing, warehouse: Warehouse, beside
):
    delivered = report("r-1", "DELIVERED", overallPrice="0.0175", parts=[PART, SECOND_PART])
    others = [report(f"r-other-{n}", "BUFFERED", **fields) for n, fields in enumerate(beside)]
    landed.land(DELIVERY_REPORTS, delivered, *others)

    run("delivery_reports")

    # The batch went the way the test means: only the dict path adds a column nobody declared.
    assert ("surprise" in warehouse.column_types("delivery_reports")) == bool(beside)
    report_id = bodies.digest(delivered)
    status_id = row_ids.status_id(report_id)
    assert warehouse.rows(
        "SELECT _dlt_id, request_id, epoch(submit_date), overall_price "
        f"FROM messaging.delivery_reports WHERE report_id = '{report_id}'"
    ) == [
        (
            status_id,
            "r-1",
            datetime(2019, 7, 2, 14, 47, 39, tzinfo=UTC).timestamp(),
            Decimal("0.017500"),
        )
    ]
    assert warehouse.rows(
        "SELECT _dlt_id, _dlt_parent_id, _dlt_root_id, _dlt_list_idx, part_id, price, "
        "epoch(price_effective) FROM messaging.delivery_reports__parts "
        f"WHERE _dlt_root_id = '{status_id}' ORDER BY _dlt_list_idx"
    ) == [
        (
            row_ids.part_id(status_id, 0),
            status_id,
            status_id,
            0,
            "p-1",
            Decimal("0.005000"),
            datetime(2018, 5, 31, 22, tzinfo=UTC).timestamp(),
        ),
        (
            row_ids.part_id(status_id, 1),
            status_id,
            status_id,
            1,
            "p-2",
            Decimal("-0.012500"),
            None,
        ),
    ]


@both_destinations
@pytest.mark.parametrize("beside", PATHS)
def test_a_message_merged_again_keeps_only_its_newest_parts(
    run, landed: Landing, warehouse: Warehouse, beside
):
    landed.land(
        DELIVERY_REPORTS, report("r-1", "BUFFERED", parts=[PART, {**PART, "partId": "p-2"}])
    )
    run("delivery_reports", "messages", config=PUSHED_RUN_CONFIG)
    others = [report(f"r-other-{n}", "BUFFERED", **fields) for n, fields in enumerate(beside)]
    landed.land(
        DELIVERY_REPORTS, report("r-1", "DELIVERED", parts=[{**PART, "partId": "p-3"}]), *others
    )

    run("delivery_reports", "messages", config=PUSHED_RUN_CONFIG)

    message_id = row_ids.status_id("r-1")
    assert warehouse.rows(
        "SELECT part_id, _dlt_parent_id, _dlt_list_idx FROM messaging.messages__parts "
        f"WHERE _dlt_root_id = '{message_id}'"
    ) == [("p-3", message_id, 0)]
