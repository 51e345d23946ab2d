"""`messaging/delivery_summary`: do messages arrive, how fast, and what do they cost, per day.

A DuckDB SQL asset downstream of `messaging/messages`. It reads `messaging.messages` and
`messaging.messages__parts` and writes `messaging.delivery_summary` in one short transaction, so a
reader never sees half a summary. Its materialization metadata carries top-level numbers (which
Dagster plots over time in the asset's Plots view), a markdown table of the last 7 days and the
table's row count and column schema.

It and its checks are in the one-writer DuckDB pool, like the dlt assets.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
    asset_check,
)

from messaging_assets.automation import summary_freshness
from messaging_assets.registry import FINAL_STATUSES, GROUP, SOURCE, STATUS
from messaging_assets.warehouse import WRITER_POOL, connect, one_writer

SUMMARY_KEY = AssetKey([GROUP, "delivery_summary"])
TABLE = f"{SOURCE}.delivery_summary"
FRESHNESS = summary_freshness()
RECENT_DAYS = 7

FINALS = ", ".join(f"'{status}'" for status in FINAL_STATUSES)

# Stand-ins with the columns the summary reads, for a first run before dlt created the tables:
# the same SQL then yields an empty summary with the same schema instead of failing.
NO_MESSAGES = """(SELECT NULL::VARCHAR AS status, NULL::TIMESTAMPTZ AS submit_date,
    NULL::TIMESTAMPTZ AS done_date, NULL::VARCHAR AS mccmnc, NULL::VARCHAR AS _dlt_id,
    NULL::VARCHAR AS lookup_error WHERE false)"""
NO_PARTS = """(SELECT NULL::VARCHAR AS _dlt_parent_id, NULL::VARCHAR AS currency,
    NULL::DECIMAL(18, 6) AS price WHERE false)"""

# One row per message that has a status. Messages the provider no longer knows (404, recorded
# as lookup_error NOT_FOUND with a null status) carry no dates or network: they are left out
# here and counted in the metadata as `not_found`.
BASE = """
CREATE OR REPLACE TEMP VIEW delivery_base AS
WITH parts AS (
    SELECT _dlt_parent_id, count(*) AS parts FROM {parts} GROUP BY _dlt_parent_id
)
SELECT
    timezone('UTC', m.submit_date)::DATE AS submit_day,
    m.status,
    m.mccmnc,
    m._dlt_id,
    m.status IN ({finals}) AS is_final,
    CASE WHEN m.status IN ({finals})
        THEN epoch(m.done_date) - epoch(m.submit_date) END AS seconds_to_final,
    coalesce(p.parts, 0) AS parts
FROM {messages} AS m
LEFT JOIN parts AS p ON p._dlt_parent_id = m._dlt_id
WHERE m.status IS NOT NULL AND m.submit_date IS NOT NULL
"""

# Cost per currency: parts carry the currency, and summing across currencies means nothing.
COSTS = """
CREATE OR REPLACE TEMP VIEW delivery_costs AS
SELECT b.submit_day, b.status, b.mccmnc, p.currency, sum(p.price) AS cost
FROM delivery_base AS b
JOIN {parts} AS p ON p._dlt_parent_id = b._dlt_id
WHERE p.price IS NOT NULL AND p.currency IS NOT NULL
GROUP BY ALL
"""

SUMMARY = """
CREATE OR REPLACE TABLE {table} AS
WITH grouped AS (
    SELECT
        submit_day, status, mccmnc,
        count(*) AS messages,
        sum(parts)::BIGINT AS parts,
        median(seconds_to_final) AS median_seconds_to_final,
        quantile_cont(seconds_to_final, 0.95) AS p95_seconds_to_final,
        min(seconds_to_final) AS min_seconds_to_final
    FROM delivery_base
    GROUP BY ALL
),
costs AS (
    SELECT submit_day, status, mccmnc,
        map_from_entries(list((currency, cost) ORDER BY currency)) AS cost
    FROM delivery_costs
    GROUP BY ALL
)
SELECT
    g.submit_day, g.status, g.mccmnc, g.messages, g.parts,
    -- A rate per status row would be 1 or 0; the rate of its day and network says more.
    sum(CASE WHEN g.status = 'DELIVERED' THEN g.messages ELSE 0 END)
        OVER (PARTITION BY g.submit_day, g.mccmnc)
      / nullif(sum(CASE WHEN g.status IN ({finals}) THEN g.messages ELSE 0 END)
        OVER (PARTITION BY g.submit_day, g.mccmnc), 0) AS delivery_rate,
    coalesce(c.cost, MAP {{}}::MAP(VARCHAR, DECIMAL(38, 6))) AS cost,
    g.median_seconds_to_final, g.p95_seconds_to_final, g.min_seconds_to_final
FROM grouped AS g
LEFT JOIN costs AS c USING (submit_day, status, mccmnc)
ORDER BY g.submit_day, g.status, g.mccmnc
"""

TOTALS = """
SELECT
    count(*) AS messages,
    count(*) FILTER (WHERE NOT is_final) AS pending,
    coalesce(count(*) FILTER (WHERE status = 'DELIVERED')
        / nullif(count(*) FILTER (WHERE is_final), 0), 0.0) AS delivery_rate,
    coalesce(median(seconds_to_final), 0.0) AS median_seconds_to_final,
    coalesce(quantile_cont(seconds_to_final, 0.95), 0.0) AS p95_seconds_to_final
FROM delivery_base
"""

COST_TOTALS = """
SELECT currency, sum(cost) FROM delivery_costs GROUP BY currency ORDER BY currency
"""

# "Last 7 days" counts back from the newest submit day in the data, not from today: statuses
# arrive late and the sandbox's messages carry fixed dates.
RECENT = f"""
WITH recent AS (
    SELECT * FROM delivery_base
    WHERE submit_day > (SELECT max(submit_day) FROM delivery_base) - {RECENT_DAYS}
),
costs AS (
    SELECT submit_day, status,
        string_agg(printf('%.2f %s', sum_cost, currency), ', ' ORDER BY currency) AS cost
    FROM (SELECT submit_day, status, currency, sum(cost) AS sum_cost
          FROM delivery_costs GROUP BY ALL)
    GROUP BY ALL
)
SELECT r.submit_day, r.status, count(*), sum(r.parts)::BIGINT, coalesce(c.cost, ''),
    median(r.seconds_to_final), quantile_cont(r.seconds_to_final, 0.95)
FROM recent AS r
LEFT JOIN costs AS c USING (submit_day, status)
GROUP BY r.submit_day, r.status, c.cost
ORDER BY r.submit_day DESC, count(*) DESC, r.status
"""

COLUMN_DESCRIPTIONS = {
    "submit_day": "Day the message was submitted, UTC.",
    "status": "Status at the last look-up; ACCEPTED and BUFFERED are still pending.",
    "mccmnc": "Mobile network (MCC+MNC) of the recipient.",
    "messages": "Messages with this day, status and network.",
    "parts": "Billed parts of those messages.",
    "delivery_rate": "DELIVERED / final messages of the same day and network; null if none final.",
    "cost": "Sum of the parts' prices, per currency.",
    "median_seconds_to_final": "Median of doneDate - submitDate, final messages only.",
    "p95_seconds_to_final": "95th percentile of doneDate - submitDate, final messages only.",
    "min_seconds_to_final": "Shortest doneDate - submitDate; never negative in good data.",
}


@contextmanager
def duckdb_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with one_writer(), connect() as warehouse:
        con = warehouse.client.native_connection
        # Days are UTC days whatever the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        yield con


@dataclass
class Summary:
    rows: int
    schema: TableSchema
    totals: dict[str, Any]
    costs: list[tuple[str, Decimal]]
    recent: list[tuple[Any, ...]]
    not_found: int


def build_summary(con: duckdb.DuckDBPyConnection) -> Summary:
    """Rewrites the summary table and reads what the metadata shows, in one transaction."""
    con.begin()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE}")
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SOURCE]
        ).fetchall()
    }
    has_messages = "messages" in tables
    messages = f"{SOURCE}.messages" if has_messages else NO_MESSAGES
    # dlt creates the parts table only once some message had parts.
    parts = f"{SOURCE}.messages__parts" if "messages__parts" in tables else NO_PARTS
    con.execute(BASE.format(messages=messages, parts=parts, finals=FINALS))
    con.execute(COSTS.format(parts=parts))
    con.execute(SUMMARY.format(table=TABLE, finals=FINALS))
    described = con.execute(f"DESCRIBE {TABLE}").fetchall()
    schema = TableSchema(
        columns=[
            TableColumn(name, column_type, description=COLUMN_DESCRIPTIONS.get(name))
            for name, column_type, *_ in described
        ]
    )
    rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    cursor = con.execute(TOTALS)
    names = [column[0] for column in cursor.description]
    totals = dict(zip(names, cursor.fetchone(), strict=True))
    costs = con.execute(COST_TOTALS).fetchall()
    recent = con.execute(RECENT).fetchall()
    not_found = 0
    if has_messages:
        not_found = con.execute(
            f"SELECT count(*) FROM {messages} WHERE status IS NULL AND lookup_error IS NOT NULL"
        ).fetchone()[0]
    con.commit()
    return Summary(rows, schema, totals, costs, recent, not_found)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def recent_markdown(recent: list[tuple[Any, ...]]) -> str:
    header = (
        "| day (UTC) | status | messages | parts | cost | median s to final | p95 s to final |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
    )
    if not recent:
        return header + "| no messages yet | | 0 | 0 | | | |\n"
    lines = [
        f"| {day} | {status} | {count} | {parts} | {cost} | {_seconds(median)} | {_seconds(p95)} |"
        for day, status, count, parts, cost, median, p95 in recent
    ]
    return header + "\n".join(lines) + "\n"


def summary_metadata(summary: Summary) -> dict[str, Any]:
    totals = summary.totals
    metadata: dict[str, Any] = {
        # Top-level numbers: Dagster plots each one over materializations (Plots view).
        "delivery_rate": MetadataValue.float(float(totals["delivery_rate"])),
        "messages": MetadataValue.int(int(totals["messages"])),
        "pending": MetadataValue.int(int(totals["pending"])),
        "median_seconds_to_final": MetadataValue.float(float(totals["median_seconds_to_final"])),
        "p95_seconds_to_final": MetadataValue.float(float(totals["p95_seconds_to_final"])),
        "not_found": MetadataValue.int(summary.not_found),
    }
    for currency, cost in summary.costs:
        metadata[f"cost_{currency.lower()}"] = MetadataValue.float(float(cost))
    metadata[f"last_{RECENT_DAYS}_days"] = MetadataValue.md(recent_markdown(summary.recent))
    metadata["dagster/row_count"] = MetadataValue.int(summary.rows)
    metadata["dagster/column_schema"] = MetadataValue.table_schema(summary.schema)
    return metadata


@asset(
    key=SUMMARY_KEY,
    deps=[STATUS.asset_key],
    group_name=GROUP,
    kinds={"duckdb", "sql"},
    description=(
        "Per submit day (UTC), status and network (mccmnc): messages, parts, delivery rate, cost "
        "per currency, median and p95 seconds to a final state. Table "
        f"`{TABLE}`; refreshed after every `messaging/messages` update."
    ),
    automation_condition=AutomationCondition.eager(),
    freshness_policy=FRESHNESS,
    pool=WRITER_POOL,
)
def delivery_summary(context: AssetExecutionContext) -> MaterializeResult:
    with duckdb_connection() as con:
        summary = build_summary(con)
    if not summary.totals["messages"]:
        context.log.info("No messages with a status yet: the summary is empty.")
    return MaterializeResult(metadata=summary_metadata(summary))


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="Every delivery_rate is null (nothing final yet) or between 0 and 1.",
)
def delivery_rate_is_a_share(context: AssetCheckExecutionContext) -> AssetCheckResult:
    with duckdb_connection() as con:
        bad = con.execute(
            f"SELECT count(*) FROM {TABLE} WHERE delivery_rate NOT BETWEEN 0 AND 1"
        ).fetchone()[0]
    return AssetCheckResult(
        passed=bad == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows_out_of_range": MetadataValue.int(bad)},
    )


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="No message reached its final state before it was submitted (doneDate >= "
    "submitDate): no negative min, median or p95 seconds to final.",
)
def no_negative_durations(context: AssetCheckExecutionContext) -> AssetCheckResult:
    with duckdb_connection() as con:
        bad = con.execute(
            f"""SELECT count(*) FROM {TABLE} WHERE least(min_seconds_to_final,
                median_seconds_to_final, p95_seconds_to_final) < 0"""
        ).fetchone()[0]
    return AssetCheckResult(
        passed=bad == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows_with_negative_durations": MetadataValue.int(bad)},
    )


DELIVERY_SUMMARY_CHECKS = [delivery_rate_is_a_share, no_negative_durations]
