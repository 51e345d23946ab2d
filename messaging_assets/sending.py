"""Sending an SMS: billed, so at most once, and never lost once the API accepted it.

Every send goes through the send journal, a table in the warehouse (`messaging.send_journal`):
the send is journaled as `sending` before the request leaves, and the answer is journaled the
moment it arrives. `messaging/sms` then stores every journaled send that `messaging.sms` does not
hold yet. So a send whose run fails after the answer (parsing, normalize, load, a killed process)
is stored by the next materialization of `messaging/sms`; one whose answer never came (a 5xx, a
timeout, an interrupt) is stored with outcome `unknown` and the reference to ask the provider
about. The reference comes from the Dagster run (the root run of a re-execution), so re-executing
a run never sends again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import dlt
from dlt.extract.resource import DltResource
from requests import Response
from requests.exceptions import RequestException

from messaging_assets import columns
from messaging_assets.api import Api
from messaging_assets.registry import SEND
from messaging_assets.responses import Answers, ApiError, explanation
from messaging_assets.sessions import certainly_not_sent
from messaging_assets.warehouse import Connection, connect

log = logging.getLogger(__name__)

JOURNAL = "send_journal"
ACCEPTED, UNKNOWN, SENDING = "accepted", "unknown", "sending"
# A send journaled on another machine that has had no answer for this long was interrupted.
IN_FLIGHT_AT_MOST = timedelta(hours=1)
NO_BODY = "accepted without an answer body: no requestId, so no status can be looked up"
NOTHING_SENT = (
    "Nothing sent: set `to` and `from` in the run config (launchpad), or "
    "SOURCES__MESSAGING__SMS__TO and SOURCES__MESSAGING__SMS__FROM."
)
_FIELDS = (
    "reference", "run_id", "owner", "recipient", "sender", "requested_at", "state",
    "request_id", "status", "submit_date", "note",
)  # fmt: skip


@dataclass(frozen=True)
class SendRequest:
    to: str
    sender: str
    message: str
    # The client reference sent with the SMS and echoed back: the one id every send has.
    reference: str
    run_id: str


def reference_for(run_id: str, root_run_id: str | None) -> str:
    """A run's send reference; a re-execution shares its root run's, so it never sends again."""
    return f"messaging-assets-{root_run_id or run_id}"


class SendOutcomeUnknown(RuntimeError):
    """A send that may have reached the API, and so may have been billed: never repeated."""

    def __init__(self, reference: str, what: str) -> None:
        super().__init__(
            f"messaging/sms: the send may or may not have reached the API ({what}). It was not "
            f"retried, to avoid sending and billing it twice; the next materialization of "
            f"messaging/sms stores it with outcome 'unknown'. Ask the provider for reference "
            f"`{reference}` before sending again."
        )


class Journal:
    """The send journal in the warehouse."""

    def __init__(self, warehouse: Connection) -> None:
        self.warehouse = warehouse
        self.table = warehouse.table(JOURNAL)

    def create(self) -> None:
        text = {"requested_at": "TIMESTAMP WITH TIME ZONE", "reference": "VARCHAR NOT NULL"}
        definition = ", ".join(f"{field} {text.get(field, 'VARCHAR')}" for field in _FIELDS)
        self.warehouse.ensure_dataset()
        self.warehouse.execute(
            self.warehouse.translated(f"CREATE TABLE IF NOT EXISTS {self.table} ({definition})")
        )

    def entry(self, reference: str) -> dict[str, Any] | None:
        rows = self.warehouse.rows(
            f"SELECT {', '.join(_FIELDS)} FROM {self.table} WHERE reference = %s", reference
        )
        return dict(zip(_FIELDS, rows[0], strict=True)) if rows else None

    def add(self, request: SendRequest) -> None:
        values = (
            request.reference, request.run_id, _owner(), request.to, request.sender,
            datetime.now(timezone.utc), SENDING, None, None, None, None,
        )  # fmt: skip
        marks = ", ".join(["%s"] * len(_FIELDS))
        self.warehouse.execute(
            f"INSERT INTO {self.table} ({', '.join(_FIELDS)}) VALUES ({marks})", *values
        )

    def settle(
        self, reference: str, state: str, note: str | None = None, answer: Mapping[str, Any] = {}
    ) -> None:
        self.warehouse.execute(
            f"UPDATE {self.table} SET state = %s, request_id = %s, status = %s, "
            "submit_date = %s, note = %s WHERE reference = %s",
            state,
            answer.get("requestId"),
            answer.get("status"),
            answer.get("submitDate"),
            note,
            reference,
        )

    def forget(self, reference: str) -> None:
        """A send that certainly never arrived: not billed, free to be sent again."""
        self.warehouse.execute(f"DELETE FROM {self.table} WHERE reference = %s", reference)

    def unstored(self) -> list[dict[str, Any]]:
        """Journaled sends that `sms` does not hold as they are now."""
        sms = self.warehouse.columns(["sms"]).get("sms", {})
        entries = [
            dict(zip(_FIELDS, row, strict=True))
            for row in self.warehouse.rows(f"SELECT {', '.join(_FIELDS)} FROM {self.table}")
        ]
        stored: set[tuple[str, str]] = set()
        if sms:
            outcome = "outcome" if "outcome" in sms else f"'{ACCEPTED}'"
            stored = {
                (reference, stored_outcome)
                for reference, stored_outcome in self.warehouse.rows(
                    f"SELECT reference, {outcome} FROM {self.warehouse.table('sms')}"
                )
            }
        return [
            entry
            for entry in entries
            if _outcome(entry) and (entry["reference"], _outcome(entry)) not in stored
        ]


def sends_of(warehouse: Connection, run_id: str) -> list[dict[str, Any]]:
    """The journaled sends of a Dagster run."""
    if not warehouse.has_table(JOURNAL):
        return []
    rows = warehouse.rows(
        f"SELECT {', '.join(_FIELDS)} FROM {warehouse.table(JOURNAL)} WHERE run_id = %s", run_id
    )
    return [dict(zip(_FIELDS, row, strict=True)) for row in rows]


def not_stored(error: Exception, sends: list[dict[str, Any]]) -> Exception:
    """`error` of a run that sent, telling the user the sends are not lost and their references."""
    listed = ", ".join(
        f"`{send['reference']}` ({send['state']}, requestId {send['request_id']})" for send in sends
    )
    return RuntimeError(
        f"{error}\n\nmessaging/sms: this run's send(s) {listed} are kept in the send journal "
        "(messaging.send_journal); the next materialization of messaging/sms stores them. Do not "
        "send them again."
    )


def send_outcome(warehouse: Connection, run: Any) -> tuple[int, str | None]:
    """How many sends the Dagster `run` made, and a note when it made none."""
    sent = sends_of(warehouse, run.run_id)
    if sent:
        return len(sent), None
    if not warehouse.has_table(JOURNAL):
        return 0, NOTHING_SENT
    earlier = Journal(warehouse).entry(reference_for(run.run_id, run.root_run_id))
    if earlier:
        return 0, (
            f"Run {earlier['run_id']} already sent this run's message (reference "
            f"`{earlier['reference']}`, {earlier['state']}): not sent again."
        )
    return 0, NOTHING_SENT


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _interrupted(entry: dict[str, Any]) -> bool:
    """A `sending` entry whose process is gone: its answer will never be journaled."""
    host, _, pid = str(entry["owner"]).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True  # this process is not sending it now: an earlier run in it was stopped
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    requested = entry["requested_at"]
    return requested is not None and datetime.now(timezone.utc) - requested > IN_FLIGHT_AT_MOST


def _outcome(entry: dict[str, Any]) -> str | None:
    """How a journaled send is stored; None while its answer may still come."""
    if entry["state"] == SENDING:
        return UNKNOWN if _interrupted(entry) else None
    return entry["state"]


def _record(entry: dict[str, Any]) -> dict[str, Any]:
    outcome = _outcome(entry)
    note = entry["note"]
    if outcome == UNKNOWN and entry["state"] == SENDING:
        note = "the run was interrupted after the request left; no answer was recorded"
    return {
        "reference": entry["reference"],
        "requestId": entry["request_id"],
        "status": entry["status"],
        "to": entry["recipient"],
        "from": entry["sender"],
        "submitDate": entry["submit_date"],
        "submittedAt": entry["requested_at"],
        "outcome": outcome,
        "note": note,
    }


def send_resource(api: Api, request: SendRequest | None) -> DltResource:
    """`sms` as a dlt resource: this run's send, if configured, and every journaled send not
    stored yet."""
    url = api.base_url.rstrip("/") + SEND.path

    def send(journal: Journal, request: SendRequest, answers: Answers) -> None:
        earlier = journal.entry(request.reference)
        if earlier:
            log.warning(
                "messaging/sms: run %s already sent `%s` (%s); not sending it again.",
                earlier["run_id"],
                request.reference,
                earlier["state"],
            )
            return
        journal.add(request)
        params = {
            "to": request.to,
            "from": request.sender,
            "message": request.message,
            "reference": request.reference,
        }
        try:
            response = api.send_session().get(url, params=params, auth=api.auth)
        except RequestException as error:
            if certainly_not_sent(None, error):
                journal.forget(request.reference)
                raise
            journal.settle(request.reference, UNKNOWN, f"no answer: {type(error).__name__}")
            raise SendOutcomeUnknown(request.reference, type(error).__name__) from None
        except BaseException as interrupt:
            # Ctrl-C or SIGTERM (Dagster raises them here) after the request left: the send may
            # have been billed, and the user must learn its reference now.
            what = "interrupted while waiting for the answer"
            journal.settle(request.reference, UNKNOWN, what)
            raise SendOutcomeUnknown(request.reference, what) from interrupt
        settle(journal, request.reference, response, answers)

    def settle(journal: Journal, reference: str, response: Response, answers: Answers) -> None:
        status = response.status_code
        if status == 429 or 400 <= status < 500:
            # Refused, so not billed: free to be sent again once the cause is fixed.
            journal.forget(reference)
            answers.check(response)
        if status >= 500:
            said = explanation(response, answers.redact)
            journal.settle(reference, UNKNOWN, f"answered {status}: {said}".rstrip(": "))
            raise SendOutcomeUnknown(reference, f"answered {status}")
        if not response.content:
            journal.settle(reference, ACCEPTED, NO_BODY)
            return
        try:
            answer = answers.record(response, answers.json(response))
        except ApiError as error:
            journal.settle(reference, ACCEPTED, f"accepted; the answer was not understood: {error}")
            return
        journal.settle(reference, ACCEPTED, None if answer.get("requestId") else NO_BODY, answer)

    def sms() -> Iterator[list[dict[str, Any]]]:
        with connect(dlt.current.pipeline()) as warehouse:
            journal = Journal(warehouse)
            journal.create()
            if request:
                send(journal, request, api.answers(SEND, api.settings(SEND)))
            unstored = journal.unstored()
        for entry in unstored:
            if entry["state"] != ACCEPTED:
                log.warning(
                    "messaging/sms: the send with reference `%s` (run %s) got no answer; stored "
                    "with outcome 'unknown': ask the provider before sending again.",
                    entry["reference"],
                    entry["run_id"],
                )
        yield [_record(entry) for entry in unstored]

    return dlt.resource(
        sms,
        name=SEND.name,
        primary_key=SEND.key,
        write_disposition="merge",
        file_format="parquet",
        columns=columns.named(SEND.columns, SEND.key),
    )()
