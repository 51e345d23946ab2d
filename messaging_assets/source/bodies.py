"""What the provider pushes, read from the bodies as the receiver landed them: JSON with exact
decimals, a report's status object in either shape, and the digest that tells the same report
delivered twice."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any

import orjson


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not JSON")


# What an unstorable body's text holds: a key of nothing but spacing, however it is escaped, or
# an escaped U+0000 (JSON has no other way to write it). A body without either needs no walk
# through its values, which is most of `parse`'s time.
_SUSPECT = re.compile(r'"(?:\s|\\u[0-9a-fA-F]{4}|\\.)*"\s*:|\\u0000')

NUL = "a string holds U+0000 (NUL), which PostgreSQL cannot store as text"


def unstorable(value: Any) -> str | None:
    """Why a body's JSON cannot become rows, or None: a field with a blank name (dlt names no
    column after it) or text holding U+0000 (PostgreSQL's text refuses it)."""
    if isinstance(value, str):
        return NUL if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.strip():
                return f"a field without a name ({json.dumps(key)})"
            if "\x00" in key:
                return NUL
            if why := _unstorable_item(item):
                return why
    if isinstance(value, list):
        for item in value:
            if why := _unstorable_item(item):
                return why
    return None


def _unstorable_item(item: Any) -> str | None:
    # Numbers, booleans and nulls are the most of a body: no call for them.
    if type(item) is str:
        return NUL if "\x00" in item else None
    return unstorable(item) if isinstance(item, (dict, list, str)) else None


def parse(body: bytes | str) -> Any:
    """A body's JSON with every fractional number an exact decimal: an inbound `totalPrice` of
    -0.005 read as a float would be stored as -0.005000000000000000104. ValueError for a body
    that is not JSON, or that no table can hold (`unstorable`): one such event would fail the
    whole load."""
    value = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    try:
        text = body if isinstance(body, str) else body.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # another of the encodings JSON may come in: look at every value
    if (text is None or _SUSPECT.search(text)) and (why := unstorable(value)):
        raise ValueError(why)
    return value


def status_object(body: Any) -> dict[str, Any] | None:
    """A report's status object: at the root (the provider's shape) or under `data` (the seed's),
    as the receiver accepts it; None when neither holds a `requestId`."""
    if not isinstance(body, dict):
        return None
    if "requestId" in body:
        return body
    data = body.get("data")
    return data if isinstance(data, dict) and "requestId" in data else None


def published_spelling(record: dict[str, Any]) -> dict[str, Any]:
    """A status object with its parts' fields named as the provider publishes them, in place."""
    for part in record.get("parts") or ():
        # One older client spells the part's sentDate as sendDate.
        if isinstance(part, dict) and "sendDate" in part:
            part.setdefault("sentDate", part.pop("sendDate"))
    return record


def canonical(value: Any) -> str:
    """JSON text that is the same for the same value however it was spaced or its keys ordered:
    keys sorted, no spaces, numbers as written (a decimal keeps its digits)."""
    if isinstance(value, dict):
        fields = (f"{json.dumps(key)}:{canonical(value[key])}" for key in sorted(value))
        return "{" + ",".join(fields) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


def text_digest(text: str) -> str:
    """`digest` of a body's JSON that holds no fractional number and no integer beyond 64 bits
    (arrow's reader refused those): orjson writes the same canonical text where the body is
    printable ASCII without escapes, which no character of another spelling can come from."""
    if text.isascii() and "\\u" not in text and "\x7f" not in text:
        return hashlib.md5(
            orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
    return digest(orjson.loads(text))


def digest(value: Any) -> str:
    """md5 of a value's canonical JSON: the same report, from whichever file, has the same one."""
    try:
        # json's C encoder writes the same text as `canonical` (keys sorted, no spaces) at a
        # fraction of its time, for any value without a decimal, which it refuses.
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except TypeError:
        text = canonical(value)
    return hashlib.md5(text.encode("utf-8")).hexdigest()
