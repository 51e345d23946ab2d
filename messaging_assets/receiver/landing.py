"""The landing zone's format: the contract between the receiver, which writes it, and the loader,
which reads it into the warehouse.

    <landing>/<endpoint>/<written at>-<receiver>-<sequence>.jsonl

`endpoint` is one of ENDPOINTS. `written at` is the UTC time the file was written
(YYYYMMDDTHHMMSS.ffffffZ), `receiver` the id of the receiver process that wrote it (random hex, an
underscore, its pid), `sequence` that process's count of files (6 digits or more). A file is
written whole, flushed to disk and only then renamed into place: it is never appended to or
changed. While it is being written its name starts with `.` and ends with `.tmp`; such names, and
any other name that is not a landed file's, are not data. In a bucket (`s3://...`) a file is one
object, put whole with one create-only PUT, under its final name from the start.

Each line is one event, a JSON object in ASCII:

    {"received_at": "2026-01-02T03:04:05.123456+00:00", "endpoint": "delivery_reports",
     "readable": true, "problem": null, "body": "<the body as received, as text>"}

A body that is not UTF-8 is kept as "body_base64" instead of "body". `readable` is false, with
the reason in `problem`, when the body is not the JSON object the endpoint expects; it is kept
all the same.

Names sort by the time of the write, but a file may appear after one with a later name (two
receivers, a slow disk), and a file keeps the modification time of its write, not of its rename:
a loader keeps the set of files it has loaded, or a high-water mark of modification times that
reaches back further than the longest write (the loader's lag). An event may be in more than one
file (a sender that retried after an answer it did not get).

`python -m messaging_assets.receiver.landing FOLDER` prints the files and events landed there
(`make demo` does).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

Endpoint = Literal["delivery_reports", "inbound_messages"]
DELIVERY_REPORTS: Endpoint = "delivery_reports"
INBOUND_MESSAGES: Endpoint = "inbound_messages"
ENDPOINTS: tuple[Endpoint, ...] = (DELIVERY_REPORTS, INBOUND_MESSAGES)
SUFFIX = ".jsonl"
TEMPORARY_PREFIX = "."
TEMPORARY_SUFFIX = ".tmp"
WRITTEN_AT_FORMAT = "%Y%m%dT%H%M%S.%fZ"
FILE_NAME = re.compile(
    r"(?P<written_at>\d{8}T\d{6}\.\d{6}Z)-(?P<receiver>[0-9a-f]+_\d+)-(?P<sequence>\d{6,})\.jsonl"
)
BASE64_BODY = "body_base64"


def receiver_id() -> str:
    """A new receiver process's id: random, so that two receivers never share a file name even
    when their pids are reused (containers, restarts), with the pid to find the process."""
    return f"{secrets.token_hex(4)}_{os.getpid()}"


def file_name(written_at: datetime, receiver: str, sequence: int) -> str:
    stamp = written_at.astimezone(timezone.utc).strftime(WRITTEN_AT_FORMAT)
    return f"{stamp}-{receiver}-{sequence:06d}{SUFFIX}"


def temporary_name(name: str) -> str:
    return f"{TEMPORARY_PREFIX}{name}{TEMPORARY_SUFFIX}"


def event_line(
    received_at: datetime, endpoint: Endpoint, body: bytes, problem: str | None
) -> bytes:
    """One event as its line (newline included). A body that is not UTF-8 goes in base64."""
    event: dict[str, object] = {
        "received_at": received_at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "endpoint": endpoint,
        "readable": problem is None,
        "problem": problem,
    }
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event[BASE64_BODY] = base64.b64encode(body).decode("ascii")
    # ASCII only: no reader can then split a line inside a body (U+2028 and friends are escaped).
    return json.dumps(event, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


@dataclass(frozen=True)
class LandedEvent:
    """One event read back from a landed file."""

    received_at: datetime
    endpoint: Endpoint
    readable: bool
    problem: str | None
    body: bytes  # exactly as received, whether it was stored as text or as base64
    file: str  # the landed file's name
    line: int  # 1-based

    @property
    def text(self) -> str | None:
        """The body as text; None when it is not UTF-8."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None


def is_landed_file(name: str) -> bool:
    """A landed file's name; temporaries (`.….tmp`) and anything else are not data."""
    return FILE_NAME.fullmatch(name) is not None


def list_files(landing: Path, endpoint: Endpoint) -> list[Path]:
    """The endpoint's landed files, in name order; none when its folder does not exist yet."""
    folder = Path(landing) / endpoint
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [folder / name for name in sorted(names) if is_landed_file(name)]


def read_file(path: Path) -> list[LandedEvent]:
    """Every event of one landed file, in the order written."""
    path = Path(path)
    if not is_landed_file(path.name):
        raise ValueError(f"{path}: not a landed file name (temporaries are never data)")
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise ValueError(f"{path}: the last line is cut short")
    events = []
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            events.append(parse_line(raw, path.name, number))
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return events


def parse_line(raw: bytes, file: str, line: int) -> LandedEvent:
    """One line of a landed file (without its newline) as its event; ValueError if it is not one.
    For readers of the files' bytes wherever they are stored (the loader reads them through dlt)."""
    try:
        record = json.loads(raw)
        body = (
            record["body"].encode("utf-8")
            if "body" in record
            else base64.b64decode(record[BASE64_BODY], validate=True)
        )
        return LandedEvent(
            received_at=datetime.fromisoformat(record["received_at"]),
            endpoint=record["endpoint"],
            readable=record["readable"],
            problem=record["problem"],
            body=body,
            file=file,
            line=line,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a landed event ({error})") from None


def read(landing: Path, endpoint: Endpoint) -> Iterator[LandedEvent]:
    """Every landed event of an endpoint, file by file in name order."""
    for path in list_files(landing, endpoint):
        yield from read_file(path)


def summary(landing: Path) -> list[str]:
    """The files and events landed per endpoint, as lines of a table."""
    lines = [f"{Path(landing)}:", f"  {'endpoint':<24}{'files':>8}{'events':>8}{'unreadable':>12}"]
    for endpoint in ENDPOINTS:
        files = list_files(landing, endpoint)
        events = [event for path in files for event in read_file(path)]
        unreadable = sum(not event.readable for event in events)
        lines.append(f"  {endpoint:<24}{len(files):>8}{len(events):>8}{unreadable:>12}")
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m messaging_assets.receiver.landing FOLDER")
    print("\n".join(summary(Path(sys.argv[1]))))
