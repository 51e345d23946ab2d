"""Whether a body is what its endpoint expects. Either way it is landed as received: the answer
only says `readable` or gives the problem, for the loader and for whoever looks at it later."""

from __future__ import annotations

import json
from typing import Any

from messaging_assets.receiver.landing import DELIVERY_REPORTS, Endpoint

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not JSON")


def problem(endpoint: Endpoint, body: bytes) -> str | None:
    """None for a readable body, else why it is not, in a few words."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8 (byte {error.start})"
    if not text.strip():
        return "empty body"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        # Some of json's messages end in "at" already ("Invalid control character at").
        said = error.msg.removesuffix(" at")
        return f"not JSON: {said} at line {error.lineno} column {error.colno}"
    except ValueError as error:
        return f"not JSON: {error}"
    except RecursionError:
        return "not JSON: nested too deeply"
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), json.dumps(value))
        return f"JSON {kind}, not an object"
    status = value
    # The provider posts a report's status object at the root; the seed's neutral shape wraps
    # it in `data`.
    if endpoint == DELIVERY_REPORTS and "requestId" not in value:
        data = value.get("data")
        if not (isinstance(data, dict) and "requestId" in data):
            return "no requestId at the root or under data"
        status = data
    elif "requestId" not in value:
        return "no requestId"
    request_id = status["requestId"]
    if not (isinstance(request_id, str) and request_id.strip()):
        return f"requestId is not a non-empty string: {json.dumps(request_id)[:40]}"
    return None
