"""The messaging API as a dlt `rest_api` source: the seed's config, translated for dlt.

The seed's template placeholders (`{{ config['to'] }}`, `{{ stream_slice.requestId }}`) mean
nothing to dlt: it sends them to the API as literal text. Here they become plain values read from
dlt's config (`sources.messaging.*`) and a parent resource whose rows fill the message path.
Code fills only two gaps: the send guard (sending is billed) and which requestIds to look up.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import dlt
from dlt.common.configuration import configspec
from dlt.common.jsonpath import compile_path
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.sources.helpers.rest_client.auth import APIKeyAuth, AuthConfigBase
from dlt.sources.rest_api import rest_api_resources, rest_api_source
from requests import PreparedRequest

from messaging_assets.columnar import ArrowPages, ColumnReader
from messaging_assets.transport import (
    ResponseHook,
    api_session,
    check_response,
    record_missing_status,
    send_session,
)

log = logging.getLogger(__name__)

SOURCE_NAME = "messaging"
FINAL_STATUSES = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")
REFERENCE_RESOURCES = ("contacts", "phones", "registrations")

TEXT = {"data_type": "text"}
KEY = {"data_type": "text", "nullable": False}
INTEGER = {"data_type": "bigint"}
TIMESTAMP = {"data_type": "timestamp", "timezone": True}
# Prices come as decimal strings ("0.0450"); a negative price is a payout.
PRICE = {"data_type": "decimal", "precision": 18, "scale": 6}

MESSAGE_COLUMNS = {
    "requestId": KEY,
    "doneDate": TIMESTAMP,
    "errorCode": INTEGER,
    "errorReason": TEXT,
    "from": TEXT,
    "href": TEXT,
    "mccmnc": TEXT,
    "overallPrice": PRICE,
    "priceEffective": PRICE,
    "reference": TEXT,
    "sentDate": TIMESTAMP,
    "size": INTEGER,
    "status": TEXT,
    "submitDate": TIMESTAMP,
    "to": TEXT,
    "ttid": TEXT,
    # Not from the API: when this project last asked, and what it heard if there was no status.
    "checkedAt": TIMESTAMP,
    "lookupError": TEXT,
}
PART_COLUMNS = {
    "partId": TEXT,
    "currency": TEXT,
    "price": PRICE,
    "priceEffective": PRICE,
    "sentDate": TIMESTAMP,
    "doneDate": TIMESTAMP,
    "deliveryState": TEXT,
    "errorCode": INTEGER,
    "statusText": TEXT,
}
SMS_COLUMNS = {
    "requestId": KEY,
    "status": TEXT,
    "to": TEXT,
    "from": TEXT,
    "reference": TEXT,
    "submittedAt": TIMESTAMP,
}

# Contacts, phones and registrations come as full lists: scd2 retires a record that disappears
# upstream (sets `_dlt_valid_to`) instead of keeping it current forever.
FULL_LIST = {"disposition": "merge", "strategy": "scd2"}

RESOURCES: dict[str, dict[str, Any]] = {
    "sms": {
        "primary_key": "requestId",
        "columns": SMS_COLUMNS,
        "endpoint": {"path": "/messaging/v1/sms"},
    },
    "messages": {
        "primary_key": "requestId",
        "columns": MESSAGE_COLUMNS,
        "nested_hints": {"parts": {"columns": PART_COLUMNS}},
        "parallelized": True,
        "endpoint": {"path": "/messaging/v1/messages/{resources.message_ids_to_check.requestId}"},
    },
    "contacts": {
        "primary_key": "contactId",
        "write_disposition": FULL_LIST,
        "endpoint": {"path": "/byon/contacts/v1"},
    },
    "phones": {
        "primary_key": "phoneNumber",
        "write_disposition": FULL_LIST,
        "endpoint": {"path": "/byon/phonebook/v1/numbers"},
    },
    "registrations": {
        "primary_key": "requestId",
        "write_disposition": FULL_LIST,
        "endpoint": {"path": "/byon/provisioning/v1"},
    },
}

# Pages of these lists are read into arrow columns (columnar.py): per-record Python was most of a
# 200,000-contact load. Arrow columns skip dlt's type detection, so the fields it detects as
# timestamps in the dict path are named here. `phones` stays on dicts: its `capabilities` list is
# the child table `phones__capabilities`, which arrow would store as a JSON column.
COLUMNAR = {
    "contacts": {"timestamps": ("createdAt", "updatedAt")},
    "registrations": {"timestamps": ("createdAt", "updatedAt")},
}

# New tables and columns evolve (fields the API adds are kept); a value that cannot be coerced to
# its column's declared type fails the run instead of growing a `__v_text` variant column.
SCHEMA_CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}

RESOURCE_DEFAULTS: dict[str, Any] = {
    "write_disposition": "merge",
    # dlt's default for DuckDB (insert_values) is several times slower and hungrier (api-notes).
    "file_format": "parquet",
    "endpoint": {"data_selector": "data", "paginator": "single_page"},
}


@configspec
class MissingApiKey(AuthConfigBase):
    """Stands in for the key when none is configured, so that the code location still loads and
    a run fails at its first request, before anything is sent."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        raise MissingApiKeyError()


class MissingApiKeyError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "messaging: no API key configured. Set the SOURCES__MESSAGING__API_KEY environment "
            "variable, or api_key under [sources.messaging] in .dlt/secrets.toml "
            "(see .dlt/secrets.toml.example)."
        )


def _setting(key: str) -> Any:
    return dlt.config.get(f"sources.{SOURCE_NAME}.{key}")


def _named(columns: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # A fresh dict per column, carrying its name: dlt fills hints in place, so columns sharing
    # one dict (TEXT, PRICE) would overwrite each other, and nested hints require the name.
    return {column: {"name": column, **hint} for column, hint in columns.items()}


def _resource_config(name: str, not_found: ResponseHook | None = None) -> dict[str, Any]:
    """The resource's data, with the primary key and data selector users may override."""
    spec = copy.deepcopy(RESOURCES[name])
    default_key = spec["primary_key"]
    primary_key = configured_primary_key(name)
    columns = spec.get("columns", {})
    spec["primary_key"] = primary_key
    spec["columns"] = _named(
        {
            **columns,
            # Records may lack the seed's key when another one is configured.
            default_key: {**columns.get(default_key, TEXT), "nullable": True},
            primary_key: KEY,
        }
    )
    selector = _data_selector(name)
    # Compiled once here: dlt parses a string selector again for every response, and building
    # jsonpath's parser costs more than a status look-up itself (bench/proposals).
    spec["endpoint"]["data_selector"] = compile_path(selector)
    reader = None
    if name in COLUMNAR:
        keys = [column for column, hint in spec["columns"].items() if hint.get("nullable") is False]
        reader = ColumnReader(selector, keys, **COLUMNAR[name])
    spec["endpoint"]["response_actions"] = [
        check_response(
            name, selector, name in REFERENCE_RESOURCES, _api_key_header(), not_found, reader
        )
    ]
    if "nested_hints" in spec:
        spec["nested_hints"] = {
            table: {"columns": _named(hints["columns"])}
            for table, hints in spec["nested_hints"].items()
        }
    return {"name": name, **spec}


def configured_primary_key(name: str) -> str:
    """The resource's key as the API names it: SOURCES__MESSAGING__<NAME>__PRIMARY_KEY or the
    seed's default."""
    return _setting(f"{name}.primary_key") or RESOURCES[name]["primary_key"]


def _api_key_header() -> str:
    return _setting("api_key_header") or "api_key"


def _data_selector(name: str) -> str:
    return _setting(f"{name}.data_selector") or "data"


# The provider's requestIds are UUID-like. Anything else could step out of the status path
# (`../sms?to=...` is a billed send), so it is refused rather than sent.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
REQUEST_ID_FORM = "1 to 128 letters, digits, '-' or '_', starting with a letter or digit"
REQUEST_IDS_SETTING = "SOURCES__MESSAGING__MESSAGES__REQUEST_IDS"


class InvalidRequestIds(ValueError):
    """RequestIds that cannot be looked up, with where they came from."""


def refused_request_ids(ids: Sequence[str]) -> list[str]:
    return [rid for rid in ids if not REQUEST_ID.fullmatch(rid)]


def parse_request_ids(value: str | Sequence[str] | None, origin: str) -> list[str]:
    """RequestIds given as a JSON list or a comma-separated string, in order, without repeats.
    Raises InvalidRequestIds naming `origin` for malformed input or ids not of the accepted form.
    """
    if not value:
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError as error:
            raise InvalidRequestIds(
                f"messaging/messages: {origin} is not a JSON list of requestIds nor a "
                f"comma-separated list ({error})."
            ) from None
        if not isinstance(value, list):
            raise InvalidRequestIds(f"messaging/messages: {origin} must be a list of requestIds.")
    ids = list(dict.fromkeys(str(item).strip() for item in value if str(item).strip()))
    refused = refused_request_ids(ids)
    if refused:
        raise InvalidRequestIds(
            f"messaging/messages: {origin} holds {len(refused)} requestId(s) that are not of the "
            f"accepted form ({REQUEST_ID_FORM}): {', '.join(map(repr, refused[:5]))}. "
            "Nothing was looked up."
        )
    return ids


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def stored_rows(
    client: SqlClientBase[Any], table: str, columns: str, where: str = ""
) -> list[Sequence[Any]]:
    """Rows of a destination table, or none while the table does not exist yet."""
    try:
        name = client.make_qualified_table_name(table)
        rows = client.execute_sql(f"SELECT {columns} FROM {name}{where}")
    except DatabaseUndefinedRelation:
        return []
    return list(rows or ())


def message_ids_to_check(tracked: Sequence[str] | str | None, origin: str) -> DltResource:
    """Status look-ups: which requestIds `messages` asks about. It never touches the send endpoint.

    (a) sends stored in `sms`, (b) stored messages, (c) requestIds from config (sent by other
    systems); less those whose status is final or that the API no longer knows (404). Each id
    fills exactly one path segment: ids not of the accepted form are never asked about.
    """
    finals = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
    settled = f"CASE WHEN status IN ({finals}) OR lookup_error IS NOT NULL THEN 1 ELSE 0 END"

    @dlt.resource(selected=False)
    def message_ids_to_check() -> Iterator[list[dict[str, str]]]:
        # Parsed here, in the run: a mistake in the setting fails only status runs.
        configured = parse_request_ids(tracked, origin)
        # One connection for both reads: opening one resolves the destination's whole config.
        with dlt.current.pipeline().sql_client() as client:
            sent = stored_rows(client, "sms", "request_id")
            stored = stored_rows(client, "messages", f"request_id, {settled}")
        done = {rid for rid, is_settled in stored if is_settled}
        known = [*(rid for (rid,) in sent), *(rid for rid, _ in stored), *configured]
        due = [rid for rid in dict.fromkeys(known) if rid is not None and rid not in done]
        refused = refused_request_ids(due)
        if refused:
            log.warning(
                "messaging/messages: not looking up %d stored requestId(s) that are not of the "
                "accepted form (%s): %s",
                len(refused),
                REQUEST_ID_FORM,
                ", ".join(map(repr, refused[:5])),
            )
        yield [{"requestId": quote(rid, safe="")} for rid in due if rid not in refused]

    return message_ids_to_check()


def stamp_checked_at(message: dict[str, Any]) -> dict[str, Any]:
    message["checkedAt"] = _now()
    for part in message.get("parts") or ():
        # One older client spells the part's sentDate as sendDate.
        if "sendDate" in part:
            part.setdefault("sentDate", part.pop("sendDate"))
    return message


def send_guard(
    client: dict[str, Any], to: str | None, sender: str | None, text: str
) -> DltResource:
    """`sms` as a resource: one send when `to` and `from` are configured, none otherwise.

    The send is retried only when it certainly did not arrive (connection refused, 429): a
    timeout or a 5xx may have been billed, so it fails the run, naming the reference to check.
    """
    spec = _resource_config("sms")
    if not (to and sender):
        return dlt.resource(
            [],
            name="sms",
            primary_key=spec["primary_key"],
            columns=spec["columns"],
            write_disposition="merge",
        )
    reference = f"messaging-assets-{uuid.uuid4()}"
    params = {"to": to, "from": sender, "message": text, "reference": reference}
    spec["endpoint"]["params"] = params
    stored = {"to": to, "from": sender, "reference": reference}
    spec["processing_steps"] = [{"map": lambda sent: {**sent, **stored, "submittedAt": _now()}}]
    (resource,) = rest_api_resources(
        {
            "client": {**client, "session": send_session(reference)},
            "resource_defaults": RESOURCE_DEFAULTS,
            "resources": [spec],
        }
    )
    return resource


def messaging_source(
    *,
    sms_to: str | None = None,
    sms_from: str | None = None,
    sms_message: str | None = None,
    request_ids: Sequence[str] | str | None = None,
) -> DltSource:
    """All five resources, configured from dlt's config (`sources.messaging.*`, env vars
    `SOURCES__MESSAGING__*`); the keyword arguments (Dagster run config) take precedence."""
    api_key = dlt.secrets.get(f"sources.{SOURCE_NAME}.api_key")
    client = {
        "base_url": dlt.config[f"sources.{SOURCE_NAME}.base_url"],
        "auth": APIKeyAuth(name=_api_key_header(), api_key=api_key, location="header")
        if api_key
        else MissingApiKey(),
        "session": api_session(),
    }
    messages = _resource_config("messages", record_missing_status(_data_selector("messages")))
    messages["processing_steps"] = [{"map": stamp_checked_at}]
    if request_ids:
        tracked, origin = request_ids, "run config `request_ids`"
    else:
        tracked, origin = _setting("messages.request_ids"), REQUEST_IDS_SETTING
    reference = [_resource_config(name) for name in REFERENCE_RESOURCES]
    source = rest_api_source(
        {
            "client": client,
            "resource_defaults": RESOURCE_DEFAULTS,
            "resources": [
                send_guard(
                    client,
                    sms_to or _setting("sms.to"),
                    sms_from or _setting("sms.from"),
                    sms_message or _setting("sms.message") or "",
                ),
                message_ids_to_check(tracked, origin),
                messages,
                *reference,
            ],
        },
        name=SOURCE_NAME,
        section=SOURCE_NAME,
        schema_contract=SCHEMA_CONTRACT,
    )
    for spec in reference:
        if spec["name"] in COLUMNAR:
            source.resources[spec["name"]].add_step(ArrowPages(hinted=list(spec["columns"])))
    return source
