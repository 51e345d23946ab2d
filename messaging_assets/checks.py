"""Asset checks on every table loaded from the API, derived from the registry. They run in the
same run as their asset, after it; their step is in the writers' pool, so no other run writes
meanwhile."""

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    multi_asset_check,
)
from dlt.common.normalizers.naming.snake_case import NamingConvention

from messaging_assets import sql
from messaging_assets.automation import AUTOMATION
from messaging_assets.polling import pending_messages
from messaging_assets.registry import BY_NAME, FINAL_STATUSES, PENDING_STATUSES, RESOURCES, Resource
from messaging_assets.settings import resource_settings, variable
from messaging_assets.warehouse import Connection, connect
from messaging_assets.writers import WRITER_POOL, WritersPool

SAMPLE = 5
NAMING = NamingConvention()
# dlt keeps a value that does not fit its column's type in a column named `<column>__v_<type>`.
VARIANT = re.compile(r"^(?P<column>.+)__v_(?P<type>[a-z0-9_]+)$")

PRIMARY_KEY = "primary_key_unique_not_null"
VALUES_FIT = "values_fit_declared_types"
STATUS_KNOWN = "status_known"
FINAL_WITHIN_VALIDITY = "final_within_validity"


def _specs(resource: Resource) -> Iterator[AssetCheckSpec]:
    history = " among current rows (scd2)" if resource.history == "scd2" else ""
    yield AssetCheckSpec(
        PRIMARY_KEY,
        asset=resource.asset_key,
        description=f"The primary key is unique and never null{history}.",
    )
    yield AssetCheckSpec(
        VALUES_FIT,
        asset=resource.asset_key,
        description="Every value fits its column's declared type: one that did not is kept "
        "aside in a `<column>__v_<type>` column, and this check names it.",
    )
    if resource.kind == "status":
        yield AssetCheckSpec(
            STATUS_KNOWN,
            asset=resource.asset_key,
            description=f"Every status is one of {', '.join(PENDING_STATUSES + FINAL_STATUSES)}, "
            "or null with a lookup_error (the provider no longer knows the message).",
        )
        yield AssetCheckSpec(
            FINAL_WITHIN_VALIDITY,
            asset=resource.asset_key,
            description="Warns about messages still not final past their validity plus a "
            "margin: the status sensor no longer polls them.",
        )


SPECS = [spec for resource in RESOURCES for spec in _specs(resource)]


def _result(
    check_key: AssetCheckKey,
    passed: bool,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    description: str | None = None,
    **metadata: object,
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=passed,
        severity=severity,
        description=description,
        metadata=metadata,
    )


def check_primary_key(warehouse: Connection, resource: Resource) -> AssetCheckResult:
    check_key = AssetCheckKey(resource.asset_key, PRIMARY_KEY)
    field = resource_settings(resource.name).primary_key or resource.key
    key = NAMING.normalize_identifier(field)
    columns = warehouse.columns([resource.name])[resource.name]
    if key not in columns:
        setting = variable(("sources", "messaging", resource.name), "primary_key")
        said = f"no key: the records carry no `{field}`; choose one with {setting}"
        return _result(check_key, True, description=said, primary_key=said)
    table = warehouse.table(resource.name)
    current = sql.current_rows(sql.VALID_TO in columns)
    nulls = warehouse.scalar(f"SELECT count(*) FROM {table} WHERE {current} AND {key} IS NULL")
    duplicates = warehouse.rows(
        f"SELECT {key}, count(*) FROM {table} WHERE {current} AND {key} IS NOT NULL "
        f"GROUP BY {key} HAVING count(*) > 1 ORDER BY count(*) DESC, {key}"
    )
    return _result(
        check_key,
        not nulls and not duplicates,
        primary_key=key,
        null_keys=int(nulls),
        duplicated_keys=len(duplicates),
        duplicated_sample=", ".join(str(row[0]) for row in duplicates[:SAMPLE]),
    )


def check_values_fit(warehouse: Connection, resource: Resource) -> AssetCheckResult:
    tables = [resource.name, *(f"{resource.name}__{field}" for field in resource.nested)]
    key = NAMING.normalize_identifier(resource_settings(resource.name).primary_key or resource.key)
    misfits = []
    for table, columns in warehouse.columns(tables).items():
        for column in sorted(columns):
            variant = VARIANT.match(column)
            if not variant:
                continue
            sample_key = key if key in columns else "_dlt_id"
            rows = warehouse.rows(
                f"SELECT {sample_key} FROM {warehouse.table(table)} WHERE {column} IS NOT NULL "
                f"ORDER BY 1 LIMIT {SAMPLE}"
            )
            if rows:
                misfits.append(
                    f"{table}.{variant['column']} received {variant['type']} values (kept in "
                    f"{column}), e.g. {sample_key} {', '.join(str(row[0]) for row in rows)}"
                )
    return _result(
        AssetCheckKey(resource.asset_key, VALUES_FIT),
        not misfits,
        misfits=len(misfits),
        details="; ".join(misfits),
    )


def check_status_known(warehouse: Connection, resource: Resource) -> AssetCheckResult:
    unknown = warehouse.rows(
        f"SELECT coalesce(status, '<null>'), count(*) FROM {warehouse.table(resource.name)} "
        f"WHERE (status IS NULL AND lookup_error IS NULL) OR status NOT IN {sql.KNOWN} "
        "GROUP BY status ORDER BY 2 DESC"
    )
    return _result(
        AssetCheckKey(resource.asset_key, STATUS_KNOWN),
        not unknown,
        unknown_statuses=", ".join(f"{status} ({n})" for status, n in unknown),
        rows_with_unknown_status=sum(int(n) for _, n in unknown),
    )


def check_final_within_validity(warehouse: Connection, resource: Resource) -> AssetCheckResult:
    now = datetime.now(timezone.utc)
    overdue = [
        message
        for message in pending_messages(warehouse)
        if message.submitted_at and now - message.submitted_at > AUTOMATION.give_up_after
    ]
    return _result(
        AssetCheckKey(resource.asset_key, FINAL_WITHIN_VALIDITY),
        not overdue,
        AssetCheckSeverity.WARN,
        overdue_messages=len(overdue),
        overdue_sample=", ".join(message.request_id for message in overdue[:SAMPLE]),
        validity_plus_margin_hours=AUTOMATION.give_up_after.total_seconds() / 3600,
    )


CHECKS: dict[str, Callable[[Connection, Resource], AssetCheckResult]] = {
    PRIMARY_KEY: check_primary_key,
    VALUES_FIT: check_values_fit,
    STATUS_KNOWN: check_status_known,
    FINAL_WITHIN_VALIDITY: check_final_within_validity,
}


@multi_asset_check(specs=SPECS, can_subset=True, pool=WRITER_POOL, name="messaging_checks")
def messaging_checks(
    context: AssetCheckExecutionContext, writers: WritersPool
) -> Iterator[AssetCheckResult]:
    """One connection for all checks selected in this run."""
    selected = sorted(context.selected_asset_check_keys, key=lambda k: k.to_user_string())
    with writers.turn(context), connect() as warehouse:
        loaded = warehouse.columns(BY_NAME)
        for check_key in selected:
            resource = BY_NAME[check_key.asset_key.path[-1]]
            if resource.name not in loaded:
                # Nothing stored cannot break a rule; `sms` stays empty until someone sends.
                yield _result(
                    check_key,
                    True,
                    description=f"{warehouse.table(resource.name)} has no rows loaded yet.",
                )
            else:
                yield CHECKS[check_key.name](warehouse, resource)
