"""Delivery reports merged into `messages`: whatever order they arrived in, a message ends with the
furthest status anyone told of.

A report is the same status object a look-up answers. Reports come in no guaranteed order and
possibly more than once, so each status has a rank (`registry.STATUS_RANK`): a final state over
`BUFFERED` over `ACCEPTED` over anything else. Of the reports not merged yet, each message's
best (highest rank, then the latest received) replaces the stored row unless the stored status
outranks it; a look-up in the same run replaces it unless the report outranks the look-up.

Which reports are not merged yet is the `messages` resource's own dlt state: the last
`_dlt_load_id` of `delivery_reports` it merged. Reports are inserted once each (insert-only), so
a row's load id never changes, and loads never interleave (one writer at a time), so every row
above that id is new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from messaging_assets.registry import STATUS, STATUS_RANK, UNRANKED
from messaging_assets.source import bodies, status_tables
from messaging_assets.source.arrow_pages import TIMESTAMP
from messaging_assets.source.variants import Columns
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection

REPORTS = "delivery_reports"
MESSAGES = "messages"
# The `messages` resource's state: the last `_dlt_load_id` of `delivery_reports` merged.
MERGED_THROUGH = "reports_merged_through"


def rank(status: Any) -> int:
    return STATUS_RANK.get(status, UNRANKED) if isinstance(status, str) else UNRANKED


@dataclass(frozen=True)
class Report:
    rank: int
    received_at: datetime
    # The report as it was pushed (a status object, at the root or under `data`).
    body: str

    def record(self) -> dict[str, Any]:
        """The status object, as `messages` stores it."""
        # The body parsed when it was loaded, so it parses again.
        record = bodies.published_spelling(dict(bodies.status_object(bodies.parse(self.body))))
        record["reportedAt"] = self.received_at
        return record


class Reports:
    """The best report of each message not merged yet, where the stored status does not outrank
    it, and the load id they were read through."""

    def __init__(self, best: dict[str, Report], through: str | None) -> None:
        self._best = best
        self.through = through

    @classmethod
    def unmerged(cls, warehouse: Connection, merged_through: str | None) -> Reports:
        tables = warehouse.columns([REPORTS, MESSAGES])
        if REPORTS not in tables:
            return cls({}, merged_through)
        reports = warehouse.table(REPORTS)
        through = warehouse.scalar(f"SELECT max(_dlt_load_id) FROM {reports}")
        if through is None or (merged_through is not None and through <= merged_through):
            return cls({}, merged_through)
        # Load ids are a load's start time in seconds, as text of 10 digits, a point and a
        # fraction: compared as text they compare as times (until the year 2286).
        status_rank = sql.status_rank("status")
        fresh = (
            f"SELECT request_id, received_at, body, {status_rank} AS status_rank, "
            f"ROW_NUMBER() OVER (PARTITION BY request_id ORDER BY {status_rank} DESC, "
            "received_at DESC, report_id DESC) AS nth "
            f"FROM {reports} WHERE _dlt_load_id > %s AND _dlt_load_id <= %s "
            "AND request_id IS NOT NULL"
        )
        if MESSAGES in tables:
            # No stored row, or one without a status, ranks below every report.
            statement = (
                f"SELECT f.request_id, f.status_rank, f.received_at, f.body FROM ({fresh}) f "
                f"LEFT JOIN {warehouse.table(MESSAGES)} m ON m.request_id = f.request_id "
                f"WHERE f.nth = 1 AND f.status_rank >= {sql.status_rank('m.status')} "
                "ORDER BY f.request_id"
            )
        else:
            statement = (
                "SELECT request_id, status_rank, received_at, body FROM "
                f"({fresh}) f WHERE nth = 1 ORDER BY request_id"
            )
        best = {
            request_id: Report(int(status_rank), received_at, body)
            for request_id, status_rank, received_at, body in warehouse.rows(
                statement, merged_through or "", through
            )
        }
        return cls(best, through)

    @property
    def final(self) -> set[str]:
        """Messages a report of this run settles: nothing is left to ask about them."""
        top = max(STATUS_RANK.values())
        return {request_id for request_id, report in self._best.items() if report.rank == top}

    def instead_of(self, looked_up: dict[str, Any]) -> dict[str, Any]:
        """What to store for a message looked up in this run: the look-up, asked after the report
        arrived, unless the report outranks it. Either way the report is then spoken for: a key
        must come once in a load, or dlt keeps either copy."""
        report = self._best.pop(looked_up["requestId"], None)
        if report is not None and report.rank > rank(looked_up.get("status")):
            return report.record()
        return looked_up

    def remaining(self, batch: int) -> Iterator[dict[str, Report]]:
        """The reports no look-up of this run spoke for, by message, `batch` at a time."""
        best = list(self._best.items())
        for start in range(0, len(best), batch):
            yield dict(best[start : start + batch])


def as_tables(
    reports: dict[str, Report], columns: Columns, load_id: str
) -> tuple[pa.Table, pa.Table]:
    """Reports as `messages`' arrow items, read in columns (`status_tables.status_objects`);
    NotColumnar where they are to be read one by one (`Report.record`)."""
    parsed = status_tables.status_objects([report.body for report in reports.values()])
    count = len(reports)
    values = {
        "checkedAt": pa.nulls(count, TIMESTAMP),
        "lookupError": pa.nulls(count, pa.string()),
        "reportedAt": pa.array([report.received_at for report in reports.values()], TIMESTAMP),
    }
    return status_tables.from_parsed(parsed, values, list(reports), STATUS, columns, load_id)
