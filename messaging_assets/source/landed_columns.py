"""Landed delivery reports read in columns: a page of landed files parsed by arrow's JSON reader,
the envelopes and then the bodies, into the two arrow tables `status_tables` builds from dicts.

This is the common case read fast: every event readable, every body a status object at the root
with only declared fields, each of its column's JSON type, parts objects of declared fields. The
reader's explicit schema refuses anything else (an undeclared field, a number where text is
declared, an object where a value was), and then the page is read line by line as before
(`pushed.read_landed`), where each event is kept as it came or named unreadable. Both ways store
the same rows: the same report id (`bodies.digest` of the status object), the same columns.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from messaging_assets import column_hints
from messaging_assets.column_hints import Hint
from messaging_assets.registry import Endpoint
from messaging_assets.source import bodies, row_ids, status_tables
from messaging_assets.source.arrow_pages import TIMESTAMP, NotColumnar
from messaging_assets.source.variants import Columns

# What the receiver writes on each line (`receiver/landing.py`), read as text where it is a time.
_ENVELOPE = pa.schema(
    [
        ("received_at", pa.string()),
        ("endpoint", pa.string()),
        ("readable", pa.bool_()),
        ("problem", pa.string()),
        ("body", pa.string()),
    ]
)
# Bytes arrow's reader takes at a time. A longer line (a body over the receiver's default limit,
# escaped) fails the read, and its page is read line by line.
_BLOCK = 4 << 20
# One older client spells a part's sentDate as sendDate (`bodies.published_spelling`).
_OLD_SPELLING = "sendDate"


def _read_type(hint: Hint) -> pa.DataType:
    """The type arrow reads a JSON value into: text for what JSON carries as text."""
    return (
        pa.string()
        if hint["data_type"] in ("text", "timestamp", "decimal")
        else (status_tables.arrow_type(hint))
    )


def _struct(hints: Mapping[str, Hint]) -> list[pa.Field]:
    return [pa.field(name, _read_type(hint)) for name, hint in hints.items()]


def _json(data: bytes, schema: pa.Schema) -> pa.Table:
    try:
        return pj.read_json(
            io.BytesIO(data),
            # A line longer than a block would fail the read; a body is at most 64 KiB.
            read_options=pj.ReadOptions(block_size=_BLOCK),
            parse_options=pj.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"
            ),
        )
    except (pa.ArrowException, ValueError) as error:
        raise NotColumnar(str(error)) from None


def reports(
    files: list[tuple[str, bytes, datetime]],
    endpoint: Endpoint,
    columns: Columns,
    seen: set[tuple[bool, str]],
    load_id: str,
) -> tuple[pa.Table, pa.Table]:
    """The reports of a page of landed files (path, bytes, modified), none seen before in this
    run, and their parts, as dlt's arrow items; NotColumnar where the page is to be read line by
    line. The reports returned are added to `seen`."""
    if not all(data.endswith(b"\n") for _, data, _ in files):
        raise NotColumnar("a last line cut short")
    counts = [data.count(b"\n") for _, data, _ in files]
    envelopes = _json(b"".join(data for _, data, _ in files), _ENVELOPE)
    if envelopes.num_rows != sum(counts) or not pc.all(envelopes["readable"]).as_py():
        raise NotColumnar("an event the receiver could not read, or an empty line")
    texts = envelopes["body"]
    if texts.null_count or pc.any(pc.match_substring(texts, "\\u0000")).as_py():
        raise NotColumnar("a body that needs a closer look")
    status_fields = column_hints.STATUS_OBJECT
    part_hints = {**endpoint.nested[status_tables.PARTS], _OLD_SPELLING: column_hints.TIMESTAMP}
    body_schema = pa.schema(
        [
            *_struct(status_fields),
            pa.field(status_tables.PARTS, pa.list_(pa.struct(_struct(part_hints)))),
        ]
    )
    text_list = texts.to_pylist()
    lines = "\n".join(text_list)
    if lines.count("\n") != len(text_list) - 1 or "\r" in lines:
        # JSON text has no raw line breaks inside its strings: outside them they are spacing.
        lines = "\n".join(text.replace("\n", " ").replace("\r", " ") for text in text_list)
    parsed = _json(lines.encode("utf-8") + b"\n", body_schema)
    if parsed.num_rows != len(texts) or parsed["requestId"].null_count:
        raise NotColumnar("a body that is not a status object at the root")
    parts = parsed[status_tables.PARTS].combine_chunks()
    items = parts.flatten()
    if items.null_count or items.field(_OLD_SPELLING).null_count < len(items):
        raise NotColumnar("a part that is not an object, or spelled the older way")

    report_ids = [bodies.text_digest(text) for text in text_list]
    keep, new = [], set()
    for index, report_id in enumerate(report_ids):
        key = (True, report_id)
        if key not in seen and key not in new:
            new.add(key)
            keep.append(index)
    paths = [path for (path, _, _), count in zip(files, counts, strict=True) for _ in range(count)]
    numbers = [number for count in counts for number in range(1, count + 1)]
    ids = [row_ids.status_id(report_ids[index]) for index in keep]
    chosen = pa.array(keep, pa.int64())
    landed = {
        "reportId": pa.array([report_ids[index] for index in keep], pa.string()),
        "receivedAt": _stamps(envelopes["received_at"].take(chosen)),
        "landedFile": pa.array([paths[index] for index in keep], pa.string()),
        "landedLine": pa.array([numbers[index] for index in keep], pa.int64()),
        "body": texts.take(chosen),
    }
    statuses = status_tables.from_columns(
        {**landed, **{name: parsed[name].take(chosen) for name in status_fields}},
        endpoint.columns,
        columns,
        endpoint.name,
        {row_ids.ROW_ID: pa.array(ids, pa.string())},
        load_id,
    )
    kept_parts = parts.take(chosen)
    parents = pc.list_parent_indices(kept_parts)
    offsets = kept_parts.offsets.to_pylist()
    parent_ids = pc.take(pa.array(ids, pa.string()), parents)
    positions = [index - offsets[parent] for index, parent in enumerate(parents.to_pylist())]
    part_columns = kept_parts.flatten()
    children = status_tables.from_columns(
        {name: part_columns.field(name) for name in endpoint.nested[status_tables.PARTS]},
        endpoint.nested[status_tables.PARTS],
        columns,
        status_tables.parts_table(endpoint.name),
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
    )
    seen |= new
    return statuses, children


def _stamps(values: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return pc.cast(values, TIMESTAMP)
    except (pa.ArrowException, ValueError) as error:
        raise NotColumnar(f"receivedAt: {error}") from None
