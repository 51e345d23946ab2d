"""Landed delivery reports read in columns: a page of landed files parsed by arrow's JSON reader,
the envelopes and then the bodies (`status_tables.status_objects`), into the two arrow tables
`status_tables` builds from dicts.

This is the common case read fast: every event readable, every body a status object at the root
with only declared fields, each of its column's JSON type, parts objects of declared fields. The
reader's explicit schema refuses anything else (an undeclared field, a number where text is
declared, an object where a value was), and then the page is read line by line as before
(`pushed.read_landed`), where each event is kept as it came or named unreadable. Both ways store
the same rows: the same report id (`bodies.digest` of the status object), the same columns.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from messaging_assets.registry import Endpoint
from messaging_assets.source import bodies, status_tables
from messaging_assets.source.arrow_pages import NotColumnar
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
    envelopes = status_tables.read_json(b"".join(data for _, data, _ in files), _ENVELOPE)
    if envelopes.num_rows != sum(counts) or not pc.all(envelopes["readable"]).as_py():
        raise NotColumnar("an event the receiver could not read, or an empty line")
    texts = envelopes["body"].to_pylist()
    parsed = status_tables.status_objects(texts)

    report_ids = [bodies.text_digest(text) for text in texts]
    keep, new = [], set()
    for index, report_id in enumerate(report_ids):
        key = (True, report_id)
        if key not in seen and key not in new:
            new.add(key)
            keep.append(index)
    paths = [path for (path, _, _), count in zip(files, counts, strict=True) for _ in range(count)]
    numbers = [number for count in counts for number in range(1, count + 1)]
    chosen = pa.array(keep, pa.int64())
    landed = {
        "reportId": pa.array([report_ids[index] for index in keep], pa.string()),
        "receivedAt": envelopes["received_at"].take(chosen),
        "landedFile": pa.array([paths[index] for index in keep], pa.string()),
        "landedLine": pa.array([numbers[index] for index in keep], pa.int64()),
        "body": envelopes["body"].take(chosen),
    }
    tables = status_tables.from_parsed(
        parsed.take(chosen),
        landed,
        [report_ids[index] for index in keep],
        endpoint,
        columns,
        load_id,
    )
    seen |= new
    return tables
