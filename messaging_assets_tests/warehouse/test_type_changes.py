"""A field whose type or shape changes between answers: every value is stored as it came, the
refresh goes on, a row's history changes only where a value did, and the check
`values_keep_their_types` names the table, the field and the change; on DuckDB and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from dagster import AssetCheckSeverity

from messaging_assets.sandbox import OMIT, Sandbox
from messaging_assets.source.variants import DEFAULT_DIGITS, fitting
from messaging_assets_tests.conftest import (
    Warehouse,
    both_destinations,
    check,
    check_metadata,
    run_config,
)

CHECK = "values_keep_their_types"
CURRENT = "_dlt_valid_to IS NULL"


def details(result, table: str) -> str:
    return check_metadata(check(result, table, CHECK))["details"]


def failed(result, table: str, severity: AssetCheckSeverity) -> str:
    """The check's text, once it is asserted to have failed with `severity`."""
    evaluation = check(result, table, CHECK)
    assert not evaluation.passed
    assert evaluation.severity == severity
    return check_metadata(evaluation)["details"]


def load_twice(sandbox: Sandbox, run, table: str, field: str, before: Any, after: Any, config=None):
    """Loads `table` with every record's `field` as `before`, then as `after`."""
    sandbox.set_field(table, field, [before])
    assert run(table, config=config).success
    sandbox.set_field(table, field, [after])
    return run(table, config=config)


def current_items(warehouse: Warehouse, table: str, child: str) -> list[tuple[Any, ...]]:
    """The items of `child` that belong to the current rows of `table`."""
    return warehouse.rows(
        f"SELECT value FROM messaging.{child} WHERE _dlt_parent_id IN "
        f"(SELECT _dlt_id FROM messaging.{table} WHERE {CURRENT}) ORDER BY value"
    )


# A value of another type: kept beside its column, as it came


@both_destinations
@pytest.mark.parametrize(
    ("table", "key", "before", "after", "kept_in", "was"),
    [
        ("contacts", "contact_id", 10, 10.5, "score__v_double", "bigint"),
        ("contacts", "contact_id", 10, "0 pts", "score__v_text", "bigint"),
        ("phones", "phone_number", 1, True, "score__v_bool", "bigint"),
        ("registrations", "request_id", True, 5, "score__v_bigint", "bool"),
        ("registrations", "request_id", "yes", False, "score__v_bool", "text"),
        ("phones", "phone_number", 10.5, "0 pts", "score__v_text", "double"),
    ],
)
def test_a_value_of_another_type_is_kept_beside_its_column_and_the_check_names_it(
    sandbox, run, warehouse: Warehouse, table, key, before, after, kept_in, was
):
    result = load_twice(sandbox, run, table, "score", before, after)

    assert result.success
    rows = warehouse.rows(f"SELECT score, {kept_in} FROM messaging.{table} WHERE {CURRENT}")
    assert set(rows) == {(None, after)}
    assert set(warehouse.rows(f"SELECT score FROM messaging.{table} WHERE NOT {CURRENT}")) == {
        (before,)
    }
    kind = kept_in.rsplit("__v_", 1)[1]
    assert failed(result, table, AssetCheckSeverity.ERROR).startswith(
        f"{table}.score: {kind} values in {len(rows)} current row(s), where the column is {was}; "
        f"they are kept in {kept_in} (e.g. {key} "
    )


@both_destinations
@pytest.mark.parametrize(
    ("before", "after"),
    [
        (10.5, 10),  # a double column holds 10 exactly
        (None, 10),  # null in every record: no column yet, the first value makes it
        (10, None),
    ],
    ids=["double-then-integer", "null-then-integer", "integer-then-null"],
)
def test_a_value_its_column_holds_stays_in_it_and_the_check_passes(
    sandbox, run, warehouse: Warehouse, before, after
):
    result = load_twice(sandbox, run, "contacts", "score", before, after)

    assert result.success
    assert set(warehouse.rows(f"SELECT score FROM messaging.contacts WHERE {CURRENT}")) == {
        (after,)
    }
    # The earlier version keeps the earlier value: history, not an overwrite.
    assert set(warehouse.rows(f"SELECT score FROM messaging.contacts WHERE NOT {CURRENT}")) == {
        (before,)
    }
    assert not [column for column in warehouse.column_types("contacts") if "__v_" in column]
    assert check(result, "contacts", CHECK).passed


@both_destinations
def test_a_list_item_of_another_type_is_kept_beside_the_items_column(
    sandbox, run, warehouse: Warehouse
):
    # dlt itself would store "12" as 12 in the child table's bigint `value` column.
    result = load_twice(sandbox, run, "contacts", "scores", [1, 2], ["12", 3])

    assert result.success
    assert set(
        warehouse.rows(
            "SELECT _dlt_list_idx, value, value__v_text FROM messaging.contacts__scores WHERE "
            f"_dlt_parent_id IN (SELECT _dlt_id FROM messaging.contacts WHERE {CURRENT})"
        )
    ) == {(0, None, "12"), (1, 3, None)}
    assert failed(result, "contacts", AssetCheckSeverity.ERROR).startswith(
        "contacts__scores.value: text values in 120 current row(s), where the column is bigint; "
        "they are kept in value__v_text (e.g. _dlt_id "
    )


@both_destinations
def test_one_text_value_among_nulls_is_kept_beside_its_integer_column(
    sandbox, run, warehouse: Warehouse
):
    # The example: an integer field, then one "x" among nulls, which made every later
    # run fail converting "x" to an integer.
    sandbox.set_field("contacts", "score", [10])
    run("contacts")
    sandbox.set_field("contacts", "score", [*[None] * 119, "x"])

    result = run("contacts")

    assert result.success
    assert warehouse.rows(
        f"SELECT contact_id, score, score__v_text FROM messaging.contacts WHERE {CURRENT} "
        "AND (score IS NOT NULL OR score__v_text IS NOT NULL)"
    ) == [("c-000120", None, "x")]
    assert details(result, "contacts") == (
        "contacts.score: text values in 1 current row(s), where the column is bigint; they are "
        "kept in score__v_text (e.g. contact_id c-000120)"
    )


# A value of the column's type that the column cannot hold: kept as it came, and said so


@both_destinations
@pytest.mark.parametrize(
    ("table", "field", "before", "after", "kept_in", "kept", "column_type"),
    [
        # A declared DECIMAL(18,6): seven decimals are one too many.
        (
            "messages",
            "overallPrice",
            "0.0450",
            0.0050001,
            "overall_price__v_double",
            0.0050001,
            "decimal",
        ),
        # An integer beyond 64 bits: exact only as text (a double would round it).
        (
            "messages",
            "overallPrice",
            "0.0450",
            2**64 + 1,
            "overall_price__v_decimal",
            str(2**64 + 1),
            "decimal",
        ),
        ("contacts", "score", 10, 2**64 + 1, "score__v_decimal", str(2**64 + 1), "bigint"),
        # Beyond 2**53 a double loses digits.
        ("contacts", "score", 10.5, 2**53 + 1, "score__v_bigint", 2**53 + 1, "double"),
    ],
    ids=[
        "decimal-too-many-digits",
        "decimal-integer-beyond-64-bits",
        "bigint-integer-beyond-64-bits",
        "double-integer-beyond-2**53",
    ],
)
def test_a_value_beyond_what_its_column_holds_is_kept_exactly_and_the_check_says_so(
    sandbox, run, warehouse: Warehouse, table, field, before, after, kept_in, kept, column_type
):
    config, key = None, "contact_id"
    if table == "messages":
        (key_value,) = sandbox.add_messages(1)
        config, key = run_config(request_ids=[key_value]), "request_id"

    result = load_twice(sandbox, run, table, field, before, after, config=config)

    assert result.success
    column, kind = kept_in.rsplit("__v_", 1)
    rows = warehouse.rows(
        f"SELECT {column}, {kept_in} FROM messaging.{table} WHERE {kept_in} IS NOT NULL"
    )
    assert set(rows) == {(None, kept)}
    assert failed(result, table, AssetCheckSeverity.ERROR).startswith(
        f"{table}.{column}: {kind} values in {len(rows)} current row(s), beyond what its "
        f"{column_type} column holds; they are kept in {kept_in} (e.g. {key} "
    )


@both_destinations
def test_a_value_of_another_type_in_a_message_is_kept_beside_its_column(
    sandbox: Sandbox, run, warehouse: Warehouse
):
    (request_id,) = sandbox.add_messages(1)
    config = run_config(request_ids=[request_id])
    sandbox.set_field("messages", "retries", [2])
    run("messages", config=config)
    sandbox.set_field("messages", "retries", ["2"])

    result = run("messages", config=config)

    assert warehouse.rows("SELECT retries, retries__v_text FROM messaging.messages") == [
        (None, "2")
    ]
    assert details(result, "messages") == (
        "messages.retries: text values in 1 current row(s), where the column is bigint; they "
        f"are kept in retries__v_text (e.g. request_id {request_id})"
    )


@both_destinations
def test_a_value_back_in_its_type_passes_the_check_again(sandbox, run, warehouse: Warehouse):
    load_twice(sandbox, run, "contacts", "score", 10, 10.5)
    sandbox.set_field("contacts", "score", [11])

    result = run("contacts")

    assert check(result, "contacts", CHECK).passed
    assert set(warehouse.rows(f"SELECT score FROM messaging.contacts WHERE {CURRENT}")) == {(11,)}


# A row's history changes only where a value did


@both_destinations
def test_a_row_keeps_its_version_when_its_page_is_read_another_way(
    sandbox, run, warehouse: Warehouse
):
    sandbox.set_field("contacts", "score", [10])
    run("contacts")
    # One record's 10.5 sends the whole page through dlt's normalizer instead of arrow's.
    sandbox.set_field("contacts", "score", [10.5, *[10] * 119])
    run("contacts")
    sandbox.set_field("contacts", "score", [10])

    run("contacts")

    versions = warehouse.rows(
        "SELECT contact_id, count(*) FROM messaging.contacts GROUP BY 1 HAVING count(*) > 1"
    )
    assert versions == [("c-000001", 3)]
    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120 + 2


# An object or a list where a scalar was


@both_destinations
def test_a_declared_field_that_becomes_an_object_fails_the_check_naming_where_it_went(
    sandbox, run, warehouse: Warehouse
):
    names = [{"first": f"First {i}", "last": f"Last {i}"} for i in range(120)]

    result = load_twice(sandbox, run, "contacts", "contactName", "Ada Lovelace", names[0])

    assert result.success
    assert set(
        warehouse.rows(
            "SELECT contact_name, contact_name__first, contact_name__last "
            f"FROM messaging.contacts WHERE {CURRENT}"
        )
    ) == {(None, "First 0", "Last 0")}
    assert failed(result, "contacts", AssetCheckSeverity.ERROR) == (
        "contacts.contact_name: an object in 120 current row(s), where the column holds text; "
        "its values are in contact_name__first, contact_name__last, and contact_name is empty "
        "there"
    )


@both_destinations
def test_a_declared_field_that_becomes_a_list_fails_the_check_naming_the_child_table(
    sandbox, run, warehouse: Warehouse
):
    result = load_twice(sandbox, run, "contacts", "contactName", "Ada", ["Ada", "Lovelace"])

    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts__contact_name") == 240
    assert details(result, "contacts") == (
        "contacts.contact_name: a list in 120 current row(s), where the column holds text; its "
        "items are in the table contacts__contact_name, and contact_name is empty there"
    )


@both_destinations
@pytest.mark.parametrize(
    ("before", "was_in"),
    [({"city": "Berlin"}, "address__city"), (["Berlin"], "contacts__address")],
    ids=["object", "list"],
)
def test_an_undeclared_object_or_list_that_becomes_text_everywhere_is_a_warning(
    sandbox, run, warehouse: Warehouse, before, was_in
):
    result = load_twice(sandbox, run, "contacts", "address", before, "Berlin")

    assert result.success
    assert set(warehouse.rows(f"SELECT address FROM messaging.contacts WHERE {CURRENT}")) == {
        ("Berlin",)
    }
    assert failed(result, "contacts", AssetCheckSeverity.WARN) == (
        "contacts.address: text values in 120 current row(s), where it was an object or a list "
        f"before ({was_in})"
    )


@both_destinations
def test_an_undeclared_object_that_becomes_a_list_is_a_warning_naming_both_places(
    sandbox, run, warehouse: Warehouse
):
    result = load_twice(
        sandbox, run, "contacts", "address", {"city": "Berlin"}, ["Berlin", "Paris"]
    )

    assert result.success
    assert (
        current_items(warehouse, "contacts", "contacts__address")
        == [("Berlin",)] * 120 + [("Paris",)] * 120
    )
    assert failed(result, "contacts", AssetCheckSeverity.WARN) == (
        "contacts.address: a list in 120 current row(s), where it was an object "
        "(address__city); its items are in the table contacts__address, and address__city is "
        "empty there"
    )


@both_destinations
def test_an_undeclared_list_that_becomes_an_object_is_a_warning_naming_both_places(
    sandbox, run, warehouse: Warehouse
):
    result = load_twice(
        sandbox, run, "contacts", "address", ["Berlin", "Paris"], {"city": "Berlin"}
    )

    assert result.success
    assert set(warehouse.rows(f"SELECT address__city FROM messaging.contacts WHERE {CURRENT}")) == {
        ("Berlin",)
    }
    assert current_items(warehouse, "contacts", "contacts__address") == []
    assert failed(result, "contacts", AssetCheckSeverity.WARN) == (
        "contacts.address: an object in 120 current row(s), where it was a list (the table "
        "contacts__address); its values are in address__city, and contacts__address holds no "
        "items for them"
    )


@both_destinations
@pytest.mark.parametrize(
    ("before", "other", "said"),
    [
        (
            "Berlin",
            "Berlin",
            [
                "contacts.address: an object in 40 current row(s), where the column holds text; "
                "its values are in address__city, and address is empty there"
            ],
        ),
        (
            {"city": "Berlin"},
            ["Berlin"],
            [
                "contacts.address: a list in 40 current row(s), where it was an object "
                "(address__city); its items are in the table contacts__address, and "
                "address__city is empty there",
                "contacts.address: an object in 40 current row(s), where it was a list (the "
                "table contacts__address); its values are in address__city, and "
                "contacts__address holds no items for them",
            ],
        ),
    ],
    ids=["text-and-object", "list-and-object"],
)
def test_an_undeclared_field_in_both_shapes_at_once_is_an_error(
    sandbox, run, warehouse: Warehouse, before, other, said
):
    sandbox.set_field("contacts", "address", [before])
    run("contacts")
    sandbox.set_field("contacts", "address", [{"city": "Berlin"}, other, OMIT])

    result = run("contacts")

    assert result.success
    assert (
        warehouse.scalar(
            f"SELECT count(*) FROM messaging.contacts WHERE {CURRENT} AND address__city = 'Berlin'"
        )
        == 40
    )
    evaluation = check(result, "contacts", CHECK)
    assert evaluation.severity == AssetCheckSeverity.ERROR
    for text in said:
        assert text in details(result, "contacts")


# Which values a column takes unchanged


@pytest.mark.parametrize(
    ("value", "column", "declared", "variant"),
    [
        (10, "bigint", False, None),
        (10, "double", False, None),
        (2**53 + 1, "double", False, "v_bigint"),
        (10.5, "bigint", False, "v_double"),
        ("12", "bigint", False, "v_text"),
        (True, "bigint", False, "v_bool"),
        (5, "bool", False, "v_bigint"),
        (True, "text", False, "v_bool"),
        (10, "text", False, "v_bigint"),
        # The provider sends some documented text fields (`ttid`) as numbers.
        (10, "text", True, None),
        (True, "text", True, "v_bool"),
        ("2026-12-05T10:00:00+0200", "timestamp", True, None),
        (1733392800, "timestamp", True, "v_bigint"),
        ("0.0450", "decimal", True, None),
        (0.045, "decimal", True, None),
        ("anything", None, False, None),
        # Of the column's own type, but beyond what it holds (DECIMAL(18,6) where declared).
        (Decimal("0.0050000000"), "decimal", True, None),
        (Decimal("0.0050001"), "decimal", True, "v_decimal"),
        (Decimal("1E+12"), "decimal", True, "v_decimal"),
        ("0.0000001", "decimal", True, "v_text"),
        ("NaN", "decimal", True, "v_text"),
        (2**63 - 1, "bigint", False, None),
        (2**63, "bigint", False, "v_decimal"),
        (2**64 + 1, "decimal", True, "v_decimal"),
        ("0001-01-01T00:00:00+0200", "timestamp", True, "v_text"),
        ("9999-12-31T23:00:00-0200", "timestamp", True, "v_text"),
        # A new column: dlt's DECIMAL(38,9).
        (Decimal("1E-10"), None, False, "v_decimal"),
    ],
)
def test_a_value_goes_to_its_column_only_where_its_type_survives_unchanged(
    value, column, declared, variant
):
    digits = (18, 6) if declared else DEFAULT_DIGITS
    assert fitting(value, column, declared, digits)[1] == variant
