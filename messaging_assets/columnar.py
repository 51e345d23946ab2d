"""Reference-list pages as arrow tables, so that dlt skips its per-row Python normalizer.

A 200,000-contact page spent most of its time in dlt's relational normalizer (bench: normalize
~63 % of the step). dlt loads a `pyarrow.Table` through its arrow normalizer instead, which writes
columns as they are. What the Python normalizer did per row is done here, the same way:

- `_dlt_id`: the scd2 row hash, computed exactly as dlt computes it (shake_128 of the record's
  sorted-key JSON), so that rows loaded before this change are not retired as "changed";
- `_dlt_load_id`: the arrow normalizer does not add it by default;
- types: the fields dlt detects as timestamps are parsed by arrow (in UTC), as arrow columns
  skip dlt's type detection;
- column order: as the dict path creates them, by the first record that has a value.

Anything the arrow path would store differently from the dict path stays on the dict path: a page
with nested values (lists become child tables there, a JSON column here), a value arrow cannot
convert, or an undeclared field whose values dlt would detect as timestamps.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
from collections.abc import Collection, Sequence
from typing import Any

import dlt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.utils import DLT_ID_LENGTH_BYTES
from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import DEFAULT_VALIDITY_COLUMN_NAMES, DLT_NAME_PREFIX
from dlt.extract.items_transform import ItemTransform

log = logging.getLogger(__name__)

TIMESTAMP = pa.timestamp("us", tz="UTC")
# dlt's json.dumpb(sort_keys=True) for JSON-parsed values (get_row_hash), without its wrapper.
_SORTED_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_PAD = b"\0" * (-DLT_ID_LENGTH_BYTES % 3)
_GROUPS = (DLT_ID_LENGTH_BYTES + len(_PAD)) * 4 // 3  # base64 characters of a padded digest
_HASH_CHARS = -(-DLT_ID_LENGTH_BYTES * 4 // 3)  # of the digest alone, without `=` padding


class NotColumnar(ValueError):
    """This page is better loaded as dicts, as before."""


def row_hashes(records: Sequence[dict[str, Any]]) -> pa.Array:
    """dlt's scd2 row hash of each record (`get_row_hash`), as one arrow string column.

    Only the shake_128 digest is taken per record; the base64 text is made for all of them at
    once: a digest padded to a multiple of 3 bytes encodes to whole base64 groups, which begin
    with the unpadded base64 of the digest alone.
    """
    shake, dumps = hashlib.shake_128, orjson.dumps
    digests = [shake(dumps(r, option=_SORTED_JSON)).digest(DLT_ID_LENGTH_BYTES) for r in records]
    encoded = binascii.b2a_base64(_PAD.join(digests) + _PAD, newline=False)
    count = len(records)
    offsets = pa.array(range(0, _GROUPS * (count + 1), _GROUPS), pa.int32())
    padded = pa.StringArray.from_buffers(count, offsets.buffers()[1], pa.py_buffer(encoded))
    return pc.utf8_slice_codeunits(padded, 0, _HASH_CHARS)


def _first_valid(array: pa.ChunkedArray) -> int:
    return pc.index(pc.is_valid(array), True).as_py()


def _sampled_schema(records: list[dict[str, Any]]) -> pa.Schema:
    """The records' arrow schema, typed by the first non-null value of each field."""
    missing = set().union(*records)
    count = len(missing)
    # In order of first appearance, as arrow and the dict path order them.
    order: dict[str, None] = {}
    found: dict[str, Any] = {}
    for record in records:
        if len(order) < count:
            order.update(dict.fromkeys(record))
        elif not missing:
            break
        for name in [name for name in missing if record.get(name) is not None]:
            found[name] = record[name]
            missing.discard(name)
    return pa.schema(list(pa.array([{name: found.get(name) for name in order}]).type))


def _table(records: list[dict[str, Any]]) -> pa.Table:
    # Into an integer column arrow truncates a later float without a word: pages with integers
    # take the slower path below, which types each field by all its values (ints and floats make
    # doubles), as does a page whose later values do not fit the sampled type.
    try:
        schema = _sampled_schema(records)
        if not any(pa.types.is_integer(field.type) for field in schema):
            return pa.Table.from_pylist(records, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise NotColumnar(f"arrow cannot hold these records ({error})") from None


def _columnar(
    records: list[dict[str, Any]], keys: Collection[str], timestamps: Collection[str]
) -> tuple[list[pa.Field], list[pa.ChunkedArray]]:
    table = _table(records)
    columns: list[tuple[int, pa.Field, pa.ChunkedArray]] = []
    for field, array in zip(table.schema, table.columns, strict=True):
        name = field.name
        if name.startswith(DLT_NAME_PREFIX):
            raise NotColumnar(f"a field named {name}")
        if pa.types.is_nested(field.type):
            raise NotColumnar(f"nested values in {name}")
        if name in keys and array.null_count:
            raise NotColumnar(f"{name} is missing")  # dlt's normalizer names the record
        if pa.types.is_null(field.type):
            continue  # the dict path creates no column for a field that is always null
        first = _first_valid(array)
        if name in timestamps and field.type != TIMESTAMP:
            try:
                array = pc.cast(array, TIMESTAMP)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise NotColumnar(f"{name} is not a timestamp ({error})") from None
        elif pa.types.is_string(field.type) and is_iso_timestamp(str, array[first].as_py()):
            raise NotColumnar(f"{name} holds timestamps but is not declared as such")
        # Keys are checked above; saying so keeps dlt from warning that the hints differ.
        columns.append((first, pa.field(name, array.type, nullable=name not in keys), array))
    # The dict path orders new columns by the first record that has a value for them.
    columns.sort(key=lambda column: column[0])
    return [field for _, field, _ in columns], [array for *_, array in columns]


class ArrowPages(ItemTransform[Any]):
    """A pipe step: each page (a list of records) becomes one `pyarrow.Table`, or stays as is."""

    def __init__(
        self,
        resource: str,
        keys: Collection[str],
        timestamps: Collection[str],
        hinted: Sequence[str] = (),
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.keys = frozenset(keys)
        self.timestamps = frozenset(timestamps)
        self.hinted = (*hinted, *DEFAULT_VALIDITY_COLUMN_NAMES)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, list) or not item or not all(isinstance(r, dict) for r in item):
            return item
        try:
            fields, arrays = _columnar(item, self.keys, self.timestamps)
        except NotColumnar as reason:
            log.info("messaging/%s: page loaded as dicts: %s", self.resource, reason)
            return item
        # As the dict path: after the columns the first record has, before those it lacks.
        at = sum(1 for array in arrays if pc.is_valid(array)[0].as_py())
        load_id = dlt.current.load_package_state()["load_id"]
        fields[at:at] = [
            pa.field("_dlt_load_id", pa.string(), nullable=False),
            pa.field("_dlt_id", pa.string(), nullable=False),
        ]
        arrays[at:at] = [
            pa.chunked_array([pa.array([load_id] * len(item), pa.string())]),
            pa.chunked_array([row_hashes(item)]),
        ]
        table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        # A new table's columns come in the dict path's order: the resource's hinted columns (its
        # key, scd2's validity columns) first. dlt sets the validity columns when it merges.
        for name in reversed(self.hinted):
            if name in table.column_names:
                array = table.column(name)
                field = table.field(name)
                table = table.drop_columns(name)
            else:
                array = pa.nulls(len(item), TIMESTAMP)
                field = pa.field(name, TIMESTAMP)
            table = table.add_column(0, field, array)
        return table
