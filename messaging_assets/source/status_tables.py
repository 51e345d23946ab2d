"""Status objects (delivery reports, messages) as dlt takes them: a batch as two arrow tables, the
statuses' and their parts', so that dlt's JSON normalizer, which flattens every status and part
and coerces every timestamp one by one, is skipped, and dlt's arrow normalizer writes the columns
as they are.

dlt does not unnest arrow items, and takes no rows for a table it nests itself, so the parts are
a table of their own to dlt (`<table>__parts`, a table variant of the status's resource), their
rows built here with the columns dlt's normalizer gives a nested table: `_dlt_parent_id` and
`_dlt_root_id` (the status's `_dlt_id`), `_dlt_list_idx`, and ids of their own (`row_ids.py`).
The parts are keyed by their id, and a merged table's parts are replaced by their status's new
ones (`_dlt_root_id` as merge key).

A batch of dicts (`items`) goes as arrow when the dict path would store every value as it is:
every field declared, every value of its column's JSON type (text for text, timestamps and
decimals; an integer for bigint), every timestamp and decimal parsed by arrow within its column.
Anything else (a value `Columns.route` would keep in a variant, an undeclared field, a nested
shape, text arrow parses otherwise than dlt) raises NotColumnar, and the batch goes as dicts, its
values routed. Bodies of status objects can be read by arrow's JSON reader straight into columns
(`status_objects`, `from_parsed`), under the same rules.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from dlt.common.schema import Schema
from dlt.extract.resource import DltResource

from messaging_assets import column_hints
from messaging_assets.column_hints import Hint
from messaging_assets.registry import Endpoint
from messaging_assets.source import row_ids
from messaging_assets.source.arrow_pages import TIMESTAMP, NotColumnar
from messaging_assets.source.variants import ITEM, Columns

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The list in a status object whose items are the parts.
PARTS = "parts"
# The field dlt wraps a list's item in when the item is a list itself.
LIST = "list"
_TEXT_KEY: Hint = {"data_type": "text", "nullable": False}
# dlt's own columns of the parts, as its normalizer typed them when it nested them; and the load
# id, which dlt gives a table of its own (nullable: the parts stored before have none).
PART_COLUMNS: Mapping[str, Hint] = {
    row_ids.ROOT_ID: _TEXT_KEY,
    row_ids.PARENT_ID: _TEXT_KEY,
    row_ids.LIST_INDEX: {"data_type": "bigint", "nullable": False},
    row_ids.ROW_ID: {**_TEXT_KEY, "unique": True, "row_key": True},
    row_ids.LOAD_ID: {"data_type": "text", "nullable": True},
}
# A status's own, as dlt's normalizer types them (an arrow schema would make them nullable).
STATUS_COLUMNS: Mapping[str, Hint] = {
    row_ids.LOAD_ID: _TEXT_KEY,
    row_ids.ROW_ID: {**_TEXT_KEY, "unique": True, "row_key": True},
}
_DECIMAL_DIGITS = 18, 6
# Bytes arrow's reader takes at a time. A longer line (a body over the receiver's default limit,
# escaped) fails the read, and what held it is read the other way, as dicts.
_BLOCK = 4 << 20
# One older client spells a part's sentDate as sendDate (`bodies.published_spelling`).
_OLD_SPELLING = "sendDate"
# Microseconds since the epoch of the first instant of the year 2 and of the year 9999.
_EARLIEST = int((datetime(2, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()) * 10**6
_LATEST = int((datetime(9999, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()) * 10**6


def parts_table(table: str) -> str:
    return f"{table}__{PARTS}"


def split(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Takes each status's parts out of it, as rows of the parts' table with dlt's columns, and
    gives the status its `_dlt_id`."""
    parts = []
    for row in rows:
        row_id = row_ids.status_id(row[key])
        row[row_ids.ROW_ID] = row_id
        listed = row.pop(PARTS, None)
        if listed is None:
            continue
        if not isinstance(listed, list):
            row[PARTS] = listed  # an object or a scalar stays in the status, for dlt to store
            continue
        for position, part in enumerate(listed):
            # An item that is not an object is wrapped as dlt wraps it.
            if not isinstance(part, dict):
                part = {LIST: part} if isinstance(part, list) else {ITEM: part}
            parts.append({**part, **row_ids.part_ids(row_id, position)})
    return parts


def arrow_type(hint: Hint) -> pa.DataType:
    """The arrow type of a column as dlt stores it; NotColumnar for the types not read here."""
    kind = hint["data_type"]
    if kind == "text":
        return pa.string()
    if kind == "timestamp":
        return TIMESTAMP
    if kind == "bigint":
        return pa.int64()
    if kind == "decimal" and (hint.get("precision"), hint.get("scale")) == _DECIMAL_DIGITS:
        return pa.decimal128(*_DECIMAL_DIGITS)
    raise NotColumnar(f"no arrow type here for {kind}")


def _read_type(hint: Hint) -> pa.DataType:
    """The type arrow reads a JSON value into: text for what JSON carries as text."""
    kind = hint["data_type"]
    return pa.string() if kind in ("text", "timestamp", "decimal") else arrow_type(hint)


def _struct(hints: Mapping[str, Hint]) -> list[pa.Field]:
    return [pa.field(name, _read_type(hint)) for name, hint in hints.items()]


# The provider documents `ttid` as text, and its own example sends an integer: both are stored as
# text (on the dict path dlt writes the integer's `str`). Arrow's reader takes it as it comes.
_TEXT_OR_INTEGER = "ttid"
# A status object as the provider sends it, at the root of a body.
_STATUS_OBJECT = pa.schema(
    [
        *_struct({k: v for k, v in column_hints.STATUS_OBJECT.items() if k != _TEXT_OR_INTEGER}),
        pa.field(
            PARTS,
            pa.list_(
                pa.struct(_struct({**column_hints.PART, _OLD_SPELLING: column_hints.TIMESTAMP}))
            ),
        ),
    ]
)


def read_json(data: bytes, schema: pa.Schema, others: str = "error") -> pa.Table:
    """Lines of JSON objects read by arrow's reader into `schema`; NotColumnar for any value
    not of its field's JSON type, and, unless `others` is "infer", any field not in it."""
    try:
        return pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(block_size=_BLOCK),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=others),
        )
    except (pa.ArrowException, ValueError) as error:
        raise NotColumnar(str(error)) from None


def status_objects(texts: list[str]) -> pa.Table:
    """Bodies that are each a status object at the root, with declared fields only, each of its
    JSON type, and parts that are objects of declared fields, in columns; else NotColumnar."""
    if any(text is None or "\\u0000" in text for text in texts):
        raise NotColumnar("a body that needs a closer look")
    lines = "\n".join(texts)
    if lines.count("\n") != len(texts) - 1 or "\r" in lines:
        # JSON text has no raw line breaks inside its strings: outside them they are spacing.
        lines = "\n".join(text.replace("\n", " ").replace("\r", " ") for text in texts)
    parsed = read_json(lines.encode("utf-8") + b"\n", _STATUS_OBJECT, others="infer")
    if parsed.num_rows != len(texts) or parsed["requestId"].null_count:
        raise NotColumnar("a body that is not a status object at the root")
    undeclared = set(parsed.column_names) - {*_STATUS_OBJECT.names, _TEXT_OR_INTEGER}
    if undeclared or parsed.schema.field(PARTS).type != _STATUS_OBJECT.field(PARTS).type:
        raise NotColumnar(f"fields not declared: {sorted(undeclared) or 'in a part'}")
    items = parsed[PARTS].combine_chunks().flatten()
    if items.null_count or items.field(_OLD_SPELLING).null_count < len(items):
        raise NotColumnar("a part that is not an object, or spelled the older way")
    if _TEXT_OR_INTEGER not in parsed.column_names:
        return parsed.append_column(_TEXT_OR_INTEGER, pa.nulls(parsed.num_rows, pa.string()))
    found = parsed[_TEXT_OR_INTEGER]
    if found.type not in (pa.string(), pa.int64(), pa.null()):
        raise NotColumnar(f"{_TEXT_OR_INTEGER}: neither text nor an integer ({found.type})")
    index = parsed.column_names.index(_TEXT_OR_INTEGER)
    return parsed.set_column(index, _TEXT_OR_INTEGER, pc.cast(found, pa.string()))


def from_parsed(
    parsed: pa.Table,
    values: Mapping[str, pa.Array | pa.ChunkedArray],
    keys: list[str],
    endpoint: Endpoint,
    columns: Columns,
    load_id: str,
) -> tuple[pa.Table, pa.Table]:
    """An endpoint's arrow items from `status_objects` (one row per key) and the values of its
    other fields: the statuses, keyed by `keys`, and their parts."""
    ids = pa.array([row_ids.status_id(key) for key in keys], pa.string())
    statuses = from_columns(
        {
            **{name: parsed[name] for name in column_hints.STATUS_OBJECT},
            **values,
        },
        endpoint.columns,
        columns,
        endpoint.name,
        {row_ids.ROW_ID: ids},
        load_id,
        STATUS_COLUMNS,
        endpoint.key,
    )
    parts = parsed[PARTS].combine_chunks()
    parents = pc.list_parent_indices(parts)
    offsets = parts.offsets.to_pylist()
    positions = [index - offsets[parent] for index, parent in enumerate(parents.to_pylist())]
    parent_ids = pc.take(ids, parents)
    part_hints = endpoint.nested[PARTS]
    part_columns = parts.flatten()
    children = from_columns(
        {name: part_columns.field(name) for name in part_hints},
        part_hints,
        columns,
        parts_table(endpoint.name),
        {
            row_ids.ROOT_ID: parent_ids,
            row_ids.PARENT_ID: parent_ids,
            row_ids.LIST_INDEX: pa.array(positions, pa.int64()),
            row_ids.ROW_ID: pa.array(
                [
                    row_ids.part_id(parent, position)
                    for parent, position in zip(parent_ids.to_pylist(), positions, strict=True)
                ],
                pa.string(),
            ),
        },
        load_id,
        PART_COLUMNS,
    )
    return statuses, children


def _first(rows: list[dict[str, Any]], field: str) -> Any:
    return next((row[field] for row in rows if row.get(field) is not None), None)


def _read_as(rows: list[dict[str, Any]], field: str, hint: Hint) -> pa.DataType:
    """The arrow type a field's values are read into: text for a timestamp or decimal sent as
    text (cast after), the column's own type otherwise. A value of another type fails the read,
    as `Columns.route` would keep it aside."""
    kind = hint["data_type"]
    # Arrow would take 1.0 and Decimal(1) as 1 where dlt keeps them in a variant.
    if kind == "bigint" and not all(type(row.get(field)) in (int, type(None)) for row in rows):
        raise NotColumnar(f"{field}: a value that is not an integer")
    if kind == "timestamp" and isinstance(_first(rows, field), datetime):
        return TIMESTAMP  # the receiver's own times
    return pa.string() if kind in ("text", "timestamp", "decimal") else arrow_type(hint)


def _stored(name: str, values: pa.Array | pa.ChunkedArray, hint: Hint) -> pa.Array:
    """Values cast into their column's type as dlt would parse them, or NotColumnar."""
    target = arrow_type(hint)
    try:
        stored = values if values.type == target else pc.cast(values, target)
    except (pa.ArrowException, ValueError) as error:
        raise NotColumnar(f"{name}: {error}") from None
    if isinstance(stored, pa.ChunkedArray):
        stored = stored.combine_chunks()
    if target == TIMESTAMP and stored.null_count < len(stored):
        # An offset can take a time out of the years both destinations store.
        earliest, latest = pc.min_max(stored.cast(pa.int64())).values()
        if earliest.as_py() < _EARLIEST or latest.as_py() >= _LATEST:
            raise NotColumnar(f"{name}: a time outside the years 2 to 9998")
    return stored


def from_columns(
    values: Mapping[str, pa.Array | pa.ChunkedArray],
    hints: Mapping[str, Hint],
    columns: Columns,
    table: str,
    dlt_columns: Mapping[str, pa.Array | pa.ChunkedArray],
    load_id: str,
    own: Mapping[str, Hint],
    key: str | None = None,
) -> pa.Table:
    """A table's arrow item: its declared fields' values cast to their columns' types, in the
    declared order (a new table's order on the dict path), then dlt's columns and the load id,
    each as nullable as its hint (`own` for dlt's; only `key` of the declared is never null), so
    that dlt finds the item's schema as its hints say. NotColumnar where a column is stored as
    another type, or a value does not cast."""
    fields, arrays = [], []
    for field, hint in hints.items():
        column = columns.column(field)
        if columns.type_of(table, column) != hint["data_type"]:
            raise NotColumnar(f"{table}.{column} is stored as {columns.type_of(table, column)}")
        array = _stored(column, values[field], hint)
        fields.append(pa.field(column, array.type, nullable=field != key))
        arrays.append(array)
    count = len(arrays[0])
    load = pa.repeat(pa.scalar(load_id, pa.string()), count)
    for name, array in {**dlt_columns, row_ids.LOAD_ID: load}.items():
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        fields.append(pa.field(name, array.type, nullable=own[name].get("nullable", True)))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _integers_as_text(rows: list[dict[str, Any]], hints: Mapping[str, Hint]) -> None:
    """A declared text field sent as an integer (`ttid`) holds its text, as dlt stores it."""
    text = [field for field, hint in hints.items() if hint["data_type"] == "text"]
    for row in rows:
        for field in text:
            if type(row.get(field)) is int:
                row[field] = str(row[field])


def _table(
    rows: list[dict[str, Any]],
    hints: Mapping[str, Hint],
    columns: Columns,
    table: str,
    load_id: str,
    own: Mapping[str, Hint],
    key: str | None = None,
) -> pa.Table:
    """`from_columns` of `split`'s rows."""
    _integers_as_text(rows, hints)
    fields = [pa.field(field, _read_as(rows, field, hint)) for field, hint in hints.items()]
    dlt_columns = [name for name in PART_COLUMNS if name != row_ids.LOAD_ID and name in rows[0]]
    fields += [pa.field(name, arrow_type(PART_COLUMNS[name])) for name in dlt_columns]
    try:
        read = pa.Table.from_pylist(rows, schema=pa.schema(fields))
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
        raise NotColumnar(f"{table}: {error}") from None
    return from_columns(
        {field: read.column(field) for field in hints},
        hints,
        columns,
        table,
        {name: read.column(name) for name in dlt_columns},
        load_id,
        own,
        key,
    )


def status_tables(
    rows: list[dict[str, Any]],
    parts: list[dict[str, Any]],
    table: str,
    hints: Mapping[str, Hint],
    part_hints: Mapping[str, Hint],
    columns: Columns,
    load_id: str,
    key: str,
) -> tuple[pa.Table, pa.Table]:
    """The statuses' table and their parts', from `split`'s rows, as dlt would store them."""
    for found, declared in ((rows, hints), (parts, part_hints)):
        unknown = set().union(*map(dict.keys, found)) - declared.keys() - PART_COLUMNS.keys()
        if unknown:
            raise NotColumnar(f"fields not declared: {sorted(unknown)}")
    statuses = _table(rows, hints, columns, table, load_id, STATUS_COLUMNS, key)
    if not parts:
        return statuses, pa.table({})
    return statuses, _table(parts, part_hints, columns, parts_table(table), load_id, PART_COLUMNS)


def items(
    rows: list[dict[str, Any]], endpoint: Endpoint, columns: Columns, load_id: str
) -> Iterator[Any]:
    """A batch of an endpoint's status objects as dlt's items: the statuses and their parts,
    as arrow tables where the dict path would store every value as it is, else as dicts."""
    parts = split(rows, endpoint.key)
    try:
        statuses, part_table = status_tables(
            rows,
            parts,
            endpoint.name,
            endpoint.columns,
            endpoint.nested[PARTS],
            columns,
            load_id,
            endpoint.key,
        )
    except NotColumnar:
        for row in rows:
            columns.route(row, endpoint.name)
        for part in parts:
            columns.route(part, parts_table(endpoint.name))
        statuses, part_table = rows, parts
    return emitted(statuses, part_table, endpoint)


def emitted(
    statuses: pa.Table | list[dict[str, Any]],
    parts: pa.Table | list[dict[str, Any]],
    endpoint: Endpoint,
) -> Iterator[Any]:
    """The statuses, then their parts into their own table."""
    child = parts_table(endpoint.name)
    _unnested(dlt.current.source_schema(), child)
    yield statuses
    if len(parts):
        yield dlt.mark.with_table_name(parts, child)


def _unnested(schema: Schema, table: str) -> None:
    """An earlier version's parts table, nested by dlt's normalizer, as a table of its own (dlt
    refuses to merge the two)."""
    found = schema.tables.get(table)
    if found is not None and found.pop("parent", None) is not None:
        for column in found.get("columns", {}).values():
            column.pop("parent_key", None)
            column.pop("root_key", None)


def apply_hints(resource: DltResource, endpoint: Endpoint) -> DltResource:
    """The statuses' own columns, and the parts' table, as `items` fills them."""
    resource.apply_hints(columns=column_hints.named(STATUS_COLUMNS))
    # A merged status's parts are replaced by its new ones; a stored report's stay as they are.
    replaced = {"merge_key": row_ids.ROOT_ID} if endpoint.history == "merge" else {}
    table_variant(
        resource,
        parts_table(endpoint.name),
        primary_key=row_ids.ROW_ID,
        columns={**column_hints.named(endpoint.nested[PARTS]), **column_hints.named(PART_COLUMNS)},
        **replaced,
    )
    return resource


def table_variant(resource: DltResource, table: str, **hints: Any) -> None:
    """Hints for another table the resource's items go to (`dlt.mark.with_table_name`)."""
    # A table variant starts from the resource's own hints: without its columns and child tables
    # cleared first, the variant would get the endpoint's key as a column that must not be null.
    resource.apply_hints(table_name=table, columns={}, nested_hints={}, create_table_variant=True)
    resource.apply_hints(table_name=table, create_table_variant=True, **hints)
