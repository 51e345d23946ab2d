"""The sandbox's provider shape answers as the provider's published contract says.

Every kind of answer a client can get is fetched over HTTP and validated against the JSON Schemas
in `published_contract`, which are written from the contract's field tables, not from the
sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.sandbox import published_contract as contract

KEY = "contract-key"
AUTH = {"apikey": KEY}
SMS = "/messaging/v1/sms"
MESSAGES = "/messaging/v1/messages"
CONTACTS = "/byon/contacts/v1"
PHONES = "/byon/phonebook/v1/numbers"
REGISTRATIONS = "/byon/provisioning/v1"
BYON_PATHS = {"contacts": CONTACTS, "phones": PHONES, "registrations": REGISTRATIONS}
SEND = {"to": "+4915112345678", "from": "Shop", "message": "Your parcel is on its way"}
PHONE_COUNT = 7
PAGE_SIZE = 3


def validate(instance: Any, schema: contract.Schema) -> None:
    Draft202012Validator(schema).validate(instance)


def json_body(response: requests.Response) -> Any:
    """The body of a JSON answer, after checking that it says it is JSON."""
    assert response.headers["Content-Type"].split(";")[0].strip() == "application/json"
    return response.json()


def assert_no_body(response: requests.Response) -> None:
    assert response.content == b""
    assert "Content-Type" not in response.headers


@pytest.fixture(scope="module")
def provider() -> Iterator[Sandbox]:
    # Look-ups leave messages where they are: each test moves its message to the stage it needs.
    with Sandbox(
        shape="provider",
        api_key=KEY,
        contacts=9,
        phones=PHONE_COUNT,
        registrations=5,
        advance_on_lookup=False,
    ) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(provider: Sandbox) -> Iterator[Sandbox]:
    provider.reset()
    yield provider
    provider.reset()


@pytest.fixture(scope="module")
def sandbox_with() -> Iterator[Callable[..., Sandbox]]:
    """Starts further provider-shape sandboxes (other options, other counts) for the module."""
    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        started.append(Sandbox(shape="provider", api_key=KEY, **options).start())
        return started[-1]

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="module")
def final_messages(provider: Sandbox) -> list[str]:
    """RequestIds of enough final messages to hold every final state and spelling."""
    return provider.add_messages(400, final=True)


def get(sandbox: Sandbox, path: str, headers: dict[str, str] = AUTH, **kw: Any) -> Any:
    return requests.get(sandbox.url + path, headers=headers, timeout=10, **kw)


def look_up(sandbox: Sandbox, request_id: str) -> requests.Response:
    return get(sandbox, f"{MESSAGES}/{request_id}")


def first_where(sandbox: Sandbox, ids: list[str], test: Callable[[dict[str, Any]], bool]) -> str:
    return next(i for i in ids if test(sandbox.message(i)))


# ------------------------------------------------------------------------------ the schemas


@pytest.mark.parametrize("name", sorted(contract.ALL))
def test_schema_is_a_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(contract.ALL[name])


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        (contract.MESSAGE, {"requestId": "x", "status": "DELIVERED", "priceEffective": "0.05"}),
        (contract.MESSAGE, {"requestId": "x", "status": "DELIVERED", "errorCode": 27}),
        (contract.MESSAGE, {"requestId": "x", "status": "ACCEPTED", "size": "1"}),
        (contract.MESSAGE, {"requestId": "x", "status": "ACCEPTED", "submitDate": "2019-07-02"}),
        (contract.MESSAGE, {"requestId": "x", "status": "ACCEPTED", "overallPrice": "n/a"}),
        (contract.PART, {"sentDate": "2019-07-02T16:47:39+02:00"}),
        (contract.CONTACT, {"contactId": "c-1", "firstName": "Anna"}),
        (contract.CONTACTS_ANSWER, {"contacts": [], "size": 0}),
        (contract.BYON_ERROR, {"code": "X", "message": "y", "timestamp": "2019-07-02"}),
    ],
    ids=[
        "price-as-price-effective",
        "numeric-error-code",
        "size-as-text",
        "date-without-time",
        "price-not-decimal",
        "offset-with-colon",
        "unpublished-field",
        "envelope-object-not-array",
        "timestamp-as-text",
    ],
)
def test_schemas_refuse_the_known_misreadings(schema: contract.Schema, instance: Any) -> None:
    assert not Draft202012Validator(schema).is_valid(instance)


# ------------------------------------------------------------------------------ sending


def test_send_answers_an_accepted_message_object_at_the_root(sandbox: Sandbox) -> None:
    response = get(sandbox, SMS, params=SEND | {"reference": "order-17"})
    assert response.status_code == 200
    validate(json_body(response), contract.SMS_ANSWER)


def test_send_configured_for_201_answers_no_body_and_still_bills(
    sandbox_with: Callable[..., Sandbox],
) -> None:
    sandbox = sandbox_with(send_answer="empty_201")
    response = get(sandbox, SMS, params=SEND)
    assert response.status_code == 201
    assert_no_body(response)
    assert len(sandbox.sent) == 1


# ------------------------------------------------------------------------------ status look-ups


@pytest.mark.parametrize(("steps", "status"), [(0, "ACCEPTED"), (1, "BUFFERED")])
def test_look_up_of_a_message_in_progress_matches_the_message_schema(
    sandbox: Sandbox, steps: int, status: str
) -> None:
    (request_id,) = sandbox.add_messages(1)
    for _ in range(steps):
        sandbox.advance(request_id)
    response = look_up(sandbox, request_id)
    assert response.status_code == 200
    message = json_body(response)
    validate(message, contract.MESSAGE)
    assert message["status"] == status


@pytest.mark.parametrize("status", contract.FINAL_STATUSES)
def test_look_up_of_a_final_message_matches_the_final_message_schema(
    sandbox: Sandbox, final_messages: list[str], status: str
) -> None:
    request_id = first_where(sandbox, final_messages, lambda m: m["status"] == status)
    message = json_body(look_up(sandbox, request_id))
    validate(message, contract.FINAL_MESSAGE)
    assert message["status"] == status
    assert ("errorCode" in message) == (status != "DELIVERED")


def test_look_up_with_parts_spelling_send_date_matches_the_message_schema(
    sandbox: Sandbox, final_messages: list[str]
) -> None:
    request_id = first_where(sandbox, final_messages, lambda m: "sendDate" in m["parts"][0])
    message = json_body(look_up(sandbox, request_id))
    validate(message, contract.FINAL_MESSAGE)
    assert all("sendDate" in part for part in message["parts"])


def test_look_up_with_an_integer_ttid_matches_the_message_schema(
    sandbox: Sandbox, final_messages: list[str]
) -> None:
    request_id = first_where(sandbox, final_messages, lambda m: isinstance(m["ttid"], int))
    message = json_body(look_up(sandbox, request_id))
    validate(message, contract.FINAL_MESSAGE)
    assert isinstance(message["ttid"], int)


def test_look_up_of_an_unknown_message_answers_a_404_problem(sandbox: Sandbox) -> None:
    response = look_up(sandbox, "00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    validate(response.json(), contract.PROBLEM)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("path", [SMS, f"{MESSAGES}/00000000-0000-4000-8000-000000000000"])
def test_bad_key_on_an_sms_endpoint_answers_a_401_problem(sandbox: Sandbox, path: str) -> None:
    response = get(sandbox, path, headers={"apikey": "wrong"}, params=SEND)
    assert response.status_code == 401
    problem = response.json()
    validate(problem, contract.PROBLEM)
    assert problem["status"] == 401


@pytest.mark.parametrize("path", BYON_PATHS.values())
def test_bad_key_on_a_byon_endpoint_answers_401_without_body(sandbox: Sandbox, path: str) -> None:
    response = get(sandbox, path, headers={"apikey": "wrong"})
    assert response.status_code == 401
    assert_no_body(response)


@pytest.mark.parametrize("status", [403, 404])
def test_byon_client_error_answers_without_body(sandbox: Sandbox, status: int) -> None:
    # The fault's status stands in for an account without the right, or a missing resource.
    sandbox.inject("phones", Fault.SERVER_ERROR, times=1, status=status)
    response = get(sandbox, PHONES)
    assert response.status_code == status
    assert_no_body(response)


@pytest.mark.parametrize("endpoint", BYON_PATHS)
def test_byon_server_error_answers_code_message_and_timestamp(
    sandbox: Sandbox, endpoint: str
) -> None:
    sandbox.inject(endpoint, Fault.SERVER_ERROR, times=1)
    response = get(sandbox, BYON_PATHS[endpoint])
    assert response.status_code == 500
    validate(response.json(), contract.BYON_ERROR)


@pytest.mark.parametrize("status", [500, 503])
def test_sms_server_error_answers_a_problem(sandbox: Sandbox, status: int) -> None:
    sandbox.inject("sms", Fault.SERVER_ERROR, times=1, status=status)
    response = get(sandbox, SMS, params=SEND)
    assert response.status_code == status
    validate(response.json(), contract.PROBLEM)


# ------------------------------------------------------------------------------ lists


@pytest.mark.parametrize(
    ("contacts", "envelopes", "sizes"),
    [(9, 1, [9]), (9, 3, [3, 3, 3]), (1, 1, [1])],
    ids=["one-envelope", "several-envelopes", "one-record"],
)
def test_contacts_answer_an_array_of_envelopes(
    sandbox_with: Callable[..., Sandbox], contacts: int, envelopes: int, sizes: list[int]
) -> None:
    sandbox = sandbox_with(contacts=contacts, envelopes=envelopes)
    response = get(sandbox, CONTACTS)
    assert response.status_code == 200
    answer = json_body(response)
    validate(answer, contract.CONTACTS_ANSWER)
    assert [envelope["size"] for envelope in answer] == sizes
    assert [len(envelope["contacts"]) for envelope in answer] == sizes


@pytest.mark.parametrize("endpoint", BYON_PATHS)
def test_empty_list_answers_204_without_body(
    sandbox_with: Callable[..., Sandbox], endpoint: str
) -> None:
    sandbox = sandbox_with(contacts=0, phones=0, registrations=0)
    response = get(sandbox, BYON_PATHS[endpoint])
    assert response.status_code == 204
    assert_no_body(response)


@pytest.mark.parametrize(("page", "size"), [(0, 3), (1, 3), (2, 1), (3, 0)])
def test_phone_book_page_matches_the_envelope_schema(
    sandbox: Sandbox, page: int, size: int
) -> None:
    response = get(sandbox, PHONES, params={"page": page, "size": PAGE_SIZE})
    assert response.status_code == 200
    answer = json_body(response)
    validate(answer, contract.PHONES_ANSWER)
    assert [envelope["size"] for envelope in answer] == [size]
    assert len(answer[0]["provisioningRequests"]) == size


def test_phone_book_without_paging_parameters_matches_the_envelope_schema(
    sandbox: Sandbox,
) -> None:
    answer = json_body(get(sandbox, PHONES))
    validate(answer, contract.PHONES_ANSWER)
    assert sum(envelope["size"] for envelope in answer) == PHONE_COUNT


def test_phone_book_page_size_above_3000_is_refused_with_a_byon_error(sandbox: Sandbox) -> None:
    response = get(sandbox, PHONES, params={"page": 0, "size": 3001})
    assert response.status_code == 400
    validate(response.json(), contract.BYON_ERROR)


def test_registrations_answer_an_array_of_envelopes(sandbox: Sandbox) -> None:
    response = get(sandbox, REGISTRATIONS)
    assert response.status_code == 200
    answer = json_body(response)
    validate(answer, contract.REGISTRATIONS_ANSWER)
    assert sum(envelope["size"] for envelope in answer) == 5
