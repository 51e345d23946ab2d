"""What the provider pushes (delivery reports, inbound messages), loaded from the receiver's
landing zone (`receiver/landing.py`) by dlt's filesystem source.

Each pushed endpoint is a dlt resource: dlt's `filesystem` lists `<landing>/<endpoint>/*.jsonl`
and its incremental on `modification_date` passes on only the files modified since the newest
file of the last load, less a lag (MESSAGING__AUTOMATION__LANDING_LAG_SECONDS). A file keeps the
time it was written but appears only when it is renamed into place, after its flush: a file
written a moment before another can appear after that one was loaded, and the lag reaches back
for it. In a bucket an object is dated to the whole second by when its upload began, so the same
holds there; objects of the newest second are told apart by dlt's incremental, which keeps their
keys. Files within the lag are read again, which is harmless: rows are inserted once per key
(dlt's insert-only merge), and a key that comes twice in one run is passed on once.

A page of delivery reports is read in columns where it can be (`landed_columns.py`), and line by
line otherwise (`read_landed`). Events the receiver could not read (`readable` false), and lines
the loader cannot read, go to `unreadable_events` beside the endpoint's table, keyed by where they
are (file and line).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import dlt
from dlt.common.storages.fsspec_filesystem import FileItemDict, glob_files
from dlt.extract.resource import DltResource
from dlt.sources.filesystem import filesystem

from messaging_assets import column_hints
from messaging_assets.receiver import landing
from messaging_assets.receiver.settings import ReceiverSettings
from messaging_assets.receiver.storage import landing_filesystem
from messaging_assets.registry import (
    INSERT_ONLY,
    PUSHED,
    UNREADABLE_KEY,
    UNREADABLE_TABLE,
    Endpoint,
)
from messaging_assets.source import bodies, landed_columns, status_tables
from messaging_assets.source.arrow_pages import NotColumnar
from messaging_assets.source.variants import Columns

# The receiver's setting: the loader reads where the receiver writes.
LANDING_URL = "sources.messaging.receiver.landing_url"


def landing_url() -> str:
    """The landing zone: the receiver's `landing_url`, read as the receiver reads it (a folder,
    relative to where the process runs, `file://` optional, or a bucket URL such as
    s3://bucket/prefix). Its credentials are dlt's filesystem source's own
    (SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__...), which the receiver reads too."""
    url = str(dlt.config.get(LANDING_URL) or ReceiverSettings.landing_url)
    return url.removeprefix("file://")


def landed_glob(endpoint: str) -> str:
    """An endpoint's landed files under the landing zone; temporaries (`.….tmp`) do not match."""
    return f"{endpoint}/*{landing.SUFFIX}"


def landed_files(url: str) -> list[tuple[str, datetime]]:
    """(path under the landing zone, modification time) of every pushed endpoint's landed file,
    listed as dlt's filesystem source lists them for the loader, with the same credentials."""
    client, _ = landing_filesystem(url)
    return [
        (item["relative_path"], item["modification_date"])
        for endpoint in PUSHED
        for item in glob_files(client, url, landed_glob(endpoint.name))
        if landing.is_landed_file(item["file_name"])
    ]


def _landed(event: landing.LandedEvent, path: str) -> dict[str, Any]:
    return {"receivedAt": event.received_at, "landedFile": path, "landedLine": event.line}


def report_record(event: landing.LandedEvent, path: str) -> dict[str, Any]:
    """A delivery report's row: its status object, keyed by its digest, the body as received."""
    status = bodies.status_object(bodies.parse(event.body))
    if status is None:
        raise ValueError("no requestId at the root or under data")
    # The digest of the object as pushed, before its parts' fields are renamed.
    key = bodies.digest(status)
    record = bodies.published_spelling(status)
    return {**record, "reportId": key, **_landed(event, path), "body": event.text}


def inbound_record(event: landing.LandedEvent, path: str) -> dict[str, Any]:
    """An inbound message's row: the body as the provider sent it, with where it landed."""
    message = bodies.parse(event.body)
    if not isinstance(message, dict) or "requestId" not in message:
        raise ValueError("not a JSON object with a requestId")
    return {**message, **_landed(event, path)}


RECORDS: dict[str, Callable[[landing.LandedEvent, str], dict[str, Any]]] = {
    landing.DELIVERY_REPORTS: report_record,
    landing.INBOUND_MESSAGES: inbound_record,
}


def unreadable_record(
    endpoint: str, path: str, line: int, received_at: datetime, problem: str, body: bytes
) -> dict[str, Any]:
    """An event that could not be read, kept as it came: as text, or in base64 if it is not
    UTF-8 or holds a NUL, which PostgreSQL's text refuses."""
    record: dict[str, Any] = {
        UNREADABLE_KEY: f"{path}:{line}",
        "endpoint": endpoint,
        "problem": problem,
        "receivedAt": received_at,
        "landedFile": path,
        "landedLine": line,
    }
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        record["body"] = text
    else:
        record["bodyBase64"] = base64.b64encode(body).decode("ascii")
    return record


def read_landed(
    endpoint: str, data: bytes, path: str, modified: datetime
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """(readable, row) for every line of a landed file: the endpoint's row, or an unreadable
    event's. `modified` dates a line too broken to say when it was received."""
    to_record = RECORDS[endpoint]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # after the last newline; a last line cut short is not empty
    for number, raw in enumerate(lines, start=1):
        try:
            event = landing.parse_line(raw, path, number)
        except ValueError as error:
            yield False, unreadable_record(endpoint, path, number, modified, str(error), raw)
            continue
        problem = event.problem or "not readable"
        if event.readable:
            try:
                yield True, to_record(event, path)
                continue
            except ValueError as error:
                problem = f"readable to the receiver, not to the loader: {error}"
        yield (
            False,
            unreadable_record(endpoint, path, number, event.received_at, problem, event.body),
        )


def pushed_resource(endpoint: Endpoint, url: str, lag_seconds: float) -> DltResource:
    """An endpoint's landed files as a dlt resource: dlt's filesystem source with its own
    incremental state, each file's rows into the endpoint's table or `unreadable_events`."""
    files = filesystem(
        bucket_url=url,
        file_glob=landed_glob(endpoint.name),
        # A page costs dlt about the same whatever its size (two arrow items): pages of 300 files
        # loaded 100,000 reports 0.7 s faster than dlt's 100, in no more memory; at the
        # receiver's usual 4 to 10 events a file, a page is a few MB.
        files_per_page=300,
        # Oldest first: of two copies of an event in one run, the one landed first is kept.
        incremental=dlt.sources.incremental("modification_date", lag=lag_seconds, row_order="asc"),
    ).with_name(f"{endpoint.name}_files")  # the incremental's state is kept under this name
    # Keys passed on in this run, by table: a key must come once in a load, or dlt stores both.
    seen: set[tuple[bool, str]] = set()

    def read(items: list[FileItemDict]) -> Iterator[Any]:
        columns = Columns(dlt.current.source_schema(), endpoint.tables(), typed=True)
        files = [
            (item["relative_path"], item.read_bytes(), item["modification_date"])
            for item in items
            if landing.is_landed_file(item["file_name"])
        ]
        if not files:
            return
        load_id = dlt.current.load_package_state()["load_id"]
        if endpoint.split_children:
            try:
                tables = landed_columns.reports(files, endpoint, columns, seen, load_id)
            except NotColumnar:
                pass  # read line by line
            else:
                yield from status_tables.emitted(*tables, endpoint)
                return
        rows, unreadable = [], []
        for path, data, modified in files:
            for readable, row in read_landed(endpoint.name, data, path, modified):
                key = (readable, row[endpoint.key if readable else UNREADABLE_KEY])
                if key in seen:
                    continue
                seen.add(key)
                (rows if readable else unreadable).append(row)
        if rows and endpoint.split_children:
            yield from status_tables.items(rows, endpoint, columns, load_id)
        elif rows:
            for row in rows:
                columns.route(row, endpoint.name)
            yield rows
        if unreadable:
            yield dlt.mark.with_table_name(unreadable, UNREADABLE_TABLE)

    resource = files | dlt.transformer(read, **endpoint.merge_hints())
    status_tables.table_variant(
        resource,
        UNREADABLE_TABLE,
        primary_key=UNREADABLE_KEY,
        write_disposition=dict(INSERT_ONLY),
        columns=column_hints.named(column_hints.UNREADABLE, UNREADABLE_KEY),
    )
    if endpoint.split_children:
        status_tables.apply_hints(resource, endpoint)
    return resource
