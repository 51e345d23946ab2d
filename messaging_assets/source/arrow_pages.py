"""Reference-list pages read straight into arrow columns, so that no record becomes a Python dict.

A 200,000-contact page spent most of its time in per-record Python: parsing into dicts, dlt's
relational normalizer, dlt's scd2 row hash, and dicts to arrow. Here pyarrow's JSON reader (C++)
parses the answer into columns, and dlt loads the `pyarrow.Table` through its arrow normalizer,
which writes columns as they are. What the dict path does per record is done per column:

- `_dlt_id`, the scd2 row version: the md5 of the row's non-null values as JSON (keys in name
  order), computed by DuckDB over the columns. A content hash as the row version is dlt's pattern
  for arrow items. dlt's own hash, which the dict path keeps, is a Python call per record; a list
  whose pages change path (see below) gets one new version of each of its rows;
- `_dlt_load_id`: the arrow normalizer does not add it by default;
- types: declared timestamps are parsed by arrow (in UTC), as arrow columns skip dlt's type
  detection;
- column order: as the dict path creates them, by the first record that has a value;
- nested objects: flattened into `parent__child` columns, as dlt's normalizer names them.

A page the arrow path would store differently from the dict path is parsed into dicts instead
(`lists.py`): lists inside records (child tables there), values of more than one JSON type in a
field, numbers beyond 2**53, a value not of its declared type, a field whose type is not its
stored column's (`variants.py` keeps such values beside the column), or an undeclared field whose
values dlt would detect as timestamps. Those pages carry row versions computed the same way
(`stamp_versions`), so a row whose values did not change keeps its version whichever path its
page took.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import DEFAULT_VALIDITY_COLUMN_NAMES, DLT_NAME_PREFIX

from messaging_assets import column_hints
from messaging_assets.column_hints import Hint
from messaging_assets.source.answers import WILDCARD
from messaging_assets.source.variants import EXACT_LIMIT, NUMBERS, Columns, json_type

TIMESTAMP = pa.timestamp("us", tz="UTC")
_HASH_BATCH = 25_000  # rows
_BOM = codecs.BOM_UTF8
# The answer is read as the value of this key, so that an array at the root reads like an object.
_ROOT = "$"


class NotColumnar(ValueError):
    """This page is better loaded as dicts, as before."""


def _records_at(document: pa.Table, steps: Sequence[str]) -> pa.Array:
    """The records where the selector's steps lead: keys into objects, `[*]` into lists."""
    value: pa.Array = document.column(_ROOT).combine_chunks()
    for step in steps:
        if step == WILDCARD and pa.types.is_list(value.type):
            value = value.flatten()
        elif step != WILDCARD and pa.types.is_struct(value.type):
            if value.type.get_field_index(step) < 0:
                raise NotColumnar(f"no `{step}` in the answer")
            value = value.field(step)
        else:
            raise NotColumnar(f"the answer has no `{step}` where expected")
    # A path that ends at a key means the items of the list there.
    if steps[-1:] != [WILDCARD]:
        if not pa.types.is_list(value.type):
            raise NotColumnar("the selector does not lead to a list")
        value = value.flatten()
    if len(value) and not pa.types.is_struct(value.type):
        raise NotColumnar("the records are not objects")
    return value


def _flattened(page: pa.Table) -> pa.Table:
    """Nested objects as `parent__child` columns, recursively, where they stand."""
    while any(pa.types.is_struct(field.type) for field in page.schema):
        names, arrays = [], []
        for field, array in zip(page.schema, page.columns, strict=True):
            if not pa.types.is_struct(field.type):
                names.append(field.name)
                arrays.append(array)
                continue
            for index, child in enumerate(field.type):
                names.append(f"{field.name}__{child.name}")
                arrays.append(pa.chunked_array([chunk.field(index) for chunk in array.chunks]))
        page = pa.Table.from_arrays(arrays, names=names)
    return page


_DLT_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "bool",
    pa.string(): "text",
    TIMESTAMP: "timestamp",
}


def _as_stored(name: str, array: pa.ChunkedArray, stored: str) -> pa.ChunkedArray:
    """An undeclared field's values in its stored column's type, where that changes no value."""
    kind = _DLT_TYPES.get(array.type)
    if kind == stored:
        return array
    if kind == "bigint" and stored == "double" and pc.max(pc.abs(array)).as_py() <= EXACT_LIMIT:
        # As the row version of a double: 10 is hashed as the 10.0 stored before.
        return pc.cast(array, pa.float64())
    raise NotColumnar(f"{name} arrives as {kind or array.type} where its column is {stored}")


def _columnar(
    page: pa.Table, hints: Mapping[str, Hint], table: str | None, stored: Columns | None
) -> tuple[list[pa.Field], list[pa.ChunkedArray]]:
    columns: list[tuple[int, pa.Field, pa.ChunkedArray]] = []
    for field, array in zip(page.schema, page.columns, strict=True):
        name = field.name
        if name.startswith(DLT_NAME_PREFIX):
            raise NotColumnar(f"a field named {name}")
        if pa.types.is_nested(field.type):
            raise NotColumnar(f"nested values in {name}")
        if pa.types.is_null(field.type):
            continue  # the dict path creates no column for a field that is always null
        first = pc.index(pc.is_valid(array), True).as_py()
        if pa.types.is_floating(field.type) and pc.max(pc.abs(array)).as_py() >= EXACT_LIMIT:
            raise NotColumnar(f"{name} has numbers beyond 2**53, where doubles lose digits")
        declared = hints.get(name, {}).get("data_type")
        if declared == "timestamp" and field.type != TIMESTAMP:
            if not (pa.types.is_string(field.type) or pa.types.is_timestamp(field.type)):
                raise NotColumnar(f"{name} is not a timestamp ({field.type})")
            try:
                array = pc.cast(array, TIMESTAMP)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise NotColumnar(f"{name} is not a timestamp ({error})") from None
        elif declared == "text" and not pa.types.is_string(field.type):
            # dlt turns such values into text one by one; arrow would keep their own type.
            raise NotColumnar(f"{name} is declared text but arrives as {field.type}")
        elif declared not in (None, "text", "timestamp"):
            raise NotColumnar(f"{name} is declared {declared}: dlt converts it")
        elif declared is None and (
            pa.types.is_timestamp(field.type)
            or (pa.types.is_string(field.type) and is_iso_timestamp(str, array[first].as_py()))
        ):
            raise NotColumnar(f"{name} holds timestamps but is not declared as such")
        elif declared is None and stored is not None and table is not None:
            column = stored.naming.normalize_path(name)
            known = stored.type_of(table, column)
            if known is None:
                stored.learn(table, column, _DLT_TYPES.get(array.type, "text"))
            else:
                array = _as_stored(name, array, known)
        # Nullable as the resource's hints say every column is (lists.py checks the keys).
        columns.append((first, pa.field(name, array.type), array))
    # The dict path orders new columns by the first record that has a value for them.
    columns.sort(key=lambda column: column[0])
    return [field for _, field, _ in columns], [array for *_, array in columns]


def read_page(
    content: bytes,
    steps: Sequence[str],
    hints: Mapping[str, Hint],
    table: str | None = None,
    stored: Columns | None = None,
) -> pa.Table | None:
    """The records the selector's `steps` lead to in a JSON answer, typed as the dict path types
    them; None for an empty list, which must stay an empty list: dlt merges no empty page, so
    retires nothing. With `stored`, the types `table`'s columns have: an undeclared field of
    another type makes the page NotColumnar, and a new field's type is learnt."""
    body = b"".join((b'{"', _ROOT.encode(), b'":', content.removeprefix(_BOM), b"}"))
    try:
        document = pa_json.read_json(
            pa.BufferReader(body),
            # One block: the answer is a single JSON value, however large.
            read_options=pa_json.ReadOptions(block_size=len(body) + 1),
            parse_options=pa_json.ParseOptions(newlines_in_values=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise NotColumnar(f"pyarrow cannot hold these records ({error})") from None
    records = _records_at(document, steps)
    if not len(records):
        return None
    page = _flattened(pa.Table.from_struct_array(records))
    fields, arrays = _columnar(page, hints, table, stored)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def row_versions(page: pa.Table) -> pa.Array:
    """The md5 of each row as a JSON object of its non-null values, keys in name order.

    Null and absent fields are left out, so that a row's version depends on its own values only:
    not on which fields other rows of the list have. Timestamps count as microseconds since the
    epoch, a number whose text no time zone or DuckDB version changes.
    """
    names = sorted(page.column_names)
    columns = [
        pc.cast(column, pa.int64()) if pa.types.is_timestamp(column.type) else column
        for column in page.select(names).columns
    ]
    # Positional names in SQL: a field may be called anything, `page` or `select` included.
    aliases = [f"c{i}" for i in range(len(names))]
    rows = pa.Table.from_arrays(columns, names=aliases)
    # Batches are what DuckDB spreads over its threads.
    rows = pa.Table.from_batches(rows.to_batches(max_chunksize=_HASH_BATCH))
    # `'"key":' || to_json(NULL)` is NULL, which concat_ws skips.
    members = ", ".join(
        f"{_sql_text(json.dumps(name, ensure_ascii=False) + ':')} || to_json({alias})"
        for alias, name in zip(aliases, names, strict=True)
    )
    with duckdb.connect() as connection:
        connection.register("page", rows)
        versions = connection.sql(
            f"SELECT md5('{{' || concat_ws(',', {members}) || '}}') FROM page"
        ).to_arrow_table()
    return versions.column(0).combine_chunks()


_ARROW_TYPES = {
    "text": pa.string(),
    "timestamp": TIMESTAMP,
    "bigint": pa.int64(),
    "decimal": pa.decimal128(18, 6),
    "bool": pa.bool_(),
}


def as_dlt_page(page: pa.Table, hints: Mapping[str, Hint]) -> pa.Table:
    """A page read as columns (`read_page`) with dlt's columns, in the dict path's order."""
    rows = page.num_rows
    # As the dict path: after the columns the first record has, before those it lacks.
    at = sum(1 for column in page.columns if column[0].is_valid)
    load_id = dlt.current.load_package_state()["load_id"]
    table = page.add_column(
        at,
        pa.field("_dlt_load_id", pa.string(), nullable=False),
        pa.repeat(pa.scalar(load_id, pa.string()), rows),
    )
    table = table.add_column(
        at + 1, pa.field("_dlt_id", pa.string(), nullable=False), row_versions(page)
    )
    # A new table's columns come in the dict path's order: the hinted columns (declared fields,
    # scd2's validity columns) first. dlt sets the validity columns when it merges.
    hinted = {**hints, **dict.fromkeys(DEFAULT_VALIDITY_COLUMN_NAMES, column_hints.TIMESTAMP)}
    for name, hint in reversed(hinted.items()):
        if name in table.column_names:
            array = table.column(name)
            field = table.field(name)
            table = table.drop_columns(name)
        else:
            kind = _ARROW_TYPES.get(hint.get("data_type"), pa.string())
            array = pa.nulls(rows, kind)
            field = pa.field(name, kind)
        table = table.add_column(0, field, array)
    return table


def _flat(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A record's fields as the columnar path names them: objects as `parent__child`."""
    for name, value in record.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{name}__")
        elif value is not None and not name.startswith(DLT_NAME_PREFIX):
            yield f"{prefix}{name}", value


def _as_array(values: list[Any], column_type: str | None) -> pa.Array:
    """One field's values (None where absent) typed as the columnar path types that column."""
    kinds = {json_type(value) for value in values if value is not None}
    if column_type == "timestamp" and kinds == {"text"}:
        try:
            return pc.cast(pa.array(values, pa.string()), TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if column_type == "double" and kinds <= NUMBERS:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if column_type == "text" and kinds <= {"text", *NUMBERS}:
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if len(kinds) == 1 and None not in kinds:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, OverflowError):
            pass
    # Lists, decimals and anything else: their JSON text, the same for the same value.
    return pa.array(
        [
            None if v is None else json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
            for v in values
        ],
        pa.string(),
    )


def stamp_versions(records: list[dict[str, Any]], table: str, stored: Columns) -> None:
    """Sets each record's `_dlt_id` to its row version as the columnar path computes it."""
    flat = [dict(_flat(record)) for record in records]
    names = list(dict.fromkeys(name for row in flat for name in row))
    if not names:
        return
    arrays = [
        _as_array(
            [row.get(name) for row in flat],
            stored.type_of(table, stored.naming.normalize_path(name)),
        )
        for name in names
    ]
    versions = row_versions(pa.Table.from_arrays(arrays, names=names)).to_pylist()
    for record, version in zip(records, versions, strict=True):
        record["_dlt_id"] = version
