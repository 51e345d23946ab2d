"""Answers become records or errors a user can act on, and no text taken from an answer shows
the key."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from requests import Response

from messaging_assets.source.answers import Answers, ApiError, Redactor, Selector, parse_selector

KEY = "s3cr3t/key+value"


def answer(status: int, body: bytes, content_type: str = "application/json") -> Response:
    response = Response()
    response.status_code = status
    response.reason = "Reason"
    response._content = body
    response.headers["Content-Type"] = content_type
    response.url = "https://api.example/byon/contacts/v1"
    return response


def answers(selector: str = "data") -> Answers:
    return Answers("contacts", Selector(selector), Redactor([KEY]), "apikey", "(settings)")


def raised(check, response: Response) -> str:
    with pytest.raises(ApiError) as error:
        check(response)
    return str(error.value)


@pytest.mark.parametrize("echoed", [KEY, quote(KEY, safe="")], ids=["as is", "percent-encoded"])
def test_a_body_that_echoes_the_key_is_shown_without_it(echoed):
    message = raised(answers().json, answer(200, f"apikey: {echoed}".encode(), "text/plain"))

    assert message == (
        "messaging/contacts: GET /byon/contacts/v1 answered 'text/plain', not JSON: 'apikey: ***'"
    )


def test_the_providers_explanation_is_shown_without_the_key():
    problem = {"type": "x", "title": "Bad Request", "status": 400, "detail": f"header {KEY}"}

    message = raised(answers().check, answer(400, json.dumps(problem).encode()))

    assert message.endswith("answered 400 Reason (the API says: Bad Request: header ***)")


def test_a_byon_error_names_its_code_and_message():
    body = {"code": "QUOTA", "message": "Too many numbers", "timestamp": 1}

    message = raised(answers().check, answer(500, json.dumps(body).encode()))

    assert message.endswith("answered 500 Reason (the API says: QUOTA: Too many numbers)")


@pytest.mark.parametrize(
    ("selector", "payload", "records"),
    [
        ("data", {"data": [{"a": 1}, {"a": 2}]}, [{"a": 1}, {"a": 2}]),
        (
            "[*].contacts[*]",
            [{"contacts": [{"a": 1}]}, {"contacts": [{"a": 2}]}],
            [{"a": 1}, {"a": 2}],
        ),
        ("[*].contacts", [{"contacts": [{"a": 1}], "size": 1}], [{"a": 1}]),
        ("$.result.items", {"result": {"items": []}}, []),
    ],
)
def test_records_are_every_item_the_selector_reaches(selector, payload, records):
    assert answers(selector).records(answer(200, b""), payload) == records


def test_a_selector_that_is_not_a_path_of_keys_is_refused():
    for text in ("$..contacts", "data[?(@.a)]", "data.*", "a..b"):
        with pytest.raises(ValueError, match="is not a path of keys"):
            parse_selector(text)
