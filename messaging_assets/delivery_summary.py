"""`messaging/delivery_summary`: do messages arrive, how fast, and what do they cost, per day.

Computed by SQL over `messaging.messages` and `messaging.messages__parts` (written once, in
DuckDB's dialect, translated for other destinations), and loaded by dlt into
`messaging.delivery_summary` with the cost per currency as rows of
`messaging.delivery_summary__cost`: the same table on every destination. Its materialization
metadata carries top-level numbers (plotted over time in the asset's Plots view), a markdown
table of the last 7 days and the table's row count and column schema.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import dlt
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
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

from messaging_assets import sql
from messaging_assets.automation import summary_freshness
from messaging_assets.loads import run_directory
from messaging_assets.pipeline import messaging_pipeline
from messaging_assets.registry import GROUP, STATUS
from messaging_assets.warehouse import WRITER_POOL, Connection, connect, one_writer

SUMMARY_KEY = AssetKey([GROUP, "delivery_summary"])
TABLE = "delivery_summary"
RECENT_DAYS = 7

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
COST_COLUMNS = {
    "currency": {"data_type": "text"},
    "amount": {"data_type": "decimal", "precision": 38, "scale": 6},
}


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

    names = list(COLUMNS)
    rows = [dict(zip(names, row, strict=True)) for row in query(GROUPS)]
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


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def recent_markdown(summary: Summary) -> str:
    header = (
        "| day (UTC) | status | messages | parts | cost | median s to final | p95 s to final |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
    )
    if not summary.recent:
        return header + "| no messages yet | | 0 | 0 | | | |\n"
    spent: dict[tuple[Any, str], dict[str, Decimal]] = {}
    for row in summary.rows:
        for cost in row.get("cost", ()):
            day_status = spent.setdefault((row["submit_day"], row["status"]), {})
            day_status[cost["currency"]] = day_status.get(cost["currency"], 0) + cost["amount"]
    lines = []
    for day, status, count, parts, median, p95 in summary.recent:
        amounts = sorted(spent.get((day, status), {}).items())
        cost = ", ".join(f"{amount:.2f} {currency}" for currency, amount in amounts)
        lines.append(
            f"| {day} | {status} | {count} | {parts} | {cost} | {_seconds(median)} "
            f"| {_seconds(p95)} |"
        )
    return header + "\n".join(lines) + "\n"


def summary_metadata(summary: Summary, schema: TableSchema) -> dict[str, Any]:
    messages, pending, rate, median, p95 = summary.totals
    metadata: dict[str, Any] = {
        # Top-level numbers: Dagster plots each one over materializations (Plots view).
        "delivery_rate": MetadataValue.float(float(rate or 0.0)),
        "messages": MetadataValue.int(int(messages)),
        "pending": MetadataValue.int(int(pending)),
        "median_seconds_to_final": MetadataValue.float(float(median or 0.0)),
        "p95_seconds_to_final": MetadataValue.float(float(p95 or 0.0)),
        "not_found": MetadataValue.int(summary.not_found),
    }
    for currency, cost in sorted(summary.costs.items()):
        metadata[f"cost_{currency.lower()}"] = MetadataValue.float(float(cost))
    metadata[f"last_{RECENT_DAYS}_days"] = MetadataValue.md(recent_markdown(summary))
    metadata["dagster/row_count"] = MetadataValue.int(len(summary.rows))
    metadata["dagster/column_schema"] = MetadataValue.table_schema(schema)
    return metadata


def summary_resource(rows: list[dict[str, Any]]) -> Any:
    # An empty summary is still a table, so that a user's query of it works from the first run.
    return dlt.resource(
        rows or [dlt.mark.materialize_table_schema()],
        name=TABLE,
        write_disposition="replace",
        columns={name: {"name": name, **hint} for name, (hint, _) in COLUMNS.items()},
        nested_hints={
            "cost": {"columns": {name: {"name": name, **h} for name, h in COST_COLUMNS.items()}}
        },
    )


@asset(
    key=SUMMARY_KEY,
    deps=[STATUS.asset_key],
    group_name=GROUP,
    kinds={"dlt", "sql"},
    description=(
        "Per submit day (UTC), status and network (mccmnc): messages, parts, delivery rate, "
        "median and p95 seconds to a final state; cost per currency in `delivery_summary__cost`."
        f" Table `{TABLE}`; refreshed after every `messaging/messages` update."
    ),
    automation_condition=AutomationCondition.eager(),
    freshness_policy=summary_freshness(),
    pool=WRITER_POOL,
)
def delivery_summary(context: AssetExecutionContext) -> MaterializeResult:
    with one_writer(), run_directory(context.run.run_id) as workdir:
        pipeline = messaging_pipeline(workdir)
        with connect(pipeline) as warehouse:
            summary = build_summary(warehouse)
        pipeline.run(summary_resource(summary.rows))
    if not summary.totals[0]:
        context.log.info("No messages with a status yet: the summary is empty.")
    schema = TableSchema(
        columns=[
            TableColumn(name, hint["data_type"], description=description)
            for name, (hint, description) in COLUMNS.items()
        ]
    )
    return MaterializeResult(metadata=summary_metadata(summary, schema))


def _count(where: str) -> int:
    with one_writer(), connect() as warehouse:
        if not warehouse.has_table(TABLE):
            return 0
        return int(warehouse.scalar(f"SELECT count(*) FROM {warehouse.table(TABLE)} WHERE {where}"))


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="Every delivery_rate is null (nothing final yet) or between 0 and 1.",
)
def delivery_rate_is_a_share(context: AssetCheckExecutionContext) -> AssetCheckResult:
    bad = _count("delivery_rate < 0 OR delivery_rate > 1")
    return AssetCheckResult(passed=bad == 0, metadata={"rows_out_of_range": MetadataValue.int(bad)})


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="No message reached its final state before it was submitted (doneDate >= "
    "submitDate): no negative min, median or p95 seconds to final.",
)
def no_negative_durations(context: AssetCheckExecutionContext) -> AssetCheckResult:
    bad = _count(
        "min_seconds_to_final < 0 OR median_seconds_to_final < 0 OR p95_seconds_to_final < 0"
    )
    return AssetCheckResult(
        passed=bad == 0, metadata={"rows_with_negative_durations": MetadataValue.int(bad)}
    )


DELIVERY_SUMMARY_CHECKS = [delivery_rate_is_a_share, no_negative_durations]
