"""Opt-outs: the recipients who replied STOP (or another opt-out word), and those who opted back in
(START), from the inbound messages in the warehouse. `opt_outs` asks the API nothing.

A reply decides when its keyword is the whole message or its first word, ignoring case and the
punctuation around it: "STOP", "stop it!" and "Stop." opt out, "Stopp" and "please stop" do
not. The latest decision of a number wins by the message's sent time (its first part's
`sentDate`; the time it was received when it has no parts), not by the order messages arrived in.

Numbers are compared in E.164 (Google's libphonenumber), so `+49 170 1234567`,
`0049 170 1234567` and `491701234567` are one number. A sender that is no phone number (a short
code, an alphanumeric sender) is kept as it came, without its spacing.

The table is computed anew from every inbound message in each run and kept with history (dlt's
scd2): a number whose decision changes gets a new current row, the old one is retired. Only
replies whose text starts with a keyword are read from the warehouse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
import phonenumbers
from dlt.extract.resource import DltResource

from messaging_assets.registry import OPT_OUTS
from messaging_assets.settings import OptOutSettings, opt_out_settings
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection, connect

OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
OPT_IN_WORDS = ("START", "UNSTOP", "YES")
INBOUND = "inbound_messages"
PARTS = "inbound_messages__content_list"
# What may separate a number's digits as people write them.
_SPACING = re.compile(r"[\s().\-/]")
# Punctuation around a keyword that still makes it one: "STOP!", "'stop'", "(Stop)".
_AROUND = "!?.,;:'\"()[]-*"


def e164(number: str) -> str:
    """`number` in E.164 where it is a phone number (`00` or no prefix read as international),
    else as it came without its spacing."""
    compact = _SPACING.sub("", number)
    international = "+" + compact[2:] if compact.startswith("00") else compact
    if international.isdigit():
        international = "+" + international
    try:
        parsed = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException:
        return compact
    if not phonenumbers.is_possible_number(parsed):
        return compact
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def masked(number: str) -> str:
    """A number as errors and check results show it: `+49170****567`."""
    if len(number) < 10:
        return "*" * max(len(number) - 2, 0) + number[-2:]
    return f"{number[:6]}****{number[-3:]}"


@dataclass(frozen=True)
class Keywords:
    """The words that opt out and opt in, upper-case: the usual ones and the settings' extras."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]

    @classmethod
    def configured(cls, settings: OptOutSettings | None = None) -> Keywords:
        settings = settings or opt_out_settings()
        return cls(
            frozenset(word.upper() for word in (*OPT_OUT_WORDS, *settings.opt_out_words)),
            frozenset(word.upper() for word in (*OPT_IN_WORDS, *settings.opt_in_words)),
        )

    def decision(self, message: str | None) -> tuple[str, bool] | None:
        """(keyword, opted out) when the message's first word is a keyword, else None."""
        words = (message or "").split(maxsplit=1)
        if not words:
            return None
        word = words[0].strip(_AROUND).upper()
        if word in self.opt_out:
            return word, True
        if word in self.opt_in:
            return word, False
        return None

    def starts(self, column: str) -> str:
        """A SQL condition that holds for every message whose text may start with a keyword: the
        warehouse reads only those, and `decision` tells which do."""
        # What `decision` skips before the word: white space and the punctuation around it.
        leading = (" \t\r\n" + _AROUND).replace("'", "''")
        text = f"upper(ltrim({column}, '{leading}'))"
        # Keywords are letters and digits only (OptOutSettings), so nothing needs escaping.
        prefixes = sorted(self.opt_out | self.opt_in)
        return "(" + " OR ".join(f"{text} LIKE '{p}%'" for p in prefixes) + ")"


@dataclass(frozen=True)
class Reply:
    request_id: str
    sender: str
    message: str | None
    sent_at: datetime
    received_at: datetime | None


def replies(warehouse: Connection, keywords: Keywords) -> list[Reply]:
    """Inbound messages whose text may start with a keyword, with when each was sent."""
    tables = warehouse.columns([INBOUND, PARTS])
    if INBOUND not in tables:
        return []
    sender, message = warehouse.column("from"), warehouse.column("message")
    inbound = warehouse.table(INBOUND)
    sent = "m.received_at"
    parts = ""
    if "sent_date" in tables.get(PARTS, {}):
        parts = (
            f"LEFT JOIN (SELECT _dlt_parent_id, min(sent_date) AS first_sent "
            f"FROM {warehouse.table(PARTS)} GROUP BY _dlt_parent_id) p "
            "ON p._dlt_parent_id = m._dlt_id"
        )
        sent = "coalesce(p.first_sent, m.received_at)"
    rows = warehouse.rows(
        f"SELECT m.request_id, m.{sender}, m.{message}, {sent}, m.received_at "
        f"FROM {inbound} m {parts} "
        f"WHERE m.{sender} IS NOT NULL AND {keywords.starts('m.' + message)}"
    )
    return [Reply(*row) for row in rows if row[3] is not None]


def decisions(found: Iterable[Reply], keywords: Keywords) -> list[dict[str, Any]]:
    """Each number's latest decision by sent time (then by receipt and requestId, for replies
    sent in the same instant), as `opt_outs` rows."""
    latest: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for reply in found:
        decided = keywords.decision(reply.message)
        if decided is None:
            continue
        keyword, opted_out = decided
        number = e164(reply.sender)
        order = (reply.sent_at, reply.received_at or reply.sent_at, reply.request_id)
        if number not in latest or order > latest[number][0]:
            latest[number] = (
                order,
                {
                    "phoneNumber": number,
                    "optedOut": opted_out,
                    "decidedAt": reply.sent_at,
                    "keyword": keyword,
                    "requestId": reply.request_id,
                },
            )
    return [row for _, row in sorted(latest.values(), key=lambda item: item[1]["phoneNumber"])]


@dataclass(frozen=True)
class OptOut:
    """A number's current opt-out, as a refused send tells it."""

    number: str
    decided_at: datetime
    keyword: str
    request_id: str


def current_opt_out(warehouse: Connection, number: str) -> OptOut | None:
    """The number's opt-out, if its current decision is one; None before any load of opt_outs."""
    columns = warehouse.columns([OPT_OUTS.name]).get(OPT_OUTS.name)
    if not columns:
        return None
    rows = warehouse.rows(
        f"SELECT phone_number, decided_at, keyword, request_id "
        f"FROM {warehouse.table(OPT_OUTS.name)} "
        f"WHERE phone_number = %s AND opted_out AND {sql.current_rows(sql.VALID_TO in columns)}",
        e164(number),
    )
    return OptOut(*rows[0]) if rows else None


def opt_out_resource() -> DltResource:
    """`opt_outs` as a dlt resource: every number's current decision, from the warehouse."""

    def opt_outs() -> Iterator[Sequence[dict[str, Any]]]:
        keywords = Keywords.configured()
        with connect(dlt.current.pipeline()) as warehouse:
            found = replies(warehouse, keywords)
        yield decisions(found, keywords)

    return dlt.resource(opt_outs, **OPT_OUTS.merge_hints())()
