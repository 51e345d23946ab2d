"""Column hints: the type every documented field lands as, in both API shapes.

Declared up front, so that a column that is null in a whole load still exists with its type, and
a value that does not fit its type is kept aside (dlt's variant column) instead of changing the
column. Names are the API's (camelCase); dlt names the columns in snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Hint = Mapping[str, Any]

TEXT: Hint = {"data_type": "text"}
BIGINT: Hint = {"data_type": "bigint"}
# The provider writes offsets without a colon (`+0200`); dlt parses them and keeps the instant.
# No precision, stated: dlt keeps a column's earlier hints, and `priceEffective`, a price in
# earlier versions, would otherwise keep the price's precision 18, which PostgreSQL refuses for a
# timestamp (see upgrades.py).
TIMESTAMP: Hint = {"data_type": "timestamp", "timezone": True, "precision": None}
# Prices come as decimal text ("0.0450"); a negative price is a payout.
DECIMAL: Hint = {"data_type": "decimal", "precision": 18, "scale": 6}

MESSAGE: Mapping[str, Hint] = {
    "requestId": TEXT,
    "status": TEXT,
    "submitDate": TIMESTAMP,
    "sentDate": TIMESTAMP,
    "doneDate": TIMESTAMP,
    # The date from which the price applies, not a price.
    "priceEffective": TIMESTAMP,
    "overallPrice": DECIMAL,
    # GSM error codes are text: some carry leading zeros or letters.
    "errorCode": TEXT,
    "errorReason": TEXT,
    "size": BIGINT,
    "mccmnc": TEXT,
    # The operator id: text, though the provider's own example sends an integer.
    "ttid": TEXT,
    "from": TEXT,
    "to": TEXT,
    "href": TEXT,
    "reference": TEXT,
    # Not from the API: when this project last asked, and what it heard if there was no status.
    "checkedAt": TIMESTAMP,
    "lookupError": TEXT,
}

PART: Mapping[str, Hint] = {
    "partId": TEXT,
    "currency": TEXT,
    "price": DECIMAL,
    "priceEffective": TIMESTAMP,
    "sentDate": TIMESTAMP,
    "doneDate": TIMESTAMP,
    "deliveryState": TEXT,
    "errorCode": TEXT,
    "statusText": TEXT,
}

SEND: Mapping[str, Hint] = {
    # Generated here for every send before it leaves: the one id every send has.
    "reference": TEXT,
    "requestId": TEXT,
    "status": TEXT,
    "to": TEXT,
    "from": TEXT,
    "submitDate": TIMESTAMP,
    # This project's clock when the request left.
    "submittedAt": TIMESTAMP,
    # accepted, or unknown when the answer never came (the send may have been billed).
    "outcome": TEXT,
    "note": TEXT,
}

CONTACT: Mapping[str, Hint] = dict.fromkeys(
    (
        "contactId",
        "friendlyName",
        "contactName",
        "contactEmail",
        "contactPhone",
        "contactTitle",
        "companyName",
        "companyAddress",
    ),
    TEXT,
)

PHONE: Mapping[str, Hint] = dict.fromkeys(
    ("phoneNumber", "country", "accountId", "contactId", "friendlyName", "requestId", "status"),
    TEXT,
)

REGISTRATION: Mapping[str, Hint] = dict.fromkeys(
    ("requestId", "accountId", "contactId", "friendlyName", "status"), TEXT
)


def named(columns: Mapping[str, Hint], key: str | None = None) -> dict[str, dict[str, Any]]:
    """dlt column hints: a fresh dict per column carrying its name (dlt fills hints in place, so
    shared dicts would overwrite each other), `key` never null, every other column nullable."""
    # Nullable said out loud: a column an earlier version kept non-null (a key then) accepts
    # nulls now, rather than failing the load.
    hints = {name: {"name": name, "nullable": True, **hint} for name, hint in columns.items()}
    if key:
        hints[key] = {**hints.get(key, {"name": key, **TEXT}), "nullable": False}
    return hints
