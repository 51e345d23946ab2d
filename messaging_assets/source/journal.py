"""The send journal: every send, in the warehouse (`messaging.send_journal`), before its request
leaves and the moment its answer arrives, so that a send the API accepted is never lost.

`messaging/sms` stores every journaled send that `messaging.sms` does not hold as it is now. An
entry still `sending` whose process is gone (interrupted after the request left) is stored with
outcome `unknown`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from messaging_assets.warehouse.connection import Connection

JOURNAL = "send_journal"
ACCEPTED, UNKNOWN, SENDING = "accepted", "unknown", "sending"
# A send journaled on another machine that has had no answer for this long was interrupted.
IN_FLIGHT_AT_MOST = timedelta(hours=1)
NOTHING_SENT = (
    "Nothing sent: set `to` and `from` in the run config (launchpad), or "
    "SOURCES__MESSAGING__SMS__TO and SOURCES__MESSAGING__SMS__FROM."
)
_FIELDS = (
    "reference", "run_id", "owner", "recipient", "sender", "requested_at", "state",
    "request_id", "status", "submit_date", "note", "opt_out_override",
)  # fmt: skip


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
        # A journal created by a version before opt-outs.
        self.warehouse.execute(
            f"ALTER TABLE {self.table} ADD COLUMN IF NOT EXISTS opt_out_override VARCHAR"
        )

    def entry(self, reference: str) -> dict[str, Any] | None:
        rows = self.warehouse.rows(
            f"SELECT {', '.join(_FIELDS)} FROM {self.table} WHERE reference = %s", reference
        )
        return dict(zip(_FIELDS, rows[0], strict=True)) if rows else None

    def add(
        self,
        reference: str,
        run_id: str,
        to: str,
        sender: str,
        opt_out_override: str | None = None,
    ) -> None:
        values = (
            reference, run_id, _owner(), to, sender,
            datetime.now(timezone.utc), SENDING, None, None, None, None, opt_out_override,
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


def send_outcome(warehouse: Connection, run_id: str, reference: str) -> tuple[int, str | None]:
    """How many sends the Dagster run made, and a note when it made none (`reference`: the
    run's own, which a re-executed run shares with the run that sent)."""
    sent = sends_of(warehouse, run_id)
    if sent:
        return len(sent), None
    if not warehouse.has_table(JOURNAL):
        return 0, NOTHING_SENT
    earlier = Journal(warehouse).entry(reference)
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


def as_stored(entry: dict[str, Any]) -> dict[str, Any]:
    """A journaled send as a row of `messaging.sms`."""
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
        "optOutOverride": entry["opt_out_override"],
    }
