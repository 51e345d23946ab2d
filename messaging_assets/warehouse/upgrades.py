"""What a warehouse loaded by an earlier version of this project needs before this one loads.

Earlier versions typed `priceEffective` as a price (it is the date from which the price
applies), `errorCode` as a number (GSM codes are text), and keyed `sms` by requestId (a send the
API accepted without a body has none). Each step runs once, when it finds the old shape, and
loses no value: the old prices are kept in `price_effective_before_upgrade`, error codes become
their text.
"""

from __future__ import annotations

from messaging_assets.warehouse.connection import Connection

KEPT = "price_effective_before_upgrade"
MESSAGE_TABLES = ("messages", "messages__parts")


def upgrade(warehouse: Connection) -> list[str]:
    """Brings an earlier version's tables to this version's shape, and the copies dlt keeps in
    its staging dataset for merges; says what it changed."""
    with warehouse.staging():
        _upgrade(warehouse)
    return _upgrade(warehouse)


def _upgrade(warehouse: Connection) -> list[str]:
    found = warehouse.column_schemas([*MESSAGE_TABLES, "sms"])
    done = []
    for table in MESSAGE_TABLES:
        columns = found.get(table, {})
        name = warehouse.table(table)
        if columns.get("price_effective", {}).get("data_type") == "decimal" and KEPT not in columns:
            warehouse.execute(f"ALTER TABLE {name} RENAME COLUMN price_effective TO {KEPT}")
            done.append(f"{table}.price_effective (a price before) kept as {table}.{KEPT}")
        if columns.get("error_code", {}).get("data_type") == "bigint":
            warehouse.execute(f"ALTER TABLE {name} ALTER COLUMN error_code TYPE VARCHAR")
            done.append(f"{table}.error_code turned into text")
    if found.get("sms", {}).get("request_id", {}).get("nullable") is False:
        sms = warehouse.table("sms")
        warehouse.execute(f"ALTER TABLE {sms} ALTER COLUMN request_id DROP NOT NULL")
        done.append("sms.request_id may be empty (a send accepted without an answer body)")
    return done
