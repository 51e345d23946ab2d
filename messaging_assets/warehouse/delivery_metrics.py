"""The SQL of the delivery summary, and the numbers it computes from `messaging.messages` and
`messaging.messages__parts`, and opt-outs and opt-ins per day from `messaging.opt_outs`: written
once, in DuckDB's dialect, translated for other destinations by the warehouse layer."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from messaging_assets.registry import OPT_OUTS
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection

RECENT_DAYS = 7
# The summary's columns, in the order the grouped query returns them: (dlt hint, description).
COLUMNS: dict[str, tuple[dict[str, Any], str]] = {
    "submit_day": ({"data_type": "date"}, "Day the message was submitted, UTC."),
    "status": ({"data_type": "text"}, "Status at the last look-up; ACCEPTED and BUFFERED pend."),
    "mccmnc": ({"data_type": "text"}, "Mobile network (MCC+MNC) of the recipient."),
    "messages": ({"data_type": "bigint"}, "Messages with this day, status and network."),
    "parts": ({"data_type": "bigint"}, "Billed parts of those messages."),
    "delivery_rate": (
        {"data_type": "double"},
        "DELIVERED / final messages of the same day and network; null if none final.",
    ),
    "median_seconds_to_final": (
        {"data_type": "double"},
        "Median of doneDate - submitDate, final messages only.",
    ),
    "p95_seconds_to_final": (
        {"data_type": "double"},
        "95th percentile of doneDate - submitDate, final messages only.",
    ),
    "min_seconds_to_final": (
        {"data_type": "double"},
        "Shortest doneDate - submitDate; never negative in good data.",
    ),
}
NAMES = tuple(COLUMNS)

# What the summary reads from `messages__parts`, for a first run before any message had parts.
NO_PARTS = """(SELECT CAST(NULL AS VARCHAR) AS _dlt_parent_id, CAST(NULL AS VARCHAR) AS currency,
    CAST(NULL AS DECIMAL(18, 6)) AS price WHERE 1 = 0)"""

# One row per message that has a status. Messages the provider no longer knows (404, recorded as
# lookup_error NOT_FOUND with a null status) carry no dates or network: they are left out here
# and counted in the metadata as `not_found`.
BASE = """base AS (
    SELECT
        CAST(timezone('UTC', m.submit_date) AS DATE) AS submit_day,
        m.status, m.mccmnc, m._dlt_id,
        m.status IN {final} AS is_final,
        CASE WHEN m.status IN {final}
            THEN epoch(m.done_date) - epoch(m.submit_date) END AS seconds_to_final,
        coalesce(p.parts, 0) AS parts
    FROM {messages} AS m
    LEFT JOIN (SELECT _dlt_parent_id, count(*) AS parts FROM {parts} GROUP BY _dlt_parent_id) AS p
        ON p._dlt_parent_id = m._dlt_id
    WHERE m.status IS NOT NULL AND m.submit_date IS NOT NULL
)"""

DURATIONS = """median(seconds_to_final) AS median_seconds_to_final,
    quantile_cont(seconds_to_final, 0.95) AS p95_seconds_to_final"""

GROUPS = """WITH {base}, grouped AS (
    SELECT submit_day, status, mccmnc, count(*) AS messages, CAST(sum(parts) AS BIGINT) AS parts,
        {durations}, min(seconds_to_final) AS min_seconds_to_final
    FROM base GROUP BY submit_day, status, mccmnc
)
SELECT submit_day, status, mccmnc, messages, parts,
    -- A rate per status row would be 1 or 0; the rate of its day and network says more.
    CAST(sum(CASE WHEN status = 'DELIVERED' THEN messages ELSE 0 END)
        OVER (PARTITION BY submit_day, mccmnc) AS DOUBLE)
      / nullif(sum(CASE WHEN status IN {final} THEN messages ELSE 0 END)
        OVER (PARTITION BY submit_day, mccmnc), 0) AS delivery_rate,
    median_seconds_to_final, p95_seconds_to_final, min_seconds_to_final
FROM grouped ORDER BY submit_day, status, mccmnc"""

# Cost per currency: parts carry the currency, and summing across currencies means nothing.
COSTS = """WITH {base}
SELECT b.submit_day, b.status, b.mccmnc, p.currency, sum(p.price) AS amount
FROM base AS b JOIN {parts} AS p ON p._dlt_parent_id = b._dlt_id
WHERE p.price IS NOT NULL AND p.currency IS NOT NULL
GROUP BY b.submit_day, b.status, b.mccmnc, p.currency
ORDER BY b.submit_day, b.status, b.mccmnc, p.currency"""

TOTALS = """WITH {base}
SELECT count(*), count(*) FILTER (WHERE NOT is_final),
    CAST(count(*) FILTER (WHERE status = 'DELIVERED') AS DOUBLE)
        / nullif(count(*) FILTER (WHERE is_final), 0),
    {durations}
FROM base"""

# "Last 7 days" counts back from the newest submit day in the data, not from today: statuses
# arrive late and the sandbox's messages carry fixed dates.
RECENT = """WITH {base}
SELECT submit_day, status, count(*), CAST(sum(parts) AS BIGINT), {durations}
FROM base WHERE submit_day > (SELECT max(submit_day) FROM base) - {days}
GROUP BY submit_day, status ORDER BY submit_day DESC, count(*) DESC, status"""


OPT_OUT_COLUMNS: dict[str, tuple[dict[str, Any], str]] = {
    "day": ({"data_type": "date"}, "Day the deciding replies were sent, UTC."),
    "opt_outs": ({"data_type": "bigint"}, "Numbers that opted out that day."),
    "opt_ins": ({"data_type": "bigint"}, "Numbers that opted back in (or first in) that day."),
}

# Each version of a number in `opt_outs` (scd2) is a decision that changed its state.
OPT_OUTS_PER_DAY = """SELECT CAST(timezone('UTC', decided_at) AS DATE) AS day,
    count(*) FILTER (WHERE opted_out) AS opt_outs,
    count(*) FILTER (WHERE NOT opted_out) AS opt_ins
FROM {opt_outs} GROUP BY 1 ORDER BY 1"""


@dataclass
class OptOutDays:
    rows: list[dict[str, Any]]
    # Numbers opted out now.
    opted_out: int


def opt_outs_per_day(warehouse: Connection) -> OptOutDays:
    """Opt-outs and opt-ins per day, and the numbers opted out now (none before the first load
    of `opt_outs`)."""
    columns = warehouse.columns([OPT_OUTS.name]).get(OPT_OUTS.name)
    if not columns:
        return OptOutDays([], 0)
    table = warehouse.table(OPT_OUTS.name)
    statement = warehouse.translated(OPT_OUTS_PER_DAY.format(opt_outs=table))
    rows = [
        dict(zip(OPT_OUT_COLUMNS, (day, int(outs), int(ins)), strict=True))
        for day, outs, ins in warehouse.rows(statement)
    ]
    current = sql.current_rows(sql.VALID_TO in columns)
    opted_out = warehouse.scalar(f"SELECT count(*) FROM {table} WHERE opted_out AND {current}")
    return OptOutDays(rows, int(opted_out))


@dataclass
class Summary:
    rows: list[dict[str, Any]]
    totals: tuple[Any, ...]
    costs: dict[str, Decimal]
    recent: list[tuple[Any, ...]]
    not_found: int


def build_summary(warehouse: Connection) -> Summary:
    """The summary's rows and the numbers its metadata shows."""
    tables = warehouse.columns(["messages", "messages__parts"])
    if "messages" not in tables:
        return Summary([], (0, 0, None, None, None), {}, [], 0)
    parts = warehouse.table("messages__parts") if "messages__parts" in tables else NO_PARTS
    base = BASE.format(final=sql.FINAL, messages=warehouse.table("messages"), parts=parts)

    def query(template: str) -> list[tuple[Any, ...]]:
        statement = template.format(
            base=base, durations=DURATIONS, final=sql.FINAL, parts=parts, days=RECENT_DAYS
        )
        return warehouse.rows(warehouse.translated(statement))

    rows = [dict(zip(NAMES, row, strict=True)) for row in query(GROUPS)]
    by_group = {(row["submit_day"], row["status"], row["mccmnc"]): row for row in rows}
    costs: dict[str, Decimal] = {}
    for day, status, mccmnc, currency, amount in query(COSTS):
        by_group[(day, status, mccmnc)].setdefault("cost", []).append(
            {"currency": currency, "amount": amount}
        )
        costs[currency] = costs.get(currency, Decimal(0)) + amount
    not_found = warehouse.scalar(
        f"SELECT count(*) FROM {warehouse.table('messages')} "
        "WHERE status IS NULL AND lookup_error IS NOT NULL"
    )
    return Summary(rows, query(TOTALS)[0], costs, query(RECENT), int(not_found))
