"""Asset checks on every table loaded from the API, derived from the registry. They run in the
same run as their asset, after it; their step is in the writers' pool, so no other run writes
meanwhile."""

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

from messaging_assets.defs.automation import AUTOMATION
from messaging_assets.defs.status_plan import pending_messages
from messaging_assets.defs.translator import asset_key
from messaging_assets.defs.writers import WRITER_POOL, WritersPool
from messaging_assets.registry import (
    BY_NAME,
    ENDPOINTS,
    FINAL_STATUSES,
    OPT_OUTS,
    PENDING_STATUSES,
    UNREADABLE_TABLE,
    Endpoint,
)
from messaging_assets.settings import resource_settings, variable
from messaging_assets.source.opt_outs import masked
from messaging_assets.warehouse import sql, type_changes
from messaging_assets.warehouse.connection import Connection, connect

SAMPLE = 5
NAMING = NamingConvention()

PRIMARY_KEY = "primary_key_unique_not_null"
VALUES_KEEP_TYPES = "values_keep_their_types"
STATUS_KNOWN = "status_known"
FINAL_WITHIN_VALIDITY = "final_within_validity"
NO_UNREADABLE = "no_recent_unreadable_events"
NO_MESSAGES_TO_OPTED_OUT = "no_messages_to_opted_out_numbers"


def _specs(endpoint: Endpoint) -> Iterator[AssetCheckSpec]:
    history = " among current rows (scd2)" if endpoint.history == "scd2" else ""
    yield AssetCheckSpec(
        PRIMARY_KEY,
        asset=asset_key(endpoint),
        description=f"The primary key is unique and never null{history}.",
    )
    yield AssetCheckSpec(
        VALUES_KEEP_TYPES,
        asset=asset_key(endpoint),
        description="Every field keeps its type and shape in current rows. A value of another "
        "type is kept beside its column in `<column>__v_<type>`, an object where a scalar was in "
        "`<column>__<field>` columns, a list in a child table: this check names the table, the "
        "field and the change (a warning where an undeclared field changed shape throughout).",
    )
    if endpoint.kind == "status":
        yield AssetCheckSpec(
            STATUS_KNOWN,
            asset=asset_key(endpoint),
            description=f"Every status is one of {', '.join(PENDING_STATUSES + FINAL_STATUSES)}, "
            "or null with a lookup_error (the provider no longer knows the message).",
        )
        yield AssetCheckSpec(
            FINAL_WITHIN_VALIDITY,
            asset=asset_key(endpoint),
            description="Warns about messages still not final past their validity plus a "
            "margin: the status sensor no longer polls them.",
        )
    if endpoint.kind == "pushed":
        yield AssetCheckSpec(
            NO_UNREADABLE,
            asset=asset_key(endpoint),
            description="Fails while an event of this endpoint that could not be read arrived "
            "within the last MESSAGING__AUTOMATION__UNREADABLE_WINDOW_DAYS "
            f"({AUTOMATION.unreadable_window_days:g} days): it is kept, as it came and with why, "
            f"in `{UNREADABLE_TABLE}`. Says how many, and where the latest are (file:line).",
        )
    if endpoint == OPT_OUTS:
        yield AssetCheckSpec(
            NO_MESSAGES_TO_OPTED_OUT,
            asset=asset_key(endpoint),
            # Also run after the reports: they are loaded in the same runs (pushed_data_job).
            additional_deps=[asset_key(BY_NAME["delivery_reports"])],
            description="Fails when a delivery report shows a message submitted to a number "
            "after it opted out (and before it opted back in), by any sender using the account, "
            "other than sends made with `send_to_opted_out`. Says how many, to how many "
            "numbers, which sender ids, and a sample with the numbers masked.",
        )


SPECS = [spec for endpoint in ENDPOINTS for spec in _specs(endpoint)]


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


def check_primary_key(warehouse: Connection, endpoint: Endpoint) -> AssetCheckResult:
    check_key = AssetCheckKey(asset_key(endpoint), PRIMARY_KEY)
    field = resource_settings(endpoint.name).primary_key or endpoint.key
    key = NAMING.normalize_identifier(field)
    columns = warehouse.columns([endpoint.name])[endpoint.name]
    if key not in columns:
        setting = variable(("sources", "messaging", endpoint.name), "primary_key")
        said = f"no key: the records carry no `{field}`; choose one with {setting}"
        return _result(check_key, True, description=said, primary_key=said)
    table = warehouse.table(endpoint.name)
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


def check_values_keep_their_types(warehouse: Connection, endpoint: Endpoint) -> AssetCheckResult:
    key = NAMING.normalize_identifier(resource_settings(endpoint.name).primary_key or endpoint.key)
    declared = {
        NAMING.normalize_path(table): {NAMING.normalize_path(name) for name in hints}
        for table, hints in endpoint.tables().items()
    }
    found = type_changes.findings(warehouse, endpoint.name, key, declared)
    return _result(
        AssetCheckKey(asset_key(endpoint), VALUES_KEEP_TYPES),
        not found,
        AssetCheckSeverity.ERROR
        if any(finding.error for finding in found)
        else AssetCheckSeverity.WARN,
        "; ".join(finding.text for finding in found) or None,
        changed_fields=len(found),
        details="; ".join(finding.text for finding in found),
    )


def check_status_known(warehouse: Connection, endpoint: Endpoint) -> AssetCheckResult:
    unknown = warehouse.rows(
        f"SELECT coalesce(status, '<null>'), count(*) FROM {warehouse.table(endpoint.name)} "
        f"WHERE (status IS NULL AND lookup_error IS NULL) OR status NOT IN {sql.KNOWN} "
        "GROUP BY status ORDER BY 2 DESC"
    )
    return _result(
        AssetCheckKey(asset_key(endpoint), STATUS_KNOWN),
        not unknown,
        unknown_statuses=", ".join(f"{status} ({n})" for status, n in unknown),
        rows_with_unknown_status=sum(int(n) for _, n in unknown),
    )


def check_final_within_validity(warehouse: Connection, endpoint: Endpoint) -> AssetCheckResult:
    now = datetime.now(timezone.utc)
    overdue = [
        message
        for message in pending_messages(warehouse)
        if message.submitted_at and now - message.submitted_at > AUTOMATION.give_up_after
    ]
    return _result(
        AssetCheckKey(asset_key(endpoint), FINAL_WITHIN_VALIDITY),
        not overdue,
        AssetCheckSeverity.WARN,
        overdue_messages=len(overdue),
        overdue_sample=", ".join(message.request_id for message in overdue[:SAMPLE]),
        validity_plus_margin_hours=AUTOMATION.give_up_after.total_seconds() / 3600,
    )


def check_no_recent_unreadable_events(
    warehouse: Connection, endpoint: Endpoint
) -> AssetCheckResult:
    check_key = AssetCheckKey(asset_key(endpoint), NO_UNREADABLE)
    days = AUTOMATION.unreadable_window_days
    if not warehouse.has_table(UNREADABLE_TABLE):
        return _result(check_key, True, unreadable_events=0, window_days=days)
    table = warehouse.table(UNREADABLE_TABLE)
    recent = "endpoint = %s AND received_at >= %s"
    since = datetime.now(timezone.utc) - AUTOMATION.unreadable_window
    count = int(
        warehouse.scalar(f"SELECT count(*) FROM {table} WHERE {recent}", endpoint.name, since)
    )
    if not count:
        return _result(check_key, True, unreadable_events=0, window_days=days)
    sample = warehouse.rows(
        f"SELECT landed_file, landed_line, problem FROM {table} WHERE {recent} "
        f"ORDER BY received_at DESC, landed_file, landed_line LIMIT {SAMPLE}",
        endpoint.name,
        since,
    )
    where = [f"{file}:{line} ({problem})" for file, line, problem in sample]
    return _result(
        check_key,
        False,
        description=f"{count} {endpoint.name} event(s) received in the last {days:g} day(s) "
        f"could not be read, the latest at {where[0]}; they are in "
        f"{table} (landed_file, landed_line, body).",
        unreadable_events=count,
        endpoint=endpoint.name,
        sample="; ".join(where),
        window_days=days,
    )


def _digits(column: str) -> str:
    """A number as its digits without leading zeros, in SQL: how a report's `to`, written as the
    sender wrote it, meets an E.164 number of `opt_outs` (`0049…`, `49…` and `+49…` alike)."""
    return f"ltrim(regexp_replace({column}, '[^0-9]', '', 'g'), '0')"


def check_no_messages_to_opted_out_numbers(
    warehouse: Connection, endpoint: Endpoint
) -> AssetCheckResult:
    check_key = AssetCheckKey(asset_key(endpoint), NO_MESSAGES_TO_OPTED_OUT)
    tables = warehouse.columns(["delivery_reports", "sms"])
    if "delivery_reports" not in tables:
        return _result(check_key, True, description="No delivery reports loaded yet.", messages=0)
    to, sender = warehouse.column("to"), warehouse.column("from")
    # Each opt-out version holds from its decision until the number's next decision, if any.
    windows = (
        f"SELECT phone_number, decided_at, LEAD(decided_at) OVER (PARTITION BY phone_number "
        f"ORDER BY decided_at, _dlt_valid_from) AS until, opted_out "
        f"FROM {warehouse.table(endpoint.name)}"
    )
    overridden = ""
    if "opt_out_override" in tables.get("sms", {}):
        overridden = (
            f"AND r.request_id NOT IN (SELECT request_id FROM {warehouse.table('sms')} "
            "WHERE opt_out_override IS NOT NULL AND request_id IS NOT NULL)"
        )
    found = warehouse.rows(
        f"SELECT DISTINCT r.request_id, r.{sender}, w.phone_number, r.submit_date "
        f"FROM {warehouse.table('delivery_reports')} r JOIN ({windows}) w "
        f"ON {_digits('r.' + to)} = {_digits('w.phone_number')} "
        f"WHERE w.opted_out AND {_digits('w.phone_number')} <> '' "
        "AND r.submit_date > w.decided_at AND (w.until IS NULL OR r.submit_date < w.until) "
        f"{overridden} ORDER BY r.submit_date DESC, r.request_id"
    )
    messages = {request_id for request_id, *_ in found}
    if not messages:
        return _result(check_key, True, messages=0)
    numbers = sorted({number for _, _, number, _ in found})
    senders = sorted({str(sent_by) for _, sent_by, _, _ in found})
    sample = [
        f"{request_id} from {sent_by} to {masked(number)} at {submitted.isoformat()}"
        for request_id, sent_by, number, submitted in found[:SAMPLE]
    ]
    return _result(
        check_key,
        False,
        description=f"{len(messages)} message(s) were submitted to {len(numbers)} number(s) "
        f"after they opted out, by sender id(s) {', '.join(senders)}; the latest: "
        f"{'; '.join(sample)}.",
        messages=len(messages),
        numbers=len(numbers),
        sender_ids=", ".join(senders),
        sample="; ".join(sample),
    )


CHECKS: dict[str, Callable[[Connection, Endpoint], AssetCheckResult]] = {
    PRIMARY_KEY: check_primary_key,
    VALUES_KEEP_TYPES: check_values_keep_their_types,
    STATUS_KNOWN: check_status_known,
    FINAL_WITHIN_VALIDITY: check_final_within_validity,
    NO_UNREADABLE: check_no_recent_unreadable_events,
    NO_MESSAGES_TO_OPTED_OUT: check_no_messages_to_opted_out_numbers,
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
            endpoint = BY_NAME[check_key.asset_key.path[-1]]
            if endpoint.name not in loaded and check_key.name != NO_UNREADABLE:
                # Nothing stored cannot break a rule; `sms` stays empty until someone sends.
                # (Unreadable events are stored beside the table, which they may precede.)
                yield _result(
                    check_key,
                    True,
                    description=f"{warehouse.table(endpoint.name)} has no rows loaded yet.",
                )
            else:
                yield CHECKS[check_key.name](warehouse, endpoint)
