"""The floor: the same job with no framework, as fast as this machine does it.

`requests` fetches, `pyarrow` turns JSON into columns, DuckDB merges by delete-insert in one
transaction. Tables, column names and types match what the project's assets produce (snake_case,
`TIMESTAMP WITH TIME ZONE`, `DECIMAL(18,6)`, parts in `messages__parts` linked by `_dlt_parent_id`),
so the floor does the same work, minus the framework.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.json as pa_json
import requests
from requests.adapters import HTTPAdapter

_TEXT_MESSAGE_FIELDS = (
    "requestId", "doneDate", "errorCode", "errorReason", "from", "href", "mccmnc", "overallPrice",
    "priceEffective", "reference", "sentDate", "status", "submitDate", "to", "ttid", "checkedAt",
    "lookupError", "_dlt_id",
)  # fmt: skip
_TEXT_PART_FIELDS = (
    "partId", "currency", "price", "priceEffective", "sentDate", "doneDate", "deliveryState",
    "errorCode", "statusText", "_dlt_root_id", "_dlt_parent_id", "_dlt_id",
)  # fmt: skip
# Explicit schemas: a field missing from every record (lookupError) still gets its column.
MESSAGE_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _TEXT_MESSAGE_FIELDS] + [("size", pa.int64())]
)
PART_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _TEXT_PART_FIELDS] + [("_dlt_list_idx", pa.int64())]
)
FINAL_STATUSES = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")

CONTACTS_SELECT = """
SELECT * EXCLUDE ("contactId"), $load_id AS _dlt_load_id, "contactId" AS _dlt_id,
       "contactId" AS contact_id
FROM staged
"""

MESSAGES_DDL = """
CREATE TABLE IF NOT EXISTS messaging.messages (
    request_id VARCHAR NOT NULL, done_date TIMESTAMPTZ, error_code VARCHAR, error_reason VARCHAR,
    "from" VARCHAR, href VARCHAR, mccmnc VARCHAR, overall_price DECIMAL(18,6),
    price_effective TIMESTAMPTZ, reference VARCHAR, sent_date TIMESTAMPTZ, size BIGINT,
    status VARCHAR, submit_date TIMESTAMPTZ, "to" VARCHAR, ttid VARCHAR, checked_at TIMESTAMPTZ,
    lookup_error VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS messaging.messages__parts (
    part_id VARCHAR, currency VARCHAR, price DECIMAL(18,6), price_effective TIMESTAMPTZ,
    sent_date TIMESTAMPTZ, done_date TIMESTAMPTZ, delivery_state VARCHAR, error_code VARCHAR,
    status_text VARCHAR, _dlt_root_id VARCHAR NOT NULL, _dlt_parent_id VARCHAR NOT NULL,
    _dlt_list_idx BIGINT NOT NULL, _dlt_id VARCHAR NOT NULL);
"""
MESSAGES_SELECT = """
SELECT "requestId", "doneDate"::TIMESTAMPTZ, "errorCode", "errorReason", "from", href, mccmnc,
       "overallPrice"::DECIMAL(18,6), "priceEffective"::TIMESTAMPTZ, reference,
       "sentDate"::TIMESTAMPTZ, size, status, "submitDate"::TIMESTAMPTZ, "to", ttid,
       "checkedAt"::TIMESTAMPTZ, "lookupError", $load_id, "_dlt_id"
FROM staged_messages
"""
PARTS_SELECT = """
SELECT "partId", currency, price::DECIMAL(18,6), "priceEffective"::TIMESTAMPTZ,
       "sentDate"::TIMESTAMPTZ, "doneDate"::TIMESTAMPTZ, "deliveryState", "errorCode",
       "statusText", "_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"
FROM staged_parts
"""


def _connect(database: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(database)
    con.execute("CREATE SCHEMA IF NOT EXISTS messaging")
    return con


def _load_id() -> str:
    return str(time.time())


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def load_contacts(base_url: str, api_key: str, database: str, shape: str = "data") -> int:
    """One GET of the full list, parsed straight into columns (nested objects flattened into
    `parent__child` columns), merged by delete-insert."""
    header = "apikey" if shape == "provider" else "api_key"
    response = requests.get(f"{base_url}/byon/contacts/v1", headers={header: api_key})
    response.raise_for_status()
    # The answer as one JSON value (an object, or the provider's array of envelopes): a block
    # larger than it makes pyarrow parse it in one go, in C++.
    body = b'{"answer":' + response.content + b"}"
    table = pa_json.read_json(
        io.BytesIO(body), read_options=pa_json.ReadOptions(block_size=len(body) + 1)
    )
    answer = table.column("answer").chunk(0)
    # The provider's envelopes hold the records under `contacts`, the neutral shape under `data`.
    records = answer.flatten().field("contacts") if shape == "provider" else answer.field("data")
    staged = pa.Table.from_struct_array(records.flatten())
    while any(pa.types.is_struct(field.type) for field in staged.schema):
        staged = staged.flatten()
    staged = staged.rename_columns(
        [
            "__".join(_snake(part) for part in name.split(".")) if name != "contactId" else name
            for name in staged.column_names
        ]
    )
    con = _connect(database)
    try:
        con.register("staged", staged)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS messaging.contacts AS {CONTACTS_SELECT} LIMIT 0",
            {"load_id": _load_id()},
        )
        con.execute("BEGIN")
        con.execute(
            'DELETE FROM messaging.contacts WHERE contact_id IN (SELECT "contactId" FROM staged)'
        )
        con.execute(
            f"INSERT INTO messaging.contacts BY NAME {CONTACTS_SELECT}", {"load_id": _load_id()}
        )
        con.execute("COMMIT")
    finally:
        con.close()
    return staged.num_rows


def _settled(con: duckdb.DuckDBPyConnection) -> set[str]:
    finals = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
    rows = con.execute(
        "SELECT request_id FROM messaging.messages "
        f"WHERE status IN ({finals}) OR lookup_error IS NOT NULL"
    ).fetchall()
    return {row[0] for row in rows}


def load_messages(
    base_url: str, api_key: str, database: str, request_ids: Sequence[str], workers: int
) -> int:
    """One GET per requestId on a bounded thread pool over one session, then one merge.

    Like the asset, it skips messages already stored in a final state and stamps `checkedAt`.
    """
    con = _connect(database)
    try:
        con.execute(MESSAGES_DDL)
        settled = _settled(con)
        todo = [rid for rid in dict.fromkeys(request_ids) if rid not in settled]
        session = requests.Session()
        # One pooled connection per worker, as many as there are requests in flight.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=workers)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["api_key"] = api_key
        prefix = f"{base_url}/messaging/v1/messages/"

        def fetch(request_id: str) -> dict[str, Any]:
            response = session.get(prefix + request_id)
            checked_at = datetime.now(timezone.utc).isoformat()
            if response.status_code == 404:
                missing = {"requestId": request_id, "lookupError": "NOT_FOUND"}
                return {**missing, "checkedAt": checked_at}
            response.raise_for_status()
            message: dict[str, Any] = json.loads(response.content)["data"]
            message["checkedAt"] = checked_at
            # The operator id is text, though some answers send it as a number.
            if message.get("ttid") is not None:
                message["ttid"] = str(message["ttid"])
            return message

        with ThreadPoolExecutor(max_workers=workers) as pool:
            messages = list(pool.map(fetch, todo))
        if not messages:
            return 0
        parts: list[dict[str, Any]] = []
        for message in messages:
            row_id = uuid.uuid4().hex
            message["_dlt_id"] = row_id
            for index, part in enumerate(message.pop("parts", None) or ()):
                if "sendDate" in part:
                    part.setdefault("sentDate", part.pop("sendDate"))
                part.update(
                    _dlt_root_id=row_id,
                    _dlt_parent_id=row_id,
                    _dlt_list_idx=index,
                    _dlt_id=uuid.uuid4().hex,
                )
                parts.append(part)
        staged_messages = pa.Table.from_pylist(messages, schema=MESSAGE_SCHEMA)
        staged_parts = pa.Table.from_pylist(parts, schema=PART_SCHEMA)
        con.register("staged_messages", staged_messages)
        con.register("staged_parts", staged_parts)
        con.execute("BEGIN")
        # Parts go with their message: delete the old message's parts, then the message.
        con.execute(
            "DELETE FROM messaging.messages__parts WHERE _dlt_parent_id IN (SELECT _dlt_id FROM "
            'messaging.messages WHERE request_id IN (SELECT "requestId" FROM staged_messages))'
        )
        con.execute(
            "DELETE FROM messaging.messages WHERE request_id IN "
            '(SELECT "requestId" FROM staged_messages)'
        )
        load_id = {"load_id": _load_id()}
        con.execute(f"INSERT INTO messaging.messages {MESSAGES_SELECT}", load_id)
        if staged_parts.num_rows:
            con.execute(f"INSERT INTO messaging.messages__parts {PARTS_SELECT}")
        con.execute("COMMIT")
        return staged_messages.num_rows
    finally:
        con.close()


# A delivery report's status object as DuckDB's json_transform reads it: every field as text but
# `size`, the parts a list of objects.
_PART_JSON = {
    name: "VARCHAR"
    for name in (
        "partId", "currency", "price", "priceEffective", "sentDate", "doneDate", "deliveryState",
        "errorCode", "statusText",
    )
}  # fmt: skip
_REPORT_JSON = {
    **{
        name: "VARCHAR"
        for name in (
            "requestId", "status", "reference", "from", "to", "href", "submitDate", "sentDate",
            "doneDate", "priceEffective", "errorCode", "errorReason", "overallPrice", "mccmnc",
            "ttid",
        )
    },
    "size": "BIGINT",
    "parts": [_PART_JSON],
}  # fmt: skip
REPORTS_DDL = """
CREATE TABLE IF NOT EXISTS messaging.delivery_reports (
    report_id VARCHAR NOT NULL, received_at TIMESTAMPTZ, landed_file VARCHAR, landed_line BIGINT,
    request_id VARCHAR, status VARCHAR, submit_date TIMESTAMPTZ, sent_date TIMESTAMPTZ,
    done_date TIMESTAMPTZ, price_effective TIMESTAMPTZ, overall_price DECIMAL(18,6),
    error_code VARCHAR, error_reason VARCHAR, size BIGINT, mccmnc VARCHAR, ttid VARCHAR,
    "from" VARCHAR, "to" VARCHAR, href VARCHAR, reference VARCHAR, body VARCHAR,
    _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS messaging.delivery_reports__parts AS
    SELECT * FROM messaging.messages__parts LIMIT 0;
"""
# The columns of a report's status object, typed as `messages` types them (`s`: the object).
_STATUS_COLUMNS = """
s.status, s."submitDate"::TIMESTAMPTZ, s."sentDate"::TIMESTAMPTZ, s."doneDate"::TIMESTAMPTZ,
s."priceEffective"::TIMESTAMPTZ, s."overallPrice"::DECIMAL(18,6), s."errorCode", s."errorReason",
s.size, s.mccmnc, s.ttid, s."from", s."to", s.href, s.reference
"""
_PARTS_OF = """
SELECT p."partId", p.currency, p.price::DECIMAL(18,6), p."priceEffective"::TIMESTAMPTZ,
       p."sentDate"::TIMESTAMPTZ, p."doneDate"::TIMESTAMPTZ, p."deliveryState", p."errorCode",
       p."statusText", _dlt_id, _dlt_id, idx - 1, md5(_dlt_id || idx)
FROM (SELECT _dlt_id, unnest(s.parts) AS p, generate_subscripts(s.parts, 1) AS idx FROM {table})
"""


def load_pushed(landing: str, database: str) -> int:
    """The landed delivery reports, read and merged by DuckDB alone in one transaction: each
    report once by its key (md5 of its body, minified), then each message's best report (rank,
    then the latest received) into `messages` unless the stored status outranks it."""
    con = _connect(database)
    rank = (
        f"CASE WHEN {{0}} IN ({', '.join(repr(s) for s in FINAL_STATUSES)}) THEN 2 "
        "WHEN {0} = 'BUFFERED' THEN 1 WHEN {0} = 'ACCEPTED' THEN 0 ELSE -1 END"
    )
    try:
        con.execute(MESSAGES_DDL)
        # The column a report's row has in `messages`, and a look-up's has not.
        con.execute(
            "ALTER TABLE messaging.messages ADD COLUMN IF NOT EXISTS reported_at TIMESTAMPTZ"
        )
        con.execute(REPORTS_DDL)
        load_id = _load_id()
        con.execute("BEGIN")
        files = f"{landing}/delivery_reports/*.jsonl"
        con.execute(
            'CREATE TEMP TABLE fresh AS SELECT *, md5(s."requestId" || report_id) AS _dlt_id '
            "FROM (SELECT received_at::TIMESTAMPTZ AS received_at, filename AS landed_file, "
            "landed_line, body, md5(json(body)) AS report_id, "
            f"json_transform(body, '{json.dumps(_REPORT_JSON)}') AS s "
            "FROM (SELECT *, row_number() OVER (PARTITION BY filename) AS landed_line "
            f"FROM read_json('{files}', format='newline_delimited', filename=true, "
            "columns={received_at: 'VARCHAR', readable: 'BOOLEAN', body: 'VARCHAR'})) "
            "WHERE readable) "
            "WHERE report_id NOT IN (SELECT report_id FROM messaging.delivery_reports) "
            "QUALIFY row_number() OVER (PARTITION BY report_id ORDER BY received_at) = 1"
        )
        con.execute(
            "INSERT INTO messaging.delivery_reports SELECT report_id, received_at, landed_file, "
            f'landed_line, s."requestId", {_STATUS_COLUMNS}, body, $1, _dlt_id FROM fresh',
            [load_id],
        )
        con.execute(
            "INSERT INTO messaging.delivery_reports__parts " + _PARTS_OF.format(table="fresh")
        )
        con.execute(
            "CREATE TEMP TABLE best AS SELECT f.* FROM fresh f "
            'LEFT JOIN messaging.messages m ON m.request_id = f.s."requestId" '
            f"WHERE {rank.format('f.s.status')} >= {rank.format('m.status')} "
            'QUALIFY row_number() OVER (PARTITION BY f.s."requestId" ORDER BY '
            f"{rank.format('f.s.status')} DESC, f.received_at DESC, f.report_id DESC) = 1"
        )
        con.execute(
            "DELETE FROM messaging.messages__parts WHERE _dlt_parent_id IN (SELECT _dlt_id FROM "
            'messaging.messages WHERE request_id IN (SELECT s."requestId" FROM best))'
        )
        con.execute(
            'DELETE FROM messaging.messages WHERE request_id IN (SELECT s."requestId" FROM best)'
        )
        con.execute(
            'INSERT INTO messaging.messages BY NAME SELECT s."requestId" AS request_id, '
            's.status, s."submitDate"::TIMESTAMPTZ AS submit_date, '
            's."sentDate"::TIMESTAMPTZ AS sent_date, s."doneDate"::TIMESTAMPTZ AS done_date, '
            's."priceEffective"::TIMESTAMPTZ AS price_effective, '
            's."overallPrice"::DECIMAL(18,6) AS overall_price, s."errorCode" AS error_code, '
            's."errorReason" AS error_reason, s.size, s.mccmnc, s.ttid, s."from", s."to", '
            "s.href, s.reference, received_at AS reported_at, $1 AS _dlt_load_id, _dlt_id "
            "FROM best",
            [load_id],
        )
        con.execute("INSERT INTO messaging.messages__parts " + _PARTS_OF.format(table="best"))
        (rows,) = con.execute("SELECT count(*) FROM fresh").fetchone()
        con.execute("COMMIT")
        return rows
    finally:
        con.close()
