"""Asset checks on every table. They run in the same run as their asset, after it, and read the
DuckDB file read-only; their step is in the DuckDB pool, so no other run writes meanwhile."""

from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)
from dlt.common.normalizers.naming.snake_case import NamingConvention

from messaging_assets.polling import pending_messages
from messaging_assets.settings import SETTINGS
from messaging_assets.source import (
    FINAL_STATUSES,
    REFERENCE_RESOURCES,
    SOURCE_NAME,
    configured_primary_key,
)
from messaging_assets.translator import GROUP
from messaging_assets.warehouse import DUCKDB_POOL, WarehouseMissing, existing_tables, read_only

TABLES = ("sms", "messages", *REFERENCE_RESOURCES)
KNOWN_STATUSES = ("ACCEPTED", "BUFFERED", *FINAL_STATUSES)
SAMPLE = 5

PRIMARY_KEY = "primary_key_unique_not_null"
STATUS_KNOWN = "status_known"
FINAL_WITHIN_VALIDITY = "final_within_validity"
NO_MASS_DELETION = "current_rows_not_dropped"


def _key(table: str) -> AssetKey:
    return AssetKey([GROUP, table])


SPECS = [
    *(
        AssetCheckSpec(
            PRIMARY_KEY,
            asset=_key(table),
            description="The primary key is unique and never null"
            + (" among current rows (scd2)." if table in REFERENCE_RESOURCES else "."),
        )
        for table in TABLES
    ),
    AssetCheckSpec(
        STATUS_KNOWN,
        asset=_key("messages"),
        description=f"Every status is one of {', '.join(KNOWN_STATUSES)}, or null with a "
        "lookup_error (the provider no longer knows the message).",
    ),
    AssetCheckSpec(
        FINAL_WITHIN_VALIDITY,
        asset=_key("messages"),
        description="Warns about messages still not final past their validity plus a margin: "
        "the status sensor no longer polls them.",
    ),
    *(
        AssetCheckSpec(
            NO_MASS_DELETION,
            asset=_key(table),
            description="Warns when current rows drop by more than "
            f"{SETTINGS.row_drop_share:.0%} since the previous load "
            "(an upstream deletion gone wrong).",
        )
        for table in REFERENCE_RESOURCES
    ),
]


def primary_key_columns(table: str) -> list[str]:
    """The key as configured now (SOURCES__MESSAGING__<TABLE>__PRIMARY_KEY), named as in DuckDB."""
    return [NamingConvention().normalize_identifier(configured_primary_key(table))]


def _qualified(table: str) -> str:
    return f"{SOURCE_NAME}.{table}"


def check_primary_key(
    con: duckdb.DuckDBPyConnection, check_key: AssetCheckKey, context: AssetCheckExecutionContext
) -> AssetCheckResult:
    table = check_key.asset_key.path[-1]
    columns = primary_key_columns(table)
    history = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? AND column_name = '_dlt_valid_to'",
        [SOURCE_NAME, table],
    ).fetchone()[0]
    current = "_dlt_valid_to IS NULL" if history else "true"
    key = ", ".join(f'"{c}"' for c in columns)
    any_null = " OR ".join(f'"{c}" IS NULL' for c in columns)
    nulls = con.execute(
        f"SELECT count(*) FROM {_qualified(table)} WHERE {current} AND ({any_null})"
    ).fetchone()[0]
    duplicates = con.execute(
        f"SELECT {key}, count(*) FROM {_qualified(table)} WHERE {current} AND NOT ({any_null}) "
        f"GROUP BY ALL HAVING count(*) > 1 ORDER BY count(*) DESC, 1"
    ).fetchall()
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=not nulls and not duplicates,
        metadata={
            "primary_key": ", ".join(columns),
            "null_keys": nulls,
            "duplicated_keys": len(duplicates),
            "duplicated_sample": ", ".join(
                "/".join(map(str, row[:-1])) for row in duplicates[:SAMPLE]
            ),
        },
    )


def check_status_known(
    con: duckdb.DuckDBPyConnection, check_key: AssetCheckKey, context: AssetCheckExecutionContext
) -> AssetCheckResult:
    known = ", ".join(f"'{status}'" for status in KNOWN_STATUSES)
    unknown = con.execute(
        f"SELECT coalesce(status, '<null>'), count(*) FROM {_qualified('messages')} "
        f"WHERE (status IS NULL AND lookup_error IS NULL) OR status NOT IN ({known}) "
        "GROUP BY ALL ORDER BY 2 DESC"
    ).fetchall()
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=not unknown,
        metadata={
            "unknown_statuses": ", ".join(f"{status} ({n})" for status, n in unknown),
            "rows_with_unknown_status": sum(n for _, n in unknown),
        },
    )


def check_final_within_validity(
    con: duckdb.DuckDBPyConnection, check_key: AssetCheckKey, context: AssetCheckExecutionContext
) -> AssetCheckResult:
    now = datetime.now(timezone.utc)
    overdue = [
        m
        for m in pending_messages(con)
        if m.submitted_at and now - m.submitted_at > SETTINGS.give_up_after
    ]
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=not overdue,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "overdue_messages": len(overdue),
            "overdue_sample": ", ".join(m.request_id for m in overdue[:SAMPLE]),
            "validity_plus_margin_hours": SETTINGS.give_up_after.total_seconds() / 3600,
        },
    )


def check_no_mass_deletion(
    con: duckdb.DuckDBPyConnection, check_key: AssetCheckKey, context: AssetCheckExecutionContext
) -> AssetCheckResult:
    table = check_key.asset_key.path[-1]
    current = con.execute(
        f"SELECT count(*) FROM {_qualified(table)} WHERE _dlt_valid_to IS NULL"
    ).fetchone()[0]
    previous = _previous_row_count(context, check_key.asset_key)
    dropped = (previous - current) / previous if previous else 0.0
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=dropped <= SETTINGS.row_drop_share,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "current_rows": current,
            "previous_load_rows": previous,
            "dropped_share": round(max(dropped, 0.0), 4),
            "allowed_drop_share": SETTINGS.row_drop_share,
        },
    )


def _previous_row_count(context: AssetCheckExecutionContext, key: AssetKey) -> int | None:
    """Current rows as of the load before this run's, from its materialization metadata."""
    records = context.instance.fetch_materializations(key, limit=2).records
    earlier = [r for r in records if r.run_id != context.run.run_id]
    if not earlier:
        return None
    row_count = earlier[0].asset_materialization.metadata.get("dagster/row_count")
    return int(row_count.value) if row_count is not None else None


CHECKS: dict[str, Callable[..., AssetCheckResult]] = {
    PRIMARY_KEY: check_primary_key,
    STATUS_KNOWN: check_status_known,
    FINAL_WITHIN_VALIDITY: check_final_within_validity,
    NO_MASS_DELETION: check_no_mass_deletion,
}


@multi_asset_check(specs=SPECS, can_subset=True, pool=DUCKDB_POOL, name="messaging_checks")
def messaging_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
    """One connection for all checks selected in this run."""
    selected = sorted(context.selected_asset_check_keys, key=lambda k: k.to_user_string())
    try:
        with read_only() as con:
            tables = existing_tables(con)
            for check_key in selected:
                yield _evaluate(con, tables, check_key, context)
    except WarehouseMissing as missing:
        for check_key in selected:
            yield _not_loaded(check_key, str(missing))


def _evaluate(
    con: duckdb.DuckDBPyConnection,
    tables: set[str],
    check_key: AssetCheckKey,
    context: AssetCheckExecutionContext,
) -> AssetCheckResult:
    table = check_key.asset_key.path[-1]
    if table not in tables:
        return _not_loaded(check_key, f"{_qualified(table)} has no rows loaded yet.")
    return CHECKS[check_key.name](con, check_key, context)


def _not_loaded(check_key: AssetCheckKey, why: str) -> AssetCheckResult:
    # Nothing stored cannot break a rule; `sms` stays empty until someone sends.
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=True,
        description=why,
    )
