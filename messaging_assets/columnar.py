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
- types: the fields dlt detects as timestamps are parsed by arrow (in UTC), as arrow columns
  skip dlt's type detection;
- column order: as the dict path creates them, by the first record that has a value.

A page the arrow path would store differently from the dict path is parsed into dicts instead
(`transport.check_response`): nested values (lists become child tables there), a missing key,
values of more than one JSON type in a field, numbers beyond 2**53, a declared timestamp that is
not text, an undeclared field whose values dlt would detect as timestamps, or a data selector
other than a path of keys.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import DEFAULT_VALIDITY_COLUMN_NAMES, DLT_NAME_PREFIX
from dlt.extract.items_transform import ItemTransform

from messaging_assets.transport import selector_keys

TIMESTAMP = pa.timestamp("us", tz="UTC")
_HASH_BATCH = 25_000  # rows
# Doubles hold integers exactly up to here; pyarrow reads larger JSON integers as doubles.
_EXACT_LIMIT = 2**53


class NotColumnar(ValueError):
    """This page is better loaded as dicts, as before."""


def _records_at(document: pa.Table, selector: str) -> pa.StructArray | None:
    keys = selector_keys(selector)
    if not keys or not all(key.isidentifier() for key in keys):
        raise NotColumnar(f"data selector `{selector}` is not a path of keys")
    if document.num_rows != 1 or keys[0] not in document.column_names:
        raise NotColumnar(f"no `{selector}` in one JSON object")
    value: pa.Array = document.column(keys[0]).combine_chunks()
    for key in keys[1:]:
        if not pa.types.is_struct(value.type) or value.type.get_field_index(key) < 0:
            raise NotColumnar(f"no `{selector}` in the answer")
        value = value.field(key)
    if not pa.types.is_list(value.type):
        raise NotColumnar(f"`{selector}` is not a list of objects")
    records = value.flatten()
    if not len(records):
        return None
    if not pa.types.is_struct(records.type):
        raise NotColumnar(f"`{selector}` is not a list of objects")
    return records


def _columnar(
    page: pa.Table, keys: Collection[str], timestamps: Collection[str]
) -> tuple[list[pa.Field], list[pa.ChunkedArray]]:
    columns: list[tuple[int, pa.Field, pa.ChunkedArray]] = []
    for field, array in zip(page.schema, page.columns, strict=True):
        name = field.name
        if name.startswith(DLT_NAME_PREFIX):
            raise NotColumnar(f"a field named {name}")
        if pa.types.is_nested(field.type):
            raise NotColumnar(f"nested values in {name}")
        if name in keys and array.null_count:
            raise NotColumnar(f"{name} is missing")  # dlt's normalizer names the record
        if pa.types.is_null(field.type):
            continue  # the dict path creates no column for a field that is always null
        first = pc.index(pc.is_valid(array), True).as_py()
        if pa.types.is_floating(field.type) and pc.max(pc.abs(array)).as_py() >= _EXACT_LIMIT:
            raise NotColumnar(f"{name} has numbers beyond 2**53, where doubles lose digits")
        if name in timestamps and field.type != TIMESTAMP:
            if not (pa.types.is_string(field.type) or pa.types.is_timestamp(field.type)):
                raise NotColumnar(f"{name} is not a timestamp ({field.type})")
            try:
                array = pc.cast(array, TIMESTAMP)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise NotColumnar(f"{name} is not a timestamp ({error})") from None
        elif pa.types.is_timestamp(field.type) or (
            pa.types.is_string(field.type) and is_iso_timestamp(str, array[first].as_py())
        ):
            raise NotColumnar(f"{name} holds timestamps but is not declared as such")
        # Keys are checked above; saying so keeps dlt from warning that the hints differ.
        columns.append((first, pa.field(name, array.type, nullable=name not in keys), array))
    # The dict path orders new columns by the first record that has a value for them.
    columns.sort(key=lambda column: column[0])
    return [field for _, field, _ in columns], [array for *_, array in columns]


def read_page(
    content: bytes, selector: str, keys: Collection[str], timestamps: Collection[str]
) -> pa.Table | None:
    """The records at `selector` in a JSON answer, typed as the dict path types them; None for
    an empty list, which must stay an empty list: dlt merges no empty page, so retires nothing."""
    try:
        document = pa_json.read_json(
            io.BytesIO(content),
            # One block: the answer is a single JSON object, however large.
            read_options=pa_json.ReadOptions(block_size=len(content) + 1),
            parse_options=pa_json.ParseOptions(newlines_in_values=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise NotColumnar(f"pyarrow cannot hold these records ({error})") from None
    records = _records_at(document, selector)
    if records is None:
        return None
    fields, arrays = _columnar(pa.Table.from_struct_array(records), keys, timestamps)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class ColumnReader:
    """`read_page` for one resource: what `check_response` tries before parsing into dicts."""

    def __init__(self, selector: str, keys: Collection[str], timestamps: Collection[str]) -> None:
        self.selector = selector
        self.keys = frozenset(keys)
        self.timestamps = frozenset(timestamps)

    def __call__(self, content: bytes) -> pa.Table | None:
        return read_page(content, self.selector, self.keys, self.timestamps)


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


class ArrowPages(ItemTransform[Any]):
    """A pipe step: a page read as columns (`read_page`) gets dlt's columns, in dlt's order."""

    def __init__(self, hinted: Sequence[str] = ()) -> None:
        super().__init__(lambda item: item)
        self.hinted = (*hinted, *DEFAULT_VALIDITY_COLUMN_NAMES)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        # rest_api hands on a page that is not a list (here, a table) wrapped in a list.
        if isinstance(item, list) and len(item) == 1 and isinstance(item[0], pa.Table):
            item = item[0]
        if not isinstance(item, pa.Table):
            return item
        rows = item.num_rows
        # As the dict path: after the columns the first record has, before those it lacks.
        at = sum(1 for column in item.columns if column[0].is_valid)
        load_id = dlt.current.load_package_state()["load_id"]
        table = item.add_column(
            at,
            pa.field("_dlt_load_id", pa.string(), nullable=False),
            pa.repeat(pa.scalar(load_id, pa.string()), rows),
        )
        table = table.add_column(
            at + 1, pa.field("_dlt_id", pa.string(), nullable=False), row_versions(item)
        )
        # A new table's columns come in the dict path's order: the resource's hinted columns (its
        # keys, scd2's validity columns) first. dlt sets the validity columns when it merges; a
        # key the records lack (the default one, when another is configured) stays empty text.
        for name in reversed(self.hinted):
            if name in table.column_names:
                array = table.column(name)
                field = table.field(name)
                table = table.drop_columns(name)
            else:
                kind = TIMESTAMP if name in DEFAULT_VALIDITY_COLUMN_NAMES else pa.string()
                array = pa.nulls(rows, kind)
                field = pa.field(name, kind)
            table = table.add_column(0, field, array)
        return table
