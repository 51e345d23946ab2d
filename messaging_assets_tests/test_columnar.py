"""The arrow path for reference lists stores what the dict path stores, or steps aside."""

from dlt.common.normalizers.json.helpers import get_row_hash

from messaging_assets.columnar import NotColumnar, _columnar, row_hashes

CONTACT = {
    "contactId": "c-1",
    "firstName": "Łukasz",
    "company": None,
    "createdAt": "2024-01-01T01:04:05+0100",
}


def test_row_hashes_are_dlts_scd2_row_hashes():
    records = [CONTACT, {**CONTACT, "contactId": "c-2", "extra": 1.5}]

    assert row_hashes(records).to_pylist() == [get_row_hash(r) for r in records]


def test_declared_timestamps_are_parsed_in_utc_and_null_only_fields_dropped():
    fields, arrays = _columnar([CONTACT], keys={"contactId"}, timestamps={"createdAt"})

    assert [f.name for f in fields] == ["contactId", "firstName", "createdAt"]
    assert str(arrays[2][0].as_py()) == "2024-01-01 00:04:05+00:00"


def test_pages_the_dict_path_stores_differently_stay_dicts():
    cases = [
        ([{**CONTACT, "tags": ["a"]}], "nested"),
        ([{**CONTACT, "contactId": None}], "missing"),
        ([CONTACT], "timestamps"),  # createdAt not declared: dlt's detection decides
        ([{**CONTACT, "createdAt": "soon"}], "not a timestamp"),
        ([CONTACT, {**CONTACT, "firstName": 7}], "cannot hold"),
    ]
    for records, reason in cases:
        timestamps = set() if reason == "timestamps" else {"createdAt"}
        try:
            _columnar(records, keys={"contactId"}, timestamps=timestamps)
        except NotColumnar as error:
            assert reason in str(error)
        else:
            raise AssertionError(reason)


def test_columns_come_in_order_of_first_value_then_first_appearance():
    records = [
        {"contactId": "c-1", "company": None, "email": None},
        {"contactId": "c-2", "email": "a@example.org", "company": "Acme", "phone": "+49"},
    ]

    fields, _ = _columnar(records, keys={"contactId"}, timestamps=())

    assert [f.name for f in fields] == ["contactId", "company", "email", "phone"]


def test_whole_numbers_then_decimals_make_one_decimal_column():
    records = [{**CONTACT, "score": 1}, {**CONTACT, "contactId": "c-2", "score": 1.5}]

    fields, arrays = _columnar(records, keys={"contactId"}, timestamps={"createdAt"})

    (score,) = [array for field, array in zip(fields, arrays, strict=True) if field.name == "score"]
    assert score.type == "double"
    assert score.to_pylist() == [1.0, 1.5]
