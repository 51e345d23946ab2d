"""The arrow path for reference lists stores what the dict path stores, or steps aside."""

import hashlib
import json
import logging

import dlt
import pyarrow as pa
import pytest

from messaging_assets.column_hints import TEXT, TIMESTAMP, named
from messaging_assets.registry import SCD2
from messaging_assets.source.answers import parse_selector
from messaging_assets.source.arrow_pages import (
    _HASH_BATCH,
    NotColumnar,
    as_dlt_page,
    read_page,
    row_versions,
)

CONTACT = {
    "contactId": "c-1",
    "firstName": "Łukasz",
    "company": None,
    "createdAt": "2024-01-01T01:04:05+0100",
}
COMPACT = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}


def answer(*records: dict) -> bytes:
    return json.dumps({"data": list(records)}).encode()


def read(content: bytes, timestamps=("createdAt",), selector: str = "data") -> pa.Table | None:
    hints = {name: TIMESTAMP for name in timestamps}
    return read_page(content, parse_selector(selector), hints=hints)


def envelopes(*lists: list) -> bytes:
    """The provider's list answer: an array of envelopes."""
    return json.dumps([{"contacts": records, "size": len(records)} for records in lists]).encode()


def test_declared_timestamps_are_parsed_in_utc_and_null_only_fields_dropped():
    page = read(answer(CONTACT))

    assert page.column_names == ["contactId", "firstName", "createdAt"]
    assert str(page.column("createdAt")[0].as_py()) == "2024-01-01 00:04:05+00:00"


def test_timestamps_with_and_without_fractions_parse_alike():
    page = read(answer(CONTACT, {**CONTACT, "createdAt": "2024-01-01T00:04:05.250Z"}))

    assert [str(t) for t in page.column("createdAt").to_pylist()] == [
        "2024-01-01 00:04:05+00:00",
        "2024-01-01 00:04:05.250000+00:00",
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (answer({**CONTACT, "tags": ["a"]}), "nested"),
        (answer({**CONTACT, "createdAt": "soon"}), "not a timestamp"),
        (answer(CONTACT, {**CONTACT, "firstName": 7}), "cannot hold"),
        (answer({**CONTACT, "_dlt_id": "x"}), "a field named"),
        (json.dumps({"data": "contacts"}).encode(), "does not lead to a list"),
        (json.dumps({"data": {"contactId": "c-1"}}).encode(), "does not lead to a list"),
        (json.dumps({"data": ["c-1"]}).encode(), "not objects"),
        (json.dumps({"items": [CONTACT]}).encode(), "no `data`"),
        (b'{"data": [', "cannot hold"),
        (answer({**CONTACT, "createdAt": 1704067445}), "not a timestamp"),
        (answer({**CONTACT, "big": 18446744073709551615}), "beyond 2"),
    ],
)
def test_pages_the_dict_path_stores_differently_stay_dicts(content: bytes, reason: str):
    with pytest.raises(NotColumnar, match=reason):
        read(content)


def test_an_empty_list_is_no_page_of_columns():
    # An empty arrow table would be a page: dlt's scd2 merge would retire every stored row.
    for content in (answer(), b'{"data": []}', json.dumps({"data": []}, indent=2).encode()):
        assert read(content) is None


def test_undeclared_timestamps_are_left_to_dlts_detection():
    for value in ("2024-01-01T01:04:05+0100", "2024-01-01T01:04:05.250Z"):
        with pytest.raises(NotColumnar, match="timestamps"):
            read(answer({**CONTACT, "createdAt": value}), timestamps=())


def test_records_of_every_envelope_in_an_array_are_read_in_order():
    content = envelopes(
        [CONTACT], [{**CONTACT, "contactId": "c-2"}, {**CONTACT, "contactId": "c-3"}]
    )

    page = read(content, selector="[*].contacts[*]")

    assert page.column("contactId").to_pylist() == ["c-1", "c-2", "c-3"]


def test_an_envelope_of_exactly_one_record_is_a_page_of_one_row():
    page = read(envelopes([CONTACT]), selector="[*].contacts[*]")

    assert page.num_rows == 1


def test_envelopes_that_hold_no_records_are_no_page():
    assert read(envelopes([], []), selector="[*].contacts[*]") is None


def test_nested_objects_become_columns_named_as_dlt_names_them():
    tagged = {**CONTACT, "tags": {"tier": "gold", "region": {"code": "EU"}}}

    page = read(answer(tagged, {**CONTACT, "contactId": "c-2", "tags": None}))

    assert page.column("tags__tier").to_pylist() == ["gold", None]
    assert page.column("tags__region__code").to_pylist() == ["EU", None]
    assert "tags" not in page.column_names


def test_a_declared_text_field_that_arrives_as_numbers_goes_the_dict_path():
    content = answer({**CONTACT, "ttid": 77292})

    with pytest.raises(NotColumnar, match="ttid is declared text but arrives as int64"):
        hints = {"createdAt": TIMESTAMP, "ttid": TEXT}
        read_page(content, ["data"], hints=hints)


def test_records_under_a_nested_selector_are_read():
    content = json.dumps({"result": {"contacts": [CONTACT]}}).encode()

    page = read(content, selector="$.result.contacts")

    assert page.column("contactId").to_pylist() == ["c-1"]


def test_pretty_printed_answers_are_read():
    page = read(json.dumps({"data": [CONTACT, CONTACT]}, indent=2).encode())

    assert page.num_rows == 2


def test_columns_come_in_order_of_first_value_then_first_appearance():
    content = answer(
        {"contactId": "c-1", "company": None, "email": None},
        {"contactId": "c-2", "email": "a@example.org", "company": "Acme", "phone": "+49"},
    )

    assert read(content, timestamps=()).column_names == ["contactId", "company", "email", "phone"]


def test_whole_numbers_then_decimals_make_one_decimal_column():
    page = read(answer({**CONTACT, "score": 1}, {**CONTACT, "contactId": "c-2", "score": 1.5}))

    assert page.schema.field("score").type == "double"
    assert page.column("score").to_pylist() == [1.0, 1.5]


def test_row_version_is_the_md5_of_the_rows_non_null_values_as_json_in_key_order():
    # More rows than one hashing batch: versions stay with their rows across DuckDB's threads.
    count = 2 * _HASH_BATCH + 7
    records = [{"name": f"Łukasz-{i}", "id": f"c-{i}", "note": None} for i in range(count)]
    page = pa.Table.from_pylist(records)

    expected = [
        hashlib.md5(json.dumps({"id": r["id"], "name": r["name"]}, **COMPACT).encode()).hexdigest()
        for r in records
    ]
    assert row_versions(page).to_pylist() == expected


def test_timestamps_count_as_microseconds_since_the_epoch_in_row_versions():
    page = read(answer({"contactId": "c-1", "createdAt": "1970-01-01T00:00:01.5Z"}))

    (version,) = row_versions(page).to_pylist()

    row = {"contactId": "c-1", "createdAt": 1_500_000}
    assert version == hashlib.md5(json.dumps(row, **COMPACT).encode()).hexdigest()


def test_row_version_does_not_depend_on_the_order_of_keys_in_the_answer():
    reordered = dict(reversed(CONTACT.items()))

    versions = [row_versions(read(answer(record))).to_pylist() for record in (CONTACT, reordered)]

    assert versions[0] == versions[1]


def test_row_version_changes_with_any_value():
    changed = {**CONTACT, "createdAt": "2024-01-01T01:04:06+0100"}

    versions = [row_versions(read(answer(record))).to_pylist() for record in (CONTACT, changed)]

    assert versions[0] != versions[1]


@pytest.mark.parametrize(
    ("other_before", "other_after"),
    [
        ({"contactId": "c-2", "company": "Acme"}, {"contactId": "c-2"}),
        ({"contactId": "c-2"}, {"contactId": "c-2", "vip": True}),
        ({"contactId": "c-2", "score": 1.5}, None),
    ],
    ids=["another row loses the last value of a field", "another row gains a field", "deleted"],
)
def test_unchanged_row_keeps_its_version_whatever_the_other_rows_hold(other_before, other_after):
    pages = [[CONTACT, other_before], [CONTACT, *([other_after] if other_after else [])]]

    versions = [row_versions(read(answer(*records)))[0] for records in pages]

    assert versions[0] == versions[1]


def test_fields_named_like_sql_keep_rows_apart():
    records = [{"contactId": f"c-{i}", "page": 1, "select": "x", "it's": 2} for i in (1, 2)]

    versions = row_versions(read(answer(*records), timestamps=())).to_pylist()

    assert versions[0] != versions[1]


def test_a_declared_field_the_records_lack_is_stored_as_empty_text(tmp_path, caplog):
    columns = named({"contactId": TEXT, "email": TEXT})
    content = answer({"email": "a@example.org", "firstName": "Ann"})
    pipeline = dlt.pipeline(
        "columnar_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "test.duckdb")),
        dataset_name="messaging",
        pipelines_dir=str(tmp_path / "pipelines"),
    )

    @dlt.resource(name="contacts", primary_key="email", columns=columns, write_disposition=SCD2)
    def contacts():
        yield as_dlt_page(read_page(content, ["data"], hints=columns), columns)

    # dlt's own logger does not propagate to the root logger that caplog listens on.
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.addHandler(caplog.handler)
    try:
        for _ in range(2):
            pipeline.run(contacts())
    finally:
        dlt_logger.removeHandler(caplog.handler)

    with pipeline.sql_client() as client:
        types = dict(
            client.execute_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'contacts'"
            )
        )
        rows = client.execute_sql("SELECT contact_id, email FROM messaging.contacts")
    assert types["contact_id"] == "VARCHAR"
    assert rows == [(None, "a@example.org")]
    assert "hints were different" not in caplog.text
