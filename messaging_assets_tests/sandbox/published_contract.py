"""The provider's published contract as JSON Schemas (draft 2020-12), written from its field tables.

Nothing here is read from the sandbox: the schemas state what the provider's OpenAPI
specification documents, so that validating the sandbox's answers against them shows whether the
sandbox speaks the contract. Where the specification contradicts itself, a schema accepts both
readings (a problem's `status`, the part's `sentDate`/`sendDate`, `ttid`).

The specification marks no field as required. A schema requires a field only where the contract's
prose makes it part of the answer's meaning (a message's id and status, an envelope's list and
size, the BYON error body's three fields); it allows no field the tables do not list.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# `2019-07-02T16:47:39+0200`: the offset without a colon, or Z; an optional fraction of a second.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{4}|Z)$"
# Decimal text such as "0.01" or "0.005"; negative for a payout.
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"

TEXT: Schema = {"type": "string"}
TIMESTAMP: Schema = {"type": "string", "pattern": TIMESTAMP_PATTERN}
DECIMAL: Schema = {"type": "string", "pattern": DECIMAL_PATTERN}

STATUSES = ("ACCEPTED", "BUFFERED", "DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")
FINAL_STATUSES = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")
STATUS: Schema = {"type": "string", "enum": list(STATUSES)}

# RestMessagePart
PART: Schema = {
    "type": "object",
    "properties": {
        "partId": TEXT,
        "currency": TEXT,
        "price": DECIMAL,
        "priceEffective": TIMESTAMP,  # the date from which the price applies, not a price
        "sentDate": TIMESTAMP,
        "sendDate": TIMESTAMP,  # one older client's spelling of sentDate
        "doneDate": TIMESTAMP,
        "deliveryState": STATUS,
        "errorCode": TEXT,  # a GSM error code, text even when it looks numeric
        "statusText": {"type": "string", "maxLength": 20},  # the first 20 characters of the text
    },
    "not": {"required": ["sentDate", "sendDate"]},
    "additionalProperties": False,
}

# RestMessageResponse: the answer of a status look-up, and of a send.
MESSAGE: Schema = {
    "type": "object",
    "properties": {
        "requestId": {"type": "string", "minLength": 1},
        "status": STATUS,
        "submitDate": TIMESTAMP,
        "doneDate": TIMESTAMP,
        "sentDate": TIMESTAMP,  # in the neutral shape; removed from the current specification
        "priceEffective": TIMESTAMP,
        "overallPrice": DECIMAL,
        "errorCode": TEXT,
        "errorReason": TEXT,
        "size": {"type": "integer", "minimum": 1},  # the number of parts
        "mccmnc": {"type": "string", "pattern": r"^\d{5,6}$"},  # MCC (3 digits) + MNC (2 or 3)
        "ttid": {"type": ["string", "integer"]},  # the specification's own example is a number
        "from": TEXT,
        "to": TEXT,
        "href": TEXT,
        "reference": TEXT,
        "parts": {"type": "array", "items": PART},
    },
    "required": ["requestId", "status"],
    "additionalProperties": False,
}

# A send answers one message, just accepted.
SMS_ANSWER: Schema = {
    "allOf": [MESSAGE, {"properties": {"status": {"const": "ACCEPTED"}}}],
}

# Once final a message carries when it became final; nothing changes after.
FINAL_MESSAGE: Schema = {
    "allOf": [
        MESSAGE,
        {"properties": {"status": {"enum": list(FINAL_STATUSES)}}, "required": ["doneDate"]},
    ],
}

CONTACT: Schema = {
    "type": "object",
    "properties": {
        # Not in the record schema, but the prose says the list gives each contact's id.
        "contactId": TEXT,
        "companyAddress": TEXT,
        "companyName": TEXT,
        "contactEmail": TEXT,
        "contactName": TEXT,
        "contactPhone": TEXT,
        "contactTitle": TEXT,
        "friendlyName": TEXT,
    },
    "additionalProperties": False,
}

REGISTRATION: Schema = {
    "type": "object",
    "properties": {
        "accountId": TEXT,
        "contactId": TEXT,
        "friendlyName": TEXT,
        "requestId": TEXT,
        "status": TEXT,
    },
    "additionalProperties": False,
}

# The phone book reuses the provisioning schema, with the phone-number schema's two fields.
PHONE: Schema = {
    **REGISTRATION,
    "properties": {**REGISTRATION["properties"], "phoneNumber": TEXT, "country": TEXT},
}


def envelopes(list_key: str, record: Schema) -> Schema:
    """A list answer: an array of envelopes `[{"<list_key>": [record, ...], "size": n}]`."""
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {
                list_key: {"type": "array", "items": record},
                "size": {"type": "integer", "minimum": 0},
            },
            "required": [list_key, "size"],
            "additionalProperties": False,
        },
    }


CONTACTS_ANSWER = envelopes("contacts", CONTACT)
PHONES_ANSWER = envelopes("provisioningRequests", PHONE)
REGISTRATIONS_ANSWER = envelopes("provisioningRequests", REGISTRATION)

# RFC 7807, the SMS endpoints' errors. `status` is a number in the current specification and
# text in an older one.
PROBLEM: Schema = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "title": TEXT,
        "status": {
            "oneOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string", "pattern": r"^[1-5]\d\d$"},
            ]
        },
        "detail": TEXT,
    },
    "required": ["type", "title", "status", "detail"],
}

# The BYON endpoints' 500 body; `timestamp` an int64.
BYON_ERROR: Schema = {
    "type": "object",
    "properties": {"code": TEXT, "message": TEXT, "timestamp": {"type": "integer"}},
    "required": ["code", "message", "timestamp"],
    "additionalProperties": False,
}

ALL: dict[str, Schema] = {
    "part": PART,
    "message": MESSAGE,
    "sms answer": SMS_ANSWER,
    "final message": FINAL_MESSAGE,
    "contact": CONTACT,
    "phone": PHONE,
    "registration": REGISTRATION,
    "contacts answer": CONTACTS_ANSWER,
    "phones answer": PHONES_ANSWER,
    "registrations answer": REGISTRATIONS_ANSWER,
    "problem": PROBLEM,
    "BYON error": BYON_ERROR,
}
