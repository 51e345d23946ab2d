"""`messaging/delivery_summary` against messages looked up from the sandbox into a real DuckDB file,
and, for the tests marked so, into PostgreSQL.

Expected values come from what the sandbox says about each message (`sandbox.message(id)`), not
from the SQL under test. Where the sandbox cannot produce bad data (a message done before it was
submitted, a rate above 1, a second currency, an emptied table), a test writes it into the
warehouse by hand and says so in its docstring.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from messaging_assets.definitions import defs
from messaging_assets.defs.automation import summary_freshness
from messaging_assets.defs.delivery_summary import (
    delivery_rate_is_a_share,
    no_negative_durations,
)
from messaging_assets.receiver.landing import INBOUND_MESSAGES
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    Destination,
    Landing,
    Warehouse,
    both_destinations,
    metadata_of,
    run_config,
)
from messaging_assets_tests.source.test_opt_outs import reply

SUMMARY = AssetKey(["messaging", "delivery_summary"])
MESSAGES = AssetKey(["messaging", "messages"])
OPT_OUTS = AssetKey(["messaging", "opt_outs"])
INBOUND = AssetKey(["messaging", "inbound_messages"])
FINAL = {"DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED"}
COLUMNS = [
    "submit_day",
    "status",
    "mccmnc",
    "messages",
    "parts",
    "delivery_rate",
    "median_seconds_to_final",
    "p95_seconds_to_final",
    "min_seconds_to_final",
]


@pytest.fixture
def summarize(sandbox: Sandbox, destination: Destination, instance: DagsterInstance):
    """Materializes assets with their checks (conftest's `run` passes assets only)."""

    def _run(
        *keys: AssetKey,
        request_ids: list[str] | None = None,
        selection: AssetSelection | None = None,
    ) -> ExecuteInProcessResult:
        return materialize(
            [*defs.assets, *defs.asset_checks],
            selection=selection or list(keys),
            resources=dict(defs.resources or {}),
            instance=instance,
            run_config=run_config(request_ids=request_ids or ()),
        )

    return _run


def check_results(result: ExecuteInProcessResult) -> dict[str, bool]:
    """The delivery summary's check results (the dlt tables' checks run in the same runs)."""
    return {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.asset_check_evaluation_data.asset_key == SUMMARY
    }


def utc_day(timestamp: str) -> str:
    parsed = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S%z")
    return parsed.astimezone(timezone.utc).date().isoformat()


def group_of(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """The summary row a sandbox message belongs to: (UTC submit day, status, mccmnc)."""
    return (utc_day(record["submitDate"]), record["status"], record["mccmnc"])


def seconds(record: Mapping[str, Any]) -> float:
    done = datetime.strptime(record["doneDate"], "%Y-%m-%dT%H:%M:%S%z")
    return (done - datetime.strptime(record["submitDate"], "%Y-%m-%dT%H:%M:%S%z")).total_seconds()


def quantile_cont(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as DuckDB's quantile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_rows(warehouse: Warehouse) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The summary as a user reads it: a row per group, its cost per currency from the rows of
    `delivery_summary__cost`."""
    rows = warehouse.rows(f"SELECT {', '.join(COLUMNS)}, _dlt_id FROM messaging.delivery_summary")
    costs: defaultdict[str, dict[str, Decimal]] = defaultdict(dict)
    if "delivery_summary__cost" in warehouse.tables():
        for parent, currency, amount in warehouse.rows(
            "SELECT _dlt_parent_id, currency, amount FROM messaging.delivery_summary__cost"
        ):
            costs[parent][currency] = amount
    return {
        (str(r[0]), r[1], r[2]): {**dict(zip(COLUMNS, r[:-1], strict=True)), "cost": costs[r[-1]]}
        for r in rows
    }


def load_final_messages(sandbox: Sandbox, summarize, n: int = 40) -> list[dict[str, Any]]:
    ids = sandbox.add_messages(n, final=True)
    summarize(MESSAGES, SUMMARY, request_ids=ids)
    return [sandbox.message(request_id) for request_id in ids]


@both_destinations
def test_first_run_before_any_message_table_gives_an_empty_summary_with_zeros(
    summarize, warehouse: Warehouse
):
    result = summarize(SUMMARY)

    assert warehouse.scalar("SELECT count(*) FROM messaging.delivery_summary") == 0
    columns = warehouse.column_types("delivery_summary")
    assert [name for name in columns if not name.startswith("_dlt")] == COLUMNS
    metadata = metadata_of(result, "delivery_summary")
    assert {key: metadata[key] for key in ("messages", "pending", "dagster/row_count")} == {
        "messages": 0,
        "pending": 0,
        "dagster/row_count": 0,
    }
    assert metadata["delivery_rate"] == metadata["median_seconds_to_final"] == 0.0
    assert "no messages yet" in metadata["last_7_days"]


@both_destinations
def test_emptied_message_tables_give_an_empty_summary_with_zeros(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    """The tables exist but hold no rows: emptied by hand, as the sandbox never shrinks them."""
    load_final_messages(sandbox, summarize, n=3)
    warehouse.execute("DELETE FROM messaging.messages__parts")
    warehouse.execute("DELETE FROM messaging.messages")

    result = summarize(SUMMARY)

    assert warehouse.scalar("SELECT count(*) FROM messaging.delivery_summary") == 0
    metadata = metadata_of(result, "delivery_summary")
    assert (metadata["messages"], metadata["delivery_rate"]) == (0, 0.0)
    assert not [key for key in metadata if key.startswith("cost_")]
    assert check_results(result) == {
        "delivery_rate_is_a_share": True,
        "no_negative_durations": True,
    }


@both_destinations
def test_counts_and_parts_per_utc_day_status_and_network_match_the_sandbox(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize)

    expected: Counter[tuple[str, str, str]] = Counter()
    parts: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        group = group_of(record)
        expected[group] += 1
        parts[group] += len(record["parts"])
    rows = summary_rows(warehouse)
    assert {group: row["messages"] for group, row in rows.items()} == dict(expected)
    assert {group: row["parts"] for group, row in rows.items()} == dict(parts)


def test_cost_is_the_sum_of_part_prices_per_currency(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize)

    expected: defaultdict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for record in records:
        group = group_of(record)
        for part in record["parts"]:
            expected[group][part["currency"]] += Decimal(part["price"])
    assert {group: row["cost"] for group, row in summary_rows(warehouse).items()} == {
        group: dict(costs) for group, costs in expected.items()
    }


@both_destinations
def test_a_second_currency_is_summed_apart(sandbox: Sandbox, summarize, warehouse: Warehouse):
    """The sandbox bills in EUR only: one message's parts are switched to USD by hand."""
    records = load_final_messages(sandbox, summarize, n=10)
    usd = records[0]
    warehouse.execute(
        f"""UPDATE messaging.messages__parts SET currency = 'USD' WHERE _dlt_parent_id =
            (SELECT _dlt_id FROM messaging.messages WHERE request_id = '{usd["requestId"]}')""",
    )

    result = summarize(SUMMARY)

    usd_cost = sum(Decimal(part["price"]) for part in usd["parts"])
    eur_cost = sum(Decimal(p["price"]) for r in records[1:] for p in r["parts"])
    metadata = metadata_of(result, "delivery_summary")
    assert metadata["cost_usd"] == pytest.approx(float(usd_cost))
    assert metadata["cost_eur"] == pytest.approx(float(eur_cost))
    group = group_of(usd)
    assert summary_rows(warehouse)[group]["cost"]["USD"] == usd_cost


@both_destinations
def test_median_and_p95_are_seconds_from_submit_to_done(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize)

    durations: defaultdict[tuple[str, str, str], list[float]] = defaultdict(list)
    for record in records:
        group = group_of(record)
        durations[group].append(seconds(record))
    for group, row in summary_rows(warehouse).items():
        assert row["median_seconds_to_final"] == pytest.approx(statistics.median(durations[group]))
        assert row["p95_seconds_to_final"] == pytest.approx(quantile_cont(durations[group], 0.95))
        assert row["min_seconds_to_final"] == min(durations[group])


@both_destinations
def test_delivery_rate_is_delivered_over_final_per_day_and_network(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize)

    final: Counter[tuple[str, str]] = Counter()
    delivered: Counter[tuple[str, str]] = Counter()
    for record in records:
        network = (utc_day(record["submitDate"]), record["mccmnc"])
        final[network] += 1
        delivered[network] += record["status"] == "DELIVERED"
    for (day, _status, mccmnc), row in summary_rows(warehouse).items():
        network = (day, mccmnc)
        assert row["delivery_rate"] == pytest.approx(delivered[network] / final[network])


@both_destinations
def test_pending_messages_are_counted_and_have_no_rate_or_duration(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    # A fresh message reads ACCEPTED at its first look-up.
    pending = sandbox.add_messages(4)

    result = summarize(MESSAGES, SUMMARY, request_ids=pending)

    assert {sandbox.message(rid)["status"] for rid in pending} == {"BUFFERED"}  # moved on since
    rows = summary_rows(warehouse).values()
    assert {row["status"] for row in rows} == {"ACCEPTED"}
    assert sum(row["messages"] for row in rows) == 4
    assert all(
        row["delivery_rate"] is None and row["median_seconds_to_final"] is None for row in rows
    )
    metadata = metadata_of(result, "delivery_summary")
    assert (metadata["pending"], metadata["messages"], metadata["delivery_rate"]) == (4, 4, 0.0)


def test_messages_the_provider_forgot_are_left_out_and_counted(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    known = sandbox.add_messages(3, final=True)

    result = summarize(MESSAGES, SUMMARY, request_ids=[*known, "forgotten-1", "forgotten-2"])

    assert warehouse.scalar("SELECT sum(messages) FROM messaging.delivery_summary") == 3
    assert (
        warehouse.scalar("SELECT count(*) FROM messaging.delivery_summary WHERE status IS NULL")
        == 0
    )
    assert metadata_of(result, "delivery_summary")["not_found"] == 2


def test_metadata_has_numbers_to_plot_a_markdown_table_row_count_and_schema(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize)
    result = summarize(SUMMARY)

    metadata = metadata_of(result, "delivery_summary")
    statuses = Counter(record["status"] for record in records)
    durations = [seconds(record) for record in records]
    assert metadata["messages"] == len(records)
    assert metadata["pending"] == 0
    assert metadata["delivery_rate"] == pytest.approx(statuses["DELIVERED"] / len(records))
    assert metadata["median_seconds_to_final"] == pytest.approx(statistics.median(durations))
    cost = sum(Decimal(part["price"]) for record in records for part in record["parts"])
    assert metadata["cost_eur"] == pytest.approx(float(cost))
    assert metadata["dagster/row_count"] == len(summary_rows(warehouse))
    assert [column.name for column in metadata["dagster/column_schema"].columns] == COLUMNS
    table = metadata["last_7_days"]
    assert table.startswith("| day (UTC) | status | messages |")
    day = utc_day(records[0]["submitDate"])
    for status, count in statuses.items():
        assert f"| {day} | {status} | {count} |" in table


@both_destinations
def test_rerun_replaces_the_summary_instead_of_appending(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    records = load_final_messages(sandbox, summarize, n=10)

    summarize(SUMMARY)

    assert warehouse.scalar("SELECT sum(messages) FROM messaging.delivery_summary") == len(records)


def test_checks_pass_on_sandbox_data(sandbox: Sandbox, summarize):
    ids = sandbox.add_messages(30, final=True)

    result = summarize(MESSAGES, SUMMARY, request_ids=ids)

    assert check_results(result) == {
        "delivery_rate_is_a_share": True,
        "no_negative_durations": True,
    }


@both_destinations
def test_message_done_before_it_was_submitted_fails_the_duration_check(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    """The sandbox never answers doneDate < submitDate: one stored message is set so by hand."""
    (bad, *_) = load_final_messages(sandbox, summarize, n=5)
    warehouse.execute(
        f"""UPDATE messaging.messages SET done_date = submit_date - INTERVAL 1 HOUR
            WHERE request_id = '{bad["requestId"]}'""",
    )

    result = summarize(SUMMARY)

    assert check_results(result) == {
        "delivery_rate_is_a_share": True,
        "no_negative_durations": False,
    }


@both_destinations
def test_delivery_rate_outside_zero_to_one_fails_the_rate_check(
    sandbox: Sandbox, summarize, warehouse: Warehouse
):
    """The SQL cannot produce a rate above 1 (DELIVERED is final): a summary row is set to 1.5
    by hand, and the check alone is run against it."""
    load_final_messages(sandbox, summarize, n=5)
    warehouse.execute("UPDATE messaging.delivery_summary SET delivery_rate = 1.5")

    result = summarize(selection=AssetSelection.checks(delivery_rate_is_a_share))

    assert check_results(result) == {"delivery_rate_is_a_share": False}


def test_summary_follows_messages_and_opt_outs_eagerly_with_checks_and_a_freshness_policy():
    graph = defs.resolve_asset_graph()
    node = graph.get(SUMMARY)

    assert node.parent_keys == {MESSAGES, OPT_OUTS}
    assert node.group_name == "messaging"
    assert node.kinds == {"dlt", "sql"}
    assert node.automation_condition == AutomationCondition.eager()
    assert node.freshness_policy == summary_freshness()
    assert {key for key in graph.asset_check_keys if key.asset_key == SUMMARY} == {
        AssetCheckKey(SUMMARY, check.check_key.name)
        for check in (delivery_rate_is_a_share, no_negative_durations)
    }


@both_destinations
def test_opt_outs_and_opt_ins_are_counted_per_day_with_the_numbers_opted_out_now(
    summarize, landed: Landing, warehouse: Warehouse
):
    day = 24 * 60
    landed.land(
        INBOUND_MESSAGES,
        reply("a-stop", "STOP", 0, sender="+4915111111111"),
        reply("b-stop", "STOP", 1, sender="+4915122222222"),
    )
    summarize(INBOUND, OPT_OUTS)
    landed.land(INBOUND_MESSAGES, reply("a-start", "START", day, sender="+4915111111111"))
    summarize(INBOUND, OPT_OUTS)

    result = summarize(SUMMARY)

    assert warehouse.rows(
        "SELECT CAST(day AS VARCHAR), opt_outs, opt_ins FROM messaging.delivery_summary_opt_outs "
        "ORDER BY day"
    ) == [("2026-12-01", 2, 0), ("2026-12-02", 0, 1)]
    metadata = metadata_of(result, "delivery_summary")
    assert metadata["opted_out_numbers"] == 1
    assert metadata["opt_outs_last_7_days"].splitlines()[2:] == [
        "| 2026-12-02 | 0 | 1 |",
        "| 2026-12-01 | 2 | 0 |",
    ]
