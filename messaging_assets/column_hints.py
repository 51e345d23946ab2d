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
BOOL: Hint = {"data_type": "bool"}

# A message's status object, as a look-up answers it and a delivery report pushes it.
STATUS_OBJECT: Mapping[str, Hint] = {
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
}

MESSAGE: Mapping[str, Hint] = {
    **STATUS_OBJECT,
    # Not from the API: when this project last asked, and what it heard if there was no status.
    "checkedAt": TIMESTAMP,
    "lookupError": TEXT,
    # Not from the API: when the delivery report this status came from was received (null: the
    # status came from a look-up).
    "reportedAt": TIMESTAMP,
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

# Not from the provider: where and when a pushed event landed (the receiver's landing zone).
LANDED: Mapping[str, Hint] = {
    "receivedAt": TIMESTAMP,
    # The landed file, relative to the landing zone (`delivery_reports/<name>.jsonl`), and the
    # event's line in it, counted from 1.
    "landedFile": TEXT,
    "landedLine": BIGINT,
}

# A delivery report: the status object as pushed, keyed by a digest of it, with where it landed
# and the body as received (the status object is read again from it when merged into messages).
REPORT: Mapping[str, Hint] = {
    "reportId": TEXT,
    **LANDED,
    **STATUS_OBJECT,
    "body": TEXT,
}

# An inbound SMS (the provider's `InboundMessage`).
INBOUND: Mapping[str, Hint] = {
    "requestId": TEXT,
    "from": TEXT,
    "to": TEXT,
    "message": TEXT,
    "missingParts": BOOL,
    # Network codes: the spec's examples are bare numbers, but `09` needs its leading zero.
    "originMCC": TEXT,
    "originMNC": TEXT,
    "originTtId": TEXT,
    # A JSON number, read as an exact decimal; negative = a payout to the account.
    "totalPrice": DECIMAL,
    "size": BIGINT,
    **LANDED,
}

# One part of an inbound SMS (`InboundContent`): its price is a JSON number, unlike outbound parts.
INBOUND_PART: Mapping[str, Hint] = {
    "msgId": TEXT,
    "sentDate": TIMESTAMP,
    "sequenceNumber": BIGINT,
    "price": DECIMAL,
    "currency": TEXT,
    "priceEffective": TIMESTAMP,
}

# A pushed event the receiver landed but could not read (`readable` false), or a landed line the
# loader could not read: kept as it came, with why.
UNREADABLE: Mapping[str, Hint] = {
    # `<landedFile>:<landedLine>`: where the event is, which is what identifies it.
    "eventId": TEXT,
    "endpoint": TEXT,
    "problem": TEXT,
    **LANDED,
    # The body as text, or in base64 when it is not UTF-8.
    "body": TEXT,
    "bodyBase64": TEXT,
}

# A phone number's current decision (`opt_outs`), from the inbound message that made it.
OPT_OUT: Mapping[str, Hint] = {
    "phoneNumber": TEXT,
    "optedOut": BOOL,
    "decidedAt": TIMESTAMP,
    "keyword": TEXT,
    "requestId": TEXT,
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
    # Set when the run config sent to a number that had opted out: which opt-out it overrode.
    "optOutOverride": TEXT,
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
