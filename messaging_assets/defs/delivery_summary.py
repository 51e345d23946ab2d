"""`messaging/delivery_summary`: do messages arrive, how fast, and what do they cost, per day.

Computed by SQL over `messaging.messages` and `messaging.messages__parts`
(warehouse/delivery_metrics.py), and loaded by dlt into `messaging.delivery_summary` with the cost
per currency as rows of `messaging.delivery_summary__cost`: the same table on every destination.
Opt-outs and opt-ins per day, from `messaging.opt_outs`, go to
`messaging.delivery_summary_opt_outs`. Its materialization metadata carries top-level numbers
(plotted over time in the asset's Plots view), markdown tables of the last 7 days and the table's
row count and column schema.
"""

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

from messaging_assets.defs.automation import summary_freshness
from messaging_assets.defs.translator import asset_key
from messaging_assets.defs.writers import WRITER_POOL, StepContext, WritersPool
from messaging_assets.registry import GROUP, OPT_OUTS, STATUS
from messaging_assets.warehouse.connection import connect
from messaging_assets.warehouse.delivery_metrics import (
    COLUMNS,
    OPT_OUT_COLUMNS,
    RECENT_DAYS,
    OptOutDays,
    Summary,
    build_summary,
    opt_outs_per_day,
)
from messaging_assets.warehouse.run_directories import run_pipeline

SUMMARY_KEY = AssetKey([GROUP, "delivery_summary"])
TABLE = "delivery_summary"
OPT_OUTS_TABLE = "delivery_summary_opt_outs"

COST_COLUMNS = {
    "currency": {"data_type": "text"},
    "amount": {"data_type": "decimal", "precision": 38, "scale": 6},
}


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


def opt_outs_markdown(days: OptOutDays) -> str:
    header = "| day (UTC) | opt-outs | opt-ins |\n| --- | ---: | ---: |\n"
    recent = days.rows[-RECENT_DAYS:][::-1]
    if not recent:
        return header + "| no replies yet | 0 | 0 |\n"
    lines = [f"| {row['day']} | {row['opt_outs']} | {row['opt_ins']} |" for row in recent]
    return header + "\n".join(lines) + "\n"


def summary_metadata(summary: Summary, schema: TableSchema, days: OptOutDays) -> dict[str, Any]:
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
    metadata["opted_out_numbers"] = MetadataValue.int(days.opted_out)
    metadata[f"opt_outs_last_{RECENT_DAYS}_days"] = MetadataValue.md(opt_outs_markdown(days))
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


def opt_outs_resource(rows: list[dict[str, Any]]) -> Any:
    return dlt.resource(
        rows or [dlt.mark.materialize_table_schema()],
        name=OPT_OUTS_TABLE,
        write_disposition="replace",
        columns={name: {"name": name, **hint} for name, (hint, _) in OPT_OUT_COLUMNS.items()},
    )


@asset(
    key=SUMMARY_KEY,
    deps=[asset_key(STATUS), asset_key(OPT_OUTS)],
    group_name=GROUP,
    kinds={"dlt", "sql"},
    description=(
        "Per submit day (UTC), status and network (mccmnc): messages, parts, delivery rate, "
        "median and p95 seconds to a final state; cost per currency in `delivery_summary__cost`."
        f" Table `{TABLE}`; opt-outs and opt-ins per day in `{OPT_OUTS_TABLE}`. Refreshed after "
        "every `messaging/messages` or `messaging/opt_outs` update."
    ),
    automation_condition=AutomationCondition.eager(),
    freshness_policy=summary_freshness(),
    pool=WRITER_POOL,
)
def delivery_summary(context: AssetExecutionContext, writers: WritersPool) -> MaterializeResult:
    with writers.turn(context), run_pipeline(context.run.run_id) as pipeline:
        with connect(pipeline) as warehouse:
            summary = build_summary(warehouse)
            days = opt_outs_per_day(warehouse)
        pipeline.run([summary_resource(summary.rows), opt_outs_resource(days.rows)])
    if not summary.totals[0]:
        context.log.info("No messages with a status yet: the summary is empty.")
    schema = TableSchema(
        columns=[
            TableColumn(name, hint["data_type"], description=description)
            for name, (hint, description) in COLUMNS.items()
        ]
    )
    return MaterializeResult(metadata=summary_metadata(summary, schema, days))


def _count(context: StepContext, writers: WritersPool, where: str) -> int:
    with writers.turn(context), connect() as warehouse:
        if not warehouse.has_table(TABLE):
            return 0
        return int(warehouse.scalar(f"SELECT count(*) FROM {warehouse.table(TABLE)} WHERE {where}"))


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="Every delivery_rate is null (nothing final yet) or between 0 and 1.",
)
def delivery_rate_is_a_share(
    context: AssetCheckExecutionContext, writers: WritersPool
) -> AssetCheckResult:
    bad = _count(context, writers, "delivery_rate < 0 OR delivery_rate > 1")
    return AssetCheckResult(passed=bad == 0, metadata={"rows_out_of_range": MetadataValue.int(bad)})


@asset_check(
    asset=SUMMARY_KEY,
    pool=WRITER_POOL,
    description="No message reached its final state before it was submitted (doneDate >= "
    "submitDate): no negative min, median or p95 seconds to final.",
)
def no_negative_durations(
    context: AssetCheckExecutionContext, writers: WritersPool
) -> AssetCheckResult:
    bad = _count(
        context,
        writers,
        "min_seconds_to_final < 0 OR median_seconds_to_final < 0 OR p95_seconds_to_final < 0",
    )
    return AssetCheckResult(
        passed=bad == 0, metadata={"rows_with_negative_durations": MetadataValue.int(bad)}
    )


DELIVERY_SUMMARY_CHECKS = [delivery_rate_is_a_share, no_negative_durations]
