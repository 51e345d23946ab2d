"""Reading pushed bodies: the report's digest, the same for the same report whichever way its
text was written; and what no table can hold, refused however it is spelled."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from messaging_assets.source import bodies

BODIES = [
    # No decimal: the C encoder's text.
    '{"requestId": "r-1", "status": "DELIVERED", "size": 2, "done": true, "reason": null}',
    '{"z": {"b": [1, {"y": "\\u00e9\\u0000\\n\\"", "x": "caf\\u00e9 \\ud83d\\ude00"}], "a": -0}}',
    '{"requestId": "r-2", "parts": [{"price": "0.005", "sentDate": "2026-01-01T00:00:00+0100"}]}',
    # A decimal: `canonical`, which keeps its digits.
    '{"requestId": "r-3", "overallPrice": 0.0100, "parts": [{"price": -5e-3, "size": 1}]}',
    '[1.50, {"b": 2, "a": [0.1]}]',
]


@pytest.mark.parametrize("text", BODIES)
def test_a_digest_is_the_md5_of_the_canonical_json(text: str) -> None:
    value = json.loads(text, parse_float=Decimal)
    expected = hashlib.md5(bodies.canonical(value).encode("utf-8")).hexdigest()
    assert bodies.digest(value) == expected


def test_a_digest_ignores_spacing_and_key_order() -> None:
    one = bodies.parse('{"requestId":"r-1","parts":[{"a":1,"b":"x"}],"price":0.5}')
    other = bodies.parse('{ "price": 0.5, "parts": [ { "b": "x", "a": 1 } ], "requestId": "r-1" }')
    assert bodies.digest(one) == bodies.digest(other)
    assert bodies.digest(bodies.parse('{"requestId":"r-1"}')) == bodies.digest({"requestId": "r-1"})


@pytest.mark.parametrize("text", [body for body in BODIES if "." not in body])
def test_the_digest_of_a_body_read_in_columns_is_the_digest_of_its_value(text: str) -> None:
    assert bodies.text_digest(text) == bodies.digest(json.loads(text))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"": 1}', "a field without a name"),
        ('{"a": {" \\t": 1}}', "a field without a name"),
        ('{"\\u0020\\u3000": 1}', "a field without a name"),
        ('{"\u3000": 1}', "a field without a name"),
        ('{"a": [{"b": "x\\u0000"}]}', "holds U.0000"),
    ],
)
def test_a_body_no_table_can_hold_is_refused_however_it_is_spelled(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        bodies.parse(text)
