"""When to look up a pending message's status again: back off by age, give up after validity.

Pure functions of (stored messages, now), so that the sensor's timing is testable without waiting.
A message is pending until its status is final or the provider no longer knows it (404).

With delivery reports pushed (SOURCES__MESSAGING__RECEIVER__PUBLIC_URL set, read when the code
location loads), look-ups only reconcile: a pending message is looked up once its next report is
overdue (`report_overdue_at`), then backs off as without reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from messaging_assets.receiver.settings import reports_pushed
from messaging_assets.registry import FINAL_STATUSES
from messaging_assets.settings import AutomationSettings
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection

# Whether sends ask for delivery reports, read when the code location loads, as the automation
# settings are (restart `dagster dev` after a change).
REPORTS_PUSHED: bool = reports_pushed()
BUFFERED = "BUFFERED"


@dataclass(frozen=True)
class PendingMessage:
    request_id: str
    status: str | None
    # Our own clock at the send when we sent it, else the provider's submitDate.
    submitted_at: datetime | None
    checked_at: datetime | None


@dataclass(frozen=True)
class StatusPlan:
    due: list[str] = field(default_factory=list)
    # (next check, request id), earliest first
    waiting: list[tuple[datetime, str]] = field(default_factory=list)
    # past validity + margin: their status cannot change any more, so they are not asked about
    given_up: list[str] = field(default_factory=list)

    def describe(self, shown: int = 5) -> str:
        parts = []
        if self.due:
            ids = ", ".join(self.due[:shown]) + (" …" if len(self.due) > shown else "")
            parts.append(f"{len(self.due)} pending message(s) due for a status check: {ids}")
        else:
            parts.append("No pending message is due for a status check")
        if self.waiting:
            upcoming = "; ".join(f"{rid} at {_iso(at)}" for at, rid in self.waiting[:shown])
            parts.append(f"Next checks: {upcoming}")
        if self.given_up:
            parts.append(
                f"{len(self.given_up)} message(s) past validity + margin are no longer polled"
            )
        return ". ".join(parts) + "."


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def recheck_interval(age: timedelta, settings: AutomationSettings) -> timedelta:
    """A share of the message's age, within bounds: a fresh send settles within minutes, one a
    day old changes rarely."""
    interval = age * settings.recheck_share_of_age
    return min(max(interval, settings.recheck_min), settings.recheck_max)


def report_overdue_at(message: PendingMessage, settings: AutomationSettings) -> datetime | None:
    """When the message's next delivery report is overdue; None when its send time is unknown.

    The provider reports each status change as it happens. A message still ACCEPTED reports its
    first change (BUFFERED or final) within a minute or two: overdue `report_overdue` after the
    send. A BUFFERED one is in retry, and its final report may come at any moment until the
    provider expires it at the end of its validity: overdue `report_overdue` after that.
    """
    if message.submitted_at is None:
        return None
    wait = settings.report_overdue
    if message.status == BUFFERED:
        wait += settings.validity
    return message.submitted_at + wait


def plan_status_checks(
    pending: Sequence[PendingMessage],
    now: datetime,
    settings: AutomationSettings,
    requested: Mapping[str, datetime] | None = None,
    reports_pushed: bool | None = None,
) -> StatusPlan:
    """Which pending messages are due at `now`. `requested` holds when a look-up was last
    requested per message (the sensor's cursor), so a run that failed does not bring the message
    back before its interval is up. With `reports_pushed` (by default REPORTS_PUSHED), a message
    waits until its report is overdue; look-ups before that moment do not count towards its
    back-off."""
    if reports_pushed is None:
        reports_pushed = REPORTS_PUSHED
    requested = requested or {}
    plan = StatusPlan()
    for message in pending:
        age = now - message.submitted_at if message.submitted_at else timedelta(0)
        if age > settings.give_up_after:
            plan.given_up.append(message.request_id)
            continue
        seen = [t for t in (message.checked_at, requested.get(message.request_id)) if t]
        overdue_at = report_overdue_at(message, settings) if reports_pushed else None
        if overdue_at is not None:
            if now < overdue_at:
                plan.waiting.append((overdue_at, message.request_id))
                continue
            seen = [t for t in seen if t >= overdue_at]
        if not seen:
            plan.due.append(message.request_id)
            continue
        next_check = max(seen) + recheck_interval(age, settings)
        if next_check <= now:
            plan.due.append(message.request_id)
        else:
            plan.waiting.append((next_check, message.request_id))
    plan.waiting.sort()
    return plan


def pending_messages(warehouse: Connection) -> list[PendingMessage]:
    """Stored messages whose status is not final, including sends not looked up yet."""
    tables = warehouse.columns(["messages", "sms"])
    messages = {}
    if "messages" in tables:
        for request_id, status, submitted, checked, settled in warehouse.rows(
            "SELECT request_id, status, submit_date, checked_at, "
            f"CASE WHEN {sql.SETTLED} THEN 1 ELSE 0 END FROM {warehouse.table('messages')}"
        ):
            messages[request_id] = (status, submitted, checked, settled)
    sent = {}
    if "sms" in tables:
        # A send is timed by this project's clock when it sent it, not the provider's.
        submitted_at = "submitted_at" if "submitted_at" in tables["sms"] else "NULL"
        for request_id, status, submitted in warehouse.rows(
            f"SELECT request_id, status, {submitted_at} FROM {warehouse.table('sms')} "
            "WHERE request_id IS NOT NULL"
        ):
            sent[request_id] = (status, submitted)
    pending = []
    for request_id in sorted(messages.keys() | sent.keys()):
        status, submit_date, checked, settled = messages.get(request_id, (None, None, None, 0))
        sent_status, submitted = sent.get(request_id, (None, None))
        if settled or (status or sent_status) in FINAL_STATUSES:
            continue
        pending.append(
            PendingMessage(request_id, status or sent_status, submitted or submit_date, checked)
        )
    return pending
