"""What a warehouse loaded by an earlier version of this project needs before this one loads.

Earlier versions typed `priceEffective` as a price (it is the date from which the price
applies), `errorCode` as a number (GSM codes are text), keyed `sms` by requestId (a send the
API accepted without a body has none), and let dlt's normalizer nest the parts of messages and
delivery reports, with ids of its own. Each step runs once, when it finds the old shape, and
loses no value: the old prices are kept in `price_effective_before_upgrade`, error codes become
their text, and the parts keep their rows under the ids the loader now gives them
(`source/row_ids.py`: a status's is its key, a part's its status's key, `_` and its place).
"""

from __future__ import annotations

from messaging_assets.warehouse.connection import Connection

KEPT = "price_effective_before_upgrade"
MESSAGE_TABLES = ("messages", "messages__parts")
# Tables whose parts the loader links itself (`source/status_tables.py`), with their keys.
LINKED = {"messages": "request_id", "delivery_reports": "report_id"}
# The load id column, which parts have had since they were linked by the loader.
LOAD_ID = "_dlt_load_id"


def upgrade(warehouse: Connection) -> list[str]:
    """Brings an earlier version's tables to this version's shape, and the copies dlt keeps in
    its staging dataset for merges; says what it changed."""
    with warehouse.staging():
        _upgrade(warehouse)
    return _upgrade(warehouse)


def _upgrade(warehouse: Connection) -> list[str]:
    tables = {*MESSAGE_TABLES, "sms", *LINKED, *map(_parts, LINKED)}
    found = warehouse.column_schemas(sorted(tables))
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
    for table, key in LINKED.items():
        parts = _parts(table)
        if table in found and parts in found and LOAD_ID not in found[parts]:
            _link(warehouse, table, key)
            done.append(f"{parts} linked to {table} by the ids of their keys")
    return done


def _parts(table: str) -> str:
    return f"{table}__parts"


def _link(warehouse: Connection, table: str, key: str) -> None:
    """The parts' ids, then their statuses' (a step cut short is taken up again: the parts of a
    status not yet renamed still point at it), then the load id column, which marks it done."""
    statuses, parts = warehouse.table(table), warehouse.table(_parts(table))
    warehouse.execute(
        f"UPDATE {parts} AS p SET _dlt_parent_id = s.{key}, _dlt_root_id = s.{key}, "
        f"_dlt_id = s.{key} || '_' || CAST(p._dlt_list_idx AS VARCHAR) "
        f"FROM {statuses} AS s WHERE p._dlt_parent_id = s._dlt_id"
    )
    warehouse.execute(f"UPDATE {statuses} SET _dlt_id = {key}")
    warehouse.execute(f"ALTER TABLE {parts} ADD COLUMN {LOAD_ID} VARCHAR")
