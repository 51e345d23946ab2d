"""Delivery statuses: which requestIds to ask about, and asking, concurrently. Never sends.

A requestId is data, never path: it must be of the provider's form (UUID-like) and fills exactly
one, percent-encoded, path segment. Ids from settings or run config that are not of that form fail
the run before any request; stored ids that are not (a hostile or broken answer) are recorded as
`lookup_error = 'INVALID_REQUEST_ID'` once and never asked about.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from itertools import islice
from typing import Any
from urllib.parse import quote

import dlt
from dlt.extract.resource import DltResource

from messaging_assets.registry import STATUS
from messaging_assets.settings import lookup_settings
from messaging_assets.source import status_tables
from messaging_assets.source.api import Api
from messaging_assets.source.arrow_pages import NotColumnar
from messaging_assets.source.bodies import published_spelling
from messaging_assets.source.reports import MERGED_THROUGH, Reports, as_tables
from messaging_assets.source.variants import Columns
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection, connect

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
REQUEST_ID_FORM = "1 to 128 letters, digits, '-' or '_', starting with a letter or digit"
REQUEST_IDS_SETTING = "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS"
NOT_FOUND = "NOT_FOUND"
INVALID = "INVALID_REQUEST_ID"
# Records handed to dlt at a time: fewer, larger items cost dlt less per look-up.
BATCH = 500
# Reports merged at a time: an arrow table's cost is mostly per column, not per row.
REPORTS_BATCH = 10_000


class InvalidRequestIds(ValueError):
    """RequestIds that cannot be looked up, with where they came from."""


def is_request_id(value: str) -> bool:
    return bool(REQUEST_ID.fullmatch(value))


def parse_request_ids(value: str | Sequence[str] | None, origin: str) -> list[str]:
    """RequestIds given as a JSON list or a comma-separated string, in order, without repeats.
    Raises InvalidRequestIds naming `origin` for malformed input or ids not of the accepted form.
    """
    if not value:
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError as error:
            raise InvalidRequestIds(
                f"messaging/messages: {origin} is not a JSON list of requestIds nor a "
                f"comma-separated list ({error})."
            ) from None
        if not isinstance(value, list):
            raise InvalidRequestIds(f"messaging/messages: {origin} must be a list of requestIds.")
    ids = list(dict.fromkeys(str(item).strip() for item in value if str(item).strip()))
    refused = [rid for rid in ids if not is_request_id(rid)]
    if refused:
        raise InvalidRequestIds(
            f"messaging/messages: {origin} holds {len(refused)} requestId(s) that are not of the "
            f"accepted form ({REQUEST_ID_FORM}): {', '.join(map(repr, refused[:5]))}. "
            "Nothing was looked up."
        )
    return ids


def stored_ids(warehouse: Connection) -> tuple[list[str], set[str]]:
    """(requestIds the warehouse knows of, those already settled): sends in `sms` and the send
    journal, and stored messages."""
    tables = warehouse.columns(["sms", "send_journal", "messages"])
    known: list[str] = []
    for table in ("sms", "send_journal"):
        if "request_id" in tables.get(table, {}):
            known += [
                rid
                for (rid,) in warehouse.rows(
                    f"SELECT request_id FROM {warehouse.table(table)} "
                    "WHERE request_id IS NOT NULL ORDER BY 1"
                )
            ]
    settled: set[str] = set()
    if "messages" in tables:
        for rid, is_settled in warehouse.rows(
            f"SELECT request_id, {sql.SETTLED} FROM {warehouse.table('messages')} ORDER BY 1"
        ):
            known.append(rid)
            if is_settled:
                settled.add(rid)
    return known, settled


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def stamped(record: dict[str, Any], request_id: str) -> dict[str, Any]:
    """A status as stored: under the id asked about, with when it was asked."""
    record["requestId"] = request_id
    record["checkedAt"] = _now()
    return published_spelling(record)


class Pace:
    """At most `per_second` calls a second, evenly spaced, across every thread that waits on it:
    a backlog after downtime must not trip the provider's rate limit."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class LookUps:
    """Status look-ups as configured for a run: its settings read, and its tracked ids checked,
    when it is made (a mistake in them fails only status runs, and before any request)."""

    def __init__(self, api: Api, request_ids: Sequence[str], only: bool) -> None:
        self.api = api
        self.only = only
        settings = api.settings(STATUS)
        self.answers = api.answers(STATUS, settings)
        if request_ids:
            self.tracked = parse_request_ids(request_ids, "run config `request_ids`")
        else:
            self.tracked = parse_request_ids(settings.request_ids, REQUEST_IDS_SETTING)
        self.workers = lookup_settings().workers
        self.pace = Pace(settings.max_requests_per_second)
        self.session = api.session()
        self.prefix = api.base_url.rstrip("/") + STATUS.path.split("{", 1)[0]

    def look_up(self, request_id: str) -> dict[str, Any]:
        self.pace.wait()
        response = self.session.get(self.prefix + quote(request_id, safe=""), auth=self.api.auth)
        if response.status_code == 404:
            # The provider forgets a status about 3 months after it became final.
            return stamped({"lookupError": NOT_FOUND}, request_id)
        self.answers.check(response)
        return stamped(self.answers.record(response, self.answers.json(response)), request_id)

    def records(self, known: list[str], settled: set[str]) -> Iterator[list[dict[str, Any]]]:
        """The records of the tracked ids, and, unless `only`, of the `known` ones, that are not
        `settled`, in batches."""
        candidates = self.tracked if self.only else [*known, *self.tracked]
        due = [rid for rid in dict.fromkeys(candidates) if rid not in settled]
        refused = [rid for rid in due if not is_request_id(rid)]
        if refused:
            log.warning(
                "messaging/messages: %d stored requestId(s) are not of the accepted form (%s) "
                "and are recorded as %s, never asked about: %s",
                len(refused),
                REQUEST_ID_FORM,
                INVALID,
                ", ".join(map(repr, refused[:5])),
            )
            yield [stamped({"lookupError": INVALID}, rid) for rid in refused]
        asked = [rid for rid in due if is_request_id(rid)]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            statuses = pool.map(self.look_up, asked)
            while batch := list(islice(statuses, BATCH)):
                yield batch


def status_resource(
    api: Api, request_ids: Sequence[str], only: bool = False, look_up: bool = True
) -> DltResource:
    """`messages` as a dlt resource: the delivery reports not merged yet (reports.py) and, with
    `look_up`, a look-up of every stored or tracked requestId not yet settled, or, with `only`,
    just the tracked ones (the status sensor's due messages). Tracked ids come from the run
    config, else from SOURCES__MESSAGING__MESSAGES__REQUEST_IDS."""

    def messages() -> Iterator[Any]:
        look_ups = LookUps(api, request_ids, only) if look_up else None
        stored = Columns(dlt.current.source_schema(), STATUS.tables(), typed=True)
        state = dlt.current.resource_state()
        with connect(dlt.current.pipeline()) as warehouse:
            reports = Reports.unmerged(warehouse, state.get(MERGED_THROUGH))
            known, settled = stored_ids(warehouse)

        load_id = dlt.current.load_package_state()["load_id"]

        def items(batch: list[dict[str, Any]]) -> Iterator[Any]:
            return status_tables.items(batch, STATUS, stored, load_id)

        if look_ups is not None:
            # A final report settles a message: nothing is left to ask about it.
            for batch in look_ups.records(known, settled | reports.final):
                # One record per message: the look-up, unless this run's report outranks it.
                yield from items([reports.instead_of(record) for record in batch])
        for batch in reports.remaining(REPORTS_BATCH):
            try:
                tables = as_tables(batch, stored, load_id)
            except NotColumnar:
                yield from items([report.record() for report in batch.values()])
            else:
                yield from status_tables.emitted(*tables, STATUS)
        state[MERGED_THROUGH] = reports.through

    return status_tables.apply_hints(dlt.resource(messages, **STATUS.merge_hints())(), STATUS)
