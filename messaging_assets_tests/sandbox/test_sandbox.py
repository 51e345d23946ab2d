"""The sandbox imitates the provider closely enough for the pipeline's tests to mean something.

Most behaviours are tested in both shapes (the neutral `{"data": ...}` shape and the provider's
published contract) through the parametrized `sandbox` fixture; what only one shape does is
marked `data_only` or `provider_only`.
"""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from messaging_assets.sandbox import HOSTILE_REQUEST_ID, OMIT, Fault, Sandbox
from messaging_assets_tests.conftest import REPO_ROOT
from messaging_assets_tests.sandbox import published_contract as contract

KEY = "sandbox-key"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
DECIMAL = re.compile(r"^-?\d+\.\d{4}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SMS = "/messaging/v1/sms"
MESSAGES = "/messaging/v1/messages"
CONTACTS = "/byon/contacts/v1"
PHONES = "/byon/phonebook/v1/numbers"
REGISTRATIONS = "/byon/provisioning/v1"
LISTS = {"contacts": CONTACTS, "phones": PHONES, "registrations": REGISTRATIONS}
RECORD_KEYS = {"contacts": "contactId", "phones": "phoneNumber", "registrations": "requestId"}
PUBLISHED_FIELDS = {
    "contacts": set(contract.CONTACT["properties"]),
    "phones": set(contract.PHONE["properties"]),
    "registrations": set(contract.REGISTRATION["properties"]),
}
FINAL_STATES = {"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
COUNTS = {"contacts": 40, "phones": 20, "registrations": 15}

data_only = pytest.mark.parametrize("shared", ["data"], indirect=True)
provider_only = pytest.mark.parametrize("shared", ["provider"], indirect=True)


def both_shapes(names: str, data: tuple[Any, ...], provider: tuple[Any, ...]) -> Any:
    """Parametrize a test over the shape, with what each shape is expected to answer."""
    return pytest.mark.parametrize(
        f"shared,{names}", [("data", *data), ("provider", *provider)], indirect=["shared"]
    )


@pytest.fixture(scope="module", params=["data", "provider"])
def shared(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox(shape=request.param, api_key=KEY, **COUNTS) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(shared: Sandbox) -> Iterator[Sandbox]:
    shared.reset()
    yield shared
    shared.reset()


@pytest.fixture
def sandbox_with() -> Iterator[Callable[..., Sandbox]]:
    """Starts sandboxes with other options for one test."""
    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        started.append(Sandbox(api_key=KEY, **options).start())
        return started[-1]

    yield start
    for sandbox in started:
        sandbox.stop()


def auth(sb: Sandbox) -> dict[str, str]:
    return {sb.api_key_header: KEY}


def get(sb: Sandbox, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return requests.get(
        sb.url + path, headers=auth(sb) if headers is None else headers, timeout=10, **kw
    )


def records_of(sb: Sandbox, response: requests.Response) -> list[dict[str, Any]]:
    """The records of an answer: its list's records in order, or its one object."""
    body = response.json()
    inner = body["data"] if sb.shape == "data" else body
    if isinstance(inner, dict):
        return [inner]
    if sb.shape == "data":
        return inner
    return [r for envelope in inner for k, v in envelope.items() if k != "size" for r in v]


def list_records(sb: Sandbox, path: str, **kw: Any) -> list[dict[str, Any]]:
    response = get(sb, path, **kw)
    assert response.status_code == 200
    return records_of(sb, response)


def send(sb: Sandbox, **params: str) -> requests.Response:
    return get(sb, SMS, params={"to": "+4915112345678", "from": "Shop", "message": "Hi"} | params)


def sent_message(sb: Sandbox, **params: str) -> dict[str, Any]:
    response = send(sb, **params)
    assert response.status_code == 200
    (message,) = records_of(sb, response)
    return message


def look_up(sb: Sandbox, request_id: str) -> requests.Response:
    return get(sb, f"{MESSAGES}/{request_id}")


def looked_up(sb: Sandbox, request_id: str) -> dict[str, Any]:
    (message,) = records_of(sb, look_up(sb, request_id))
    return message


def problem(sb: Sandbox, status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": "https://sandbox.local/problems/" + title.lower().replace(" ", "-"),
        "title": title,
        "status": status if sb.shape == "provider" else str(status),
        "detail": detail,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ options


@pytest.mark.parametrize(
    "options",
    [{"shape": "xml"}, {"send_answer": "none"}, {"envelopes": 0}],
    ids=["shape", "send-answer", "envelopes"],
)
def test_unknown_option_value_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Sandbox(**options)


@both_shapes("header", ("api_key",), ("apikey",))
def test_default_api_key_header_follows_the_shape(sandbox: Sandbox, header: str) -> None:
    assert sandbox.api_key_header == header
    assert get(sandbox, PHONES, headers={header: KEY}).status_code == 200


# ------------------------------------------------------------------------------ list records


@pytest.mark.parametrize("endpoint", LISTS)
def test_list_records_carry_only_published_fields_and_always_their_key(
    sandbox: Sandbox, endpoint: str
) -> None:
    records = list_records(sandbox, LISTS[endpoint])
    assert len(records) == COUNTS[endpoint]
    assert all(set(record) <= PUBLISHED_FIELDS[endpoint] for record in records)
    assert all(RECORD_KEYS[endpoint] in record for record in records)
    assert all(isinstance(value, str) for record in records for value in record.values())


def test_both_shapes_serve_the_same_records(sandbox_with: Callable[..., Sandbox]) -> None:
    neutral, provider = sandbox_with(shape="data"), sandbox_with(shape="provider")
    for path in LISTS.values():
        assert list_records(neutral, path) == list_records(provider, path)


def test_contact_ids_and_phone_numbers_are_unique(sandbox: Sandbox) -> None:
    contacts = list_records(sandbox, CONTACTS)
    phones = list_records(sandbox, PHONES)
    assert len({c["contactId"] for c in contacts}) == len(contacts)
    assert len({p["phoneNumber"] for p in phones}) == len(phones)


@data_only
def test_contacts_include_non_ascii_names_and_private_people(sandbox: Sandbox) -> None:
    contacts = list_records(sandbox, CONTACTS)
    assert any(not c["contactName"].isascii() for c in contacts)
    assert any("companyName" not in c for c in contacts)
    assert any("companyName" in c and "companyAddress" in c for c in contacts)


@data_only
def test_phones_are_e164_with_a_country(sandbox: Sandbox) -> None:
    for phone in list_records(sandbox, PHONES):
        assert re.match(r"^\+[1-9]\d{6,14}$", phone["phoneNumber"])
        assert re.match(r"^[A-Z]{2}$", phone["country"])
        assert UUID.match(phone["requestId"])


@data_only
@pytest.mark.parametrize("path", [PHONES, REGISTRATIONS])
def test_contact_ids_of_numbers_reference_served_contacts(sandbox: Sandbox, path: str) -> None:
    contact_ids = {c["contactId"] for c in list_records(sandbox, CONTACTS)}
    referenced = {r["contactId"] for r in list_records(sandbox, path) if "contactId" in r}
    assert referenced and referenced <= contact_ids


def test_contact_tags_add_a_nested_object_and_change_nothing_else(
    sandbox_with: Callable[..., Sandbox],
) -> None:
    plain = list_records(sandbox_with(contacts=30), CONTACTS)
    tagged = list_records(sandbox_with(contacts=30, contact_tags=True), CONTACTS)
    assert [{k: v for k, v in c.items() if k != "tags"} for c in tagged] == plain
    assert all(set(c["tags"]) == {"tier", "region"} for c in tagged)
    assert len({c["tags"]["tier"] for c in tagged}) > 1


def test_same_seed_gives_same_contacts_and_other_seed_differs(
    sandbox_with: Callable[..., Sandbox],
) -> None:
    bodies = [get(sandbox_with(contacts=30, seed=seed), CONTACTS).content for seed in (7, 7, 8)]
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


@pytest.mark.parametrize(
    ("setter", "path"),
    [(Sandbox.set_contact_count, CONTACTS), (Sandbox.set_phone_count, PHONES)],
    ids=["contacts", "phones"],
)
def test_set_count_keeps_existing_records_as_prefix(
    sandbox_with: Callable[..., Sandbox], setter: Callable[[Sandbox, int], None], path: str
) -> None:
    sb = sandbox_with(contacts=10, phones=10)
    small = list_records(sb, path)
    setter(sb, 25)
    large = list_records(sb, path)
    assert len(large) == 25
    assert large[:10] == small


def test_remove_contact_drops_it_from_the_list(sandbox_with: Callable[..., Sandbox]) -> None:
    sb = sandbox_with(contacts=10)
    sb.remove_contact("c-000003")
    sb.remove_contact("c-000010")
    ids = [c["contactId"] for c in list_records(sb, CONTACTS)]
    with pytest.raises(KeyError):
        sb.remove_contact("c-000003")
    assert ids == [f"c-{i:06d}" for i in (1, 2, 4, 5, 6, 7, 8, 9)]


@pytest.mark.parametrize(("shape", "envelopes"), [("data", 1), ("provider", 3)])
def test_hundred_thousand_contacts_are_served_quickly_once_built(
    sandbox_with: Callable[..., Sandbox], shape: str, envelopes: int
) -> None:
    sb = sandbox_with(shape=shape, envelopes=envelopes, contacts=100_000)
    with requests.Session() as session:
        session.get(sb.url + CONTACTS, headers=auth(sb), timeout=30).raise_for_status()
        started = time.perf_counter()
        response = session.get(sb.url + CONTACTS, headers=auth(sb), timeout=30)
        elapsed = time.perf_counter() - started
    assert len(records_of(sb, response)) == 100_000
    assert elapsed < 2.0


# ------------------------------------------------------------------------------ list envelopes


@both_shapes("expected", ({"data"},), ({"provisioningRequests", "size"},))
def test_list_answer_is_wrapped_as_the_shape_says(sandbox: Sandbox, expected: set[str]) -> None:
    response = get(sandbox, REGISTRATIONS)
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    (envelope,) = [body] if sandbox.shape == "data" else body
    assert set(envelope) == expected


@provider_only
@pytest.mark.parametrize("endpoint", LISTS)
def test_envelope_size_counts_its_records(sandbox: Sandbox, endpoint: str) -> None:
    (envelope,) = get(sandbox, LISTS[endpoint]).json()
    (records,) = [v for k, v in envelope.items() if k != "size"]
    assert envelope["size"] == len(records) == COUNTS[endpoint]


@pytest.mark.parametrize(
    ("contacts", "envelopes", "sizes"), [(40, 3, [13, 13, 14]), (2, 3, [1, 1])]
)
def test_records_are_split_over_envelopes_in_order_none_empty(
    sandbox_with: Callable[..., Sandbox], contacts: int, envelopes: int, sizes: list[int]
) -> None:
    sb = sandbox_with(shape="provider", contacts=contacts, envelopes=envelopes)
    answer = get(sb, CONTACTS).json()
    assert [len(e["contacts"]) for e in answer] == [e["size"] for e in answer] == sizes
    ids = [c["contactId"] for e in answer for c in e["contacts"]]
    assert ids == [f"c-{i:06d}" for i in range(1, contacts + 1)]


def test_envelopes_split_each_phone_page(sandbox_with: Callable[..., Sandbox]) -> None:
    split = sandbox_with(shape="provider", phones=20, envelopes=2)
    whole = sandbox_with(shape="provider", phones=20)
    page = {"page": 1, "size": 6}
    answer = get(split, PHONES, params=page).json()
    assert [e["size"] for e in answer] == [3, 3]
    assert records_of(split, get(split, PHONES, params=page)) == list_records(
        whole, PHONES, params=page
    )


@both_shapes("status, body", (200, b'{"data":[]}'), (204, b""))
def test_empty_list_answer(
    sandbox_with: Callable[..., Sandbox], shared: Sandbox, status: int, body: bytes
) -> None:
    sb = sandbox_with(shape=shared.shape, contacts=0)
    response = get(sb, CONTACTS)
    assert (response.status_code, response.content) == (status, body)


# ------------------------------------------------------------------------------ paging


@provider_only
def test_phone_book_pages_from_zero_until_a_short_page(sandbox: Sandbox) -> None:
    sizes, numbers = [], []
    for page in range(10):
        (envelope,) = get(sandbox, PHONES, params={"page": page, "size": 6}).json()
        sizes.append(envelope["size"])
        numbers += [p["phoneNumber"] for p in envelope["provisioningRequests"]]
        if envelope["size"] < 6:
            break
    assert sizes == [6, 6, 6, 2]
    assert numbers == [p["phoneNumber"] for p in list_records(sandbox, PHONES)]


@provider_only
def test_phone_page_past_the_end_is_one_empty_envelope(sandbox: Sandbox) -> None:
    response = get(sandbox, PHONES, params={"page": 4, "size": 5})
    assert response.status_code == 200
    assert response.json() == [{"provisioningRequests": [], "size": 0}]


def test_phone_page_size_defaults_to_3000(sandbox_with: Callable[..., Sandbox]) -> None:
    sb = sandbox_with(shape="provider", phones=3001)
    assert [len(list_records(sb, PHONES, params={"page": p})) for p in (0, 1)] == [3000, 1]


@provider_only
@pytest.mark.parametrize(
    "params",
    [{"size": 3001}, {"size": 0}, {"size": "all"}, {"page": -1}, {"page": "first"}],
    ids=["size-above-limit", "size-zero", "size-word", "page-negative", "page-word"],
)
def test_phone_paging_out_of_range_is_refused_with_byon_error(
    sandbox: Sandbox, params: dict[str, Any]
) -> None:
    response = get(sandbox, PHONES, params=params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "timestamp"}
    assert isinstance(body["timestamp"], int)


def test_ignore_paging_answers_the_first_page_for_every_page(
    sandbox_with: Callable[..., Sandbox],
) -> None:
    sb = sandbox_with(shape="provider", phones=10, ignore_paging=True)
    pages = [list_records(sb, PHONES, params={"page": p, "size": 4}) for p in (0, 1, 5)]
    assert len(pages[0]) == 4
    assert pages[0] == pages[1] == pages[2]


@data_only
def test_data_shape_answers_every_record_whatever_the_paging(sandbox: Sandbox) -> None:
    assert len(list_records(sandbox, PHONES, params={"page": 1, "size": 2})) == 20


# ------------------------------------------------------------------------------ errors and auth


@pytest.mark.parametrize(
    ("shared", "path", "problem_status"),
    [
        ("data", "/byon/nothing/v1", "404"),
        ("provider", "/byon/nothing/v1", None),
        ("provider", "/messaging/v1/nothing", 404),
    ],
    indirect=["shared"],
)
def test_unknown_path_answers_404(sandbox: Sandbox, path: str, problem_status: Any) -> None:
    response = get(sandbox, path)
    assert response.status_code == 404
    if problem_status is None:
        assert response.content == b""
    else:
        assert response.json()["status"] == problem_status


@pytest.mark.parametrize(
    ("shared", "path", "has_body"),
    [
        ("data", CONTACTS, True),
        ("data", SMS, True),
        ("provider", SMS, True),
        ("provider", CONTACTS, False),
    ],
    indirect=["shared"],
)
def test_wrong_api_key_answers_401(sandbox: Sandbox, path: str, has_body: bool) -> None:
    response = get(sandbox, path, headers={sandbox.api_key_header: "wrong"})
    assert response.status_code == 401
    if has_body:
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == problem(
            sandbox, 401, "Unauthorized", "Invalid or missing API key"
        )
    else:
        assert response.content == b""
        assert "Content-Type" not in response.headers


def test_missing_api_key_answers_401_and_sends_nothing(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    response = get(sandbox, SMS, headers={}, params={"to": "+4915112345678", "from": "x"})
    assert response.status_code == 401
    assert len(sandbox.sent) == before


def test_custom_api_key_header_name_is_honoured(sandbox_with: Callable[..., Sandbox]) -> None:
    sb = sandbox_with(api_key_header="X-Key")
    assert get(sb, PHONES, headers={"api_key": KEY}).status_code == 401
    assert get(sb, PHONES, headers={"X-Key": KEY}).status_code == 200


def test_api_key_is_never_recorded(sandbox: Sandbox) -> None:
    get(sandbox, CONTACTS)
    (recorded,) = sandbox.requests
    assert recorded.headers[sandbox.api_key_header] == "***"
    assert KEY not in repr(sandbox.requests)
    assert (recorded.endpoint, recorded.status, recorded.path) == ("contacts", 200, CONTACTS)


def test_recorded_request_gives_decoded_query_parameters(sandbox: Sandbox) -> None:
    get(sandbox, PHONES, params={"page": "2", "size": "5", "friendlyName": "Zentrale 1"})
    (recorded,) = sandbox.requests
    assert recorded.params == {"page": "2", "size": "5", "friendlyName": "Zentrale 1"}


# ------------------------------------------------------------------------------ sending


def test_send_answers_the_accepted_message_and_is_counted(sandbox: Sandbox) -> None:
    message = sent_message(sandbox, reference="order-17")
    assert set(message) == {"requestId", "status", "to", "from", "reference", "submitDate"}
    assert (message["status"], message["reference"]) == ("ACCEPTED", "order-17")
    assert (message["to"], message["from"]) == ("+4915112345678", "Shop")
    assert UUID.match(message["requestId"])
    assert TIMESTAMP.match(message["submitDate"])
    assert sandbox.count("sms") == 1
    assert sandbox.sent[-1]["requestId"] == message["requestId"]
    assert sandbox.sent[-1]["reference"] == "order-17"


def test_send_without_reference_answers_no_reference(sandbox: Sandbox) -> None:
    assert "reference" not in sent_message(sandbox)


@pytest.mark.parametrize("shape", ["data", "provider"])
def test_send_configured_for_201_answers_no_body_and_bills(
    sandbox_with: Callable[..., Sandbox], shape: str
) -> None:
    sb = sandbox_with(shape=shape, send_answer="empty_201")
    response = send(sb)
    assert (response.status_code, response.content) == (201, b"")
    (sent,) = sb.sent
    assert sb.message(sent["requestId"])["status"] == "ACCEPTED"


def test_unrendered_template_in_parameters_is_rejected_and_not_sent(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    # What dlt sends for the neutral shape's "{{ config['to'] }}".
    response = get(sandbox, SMS, params={"to": "{ config['to'] }", "from": "x", "message": "hi"})
    assert response.status_code == 400
    assert response.json() == problem(
        sandbox, 400, "Bad Request", "Parameter values must not contain { or }"
    )
    assert len(sandbox.sent) == before
    assert sandbox.requests[-1].query.startswith("to=%7B")


def test_send_without_recipient_is_rejected(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    assert get(sandbox, SMS, params={"from": "x", "message": "hi"}).status_code == 400
    assert len(sandbox.sent) == before


def test_concurrent_sends_get_distinct_request_ids(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: sent_message(sandbox)["requestId"], range(64)))
    assert len(set(ids)) == 64
    assert sandbox.count("sms") == 64


# ------------------------------------------------------------------------------ message status


def test_accepted_message_has_what_is_known_and_a_part_per_160_characters(
    sandbox: Sandbox,
) -> None:
    text = "x" * 150 + "Tracking: 1Z999AA10123456784 " + "y" * 30
    request_id = sent_message(sandbox, message=text)["requestId"]
    message = looked_up(sandbox, request_id)
    assert set(message) == {
        "requestId", "status", "submitDate", "from", "to", "href", "size", "mccmnc", "ttid",
        "parts",
    }  # fmt: skip
    assert message["href"] == f"{MESSAGES}/{request_id}"
    assert message["size"] == len(message["parts"]) == 2
    assert [p["statusText"] for p in message["parts"]] == [text[:20], text[160:180]]
    assert {p["deliveryState"] for p in message["parts"]} == {"ACCEPTED"}


def test_status_moves_accepted_buffered_final_and_then_stays(sandbox: Sandbox) -> None:
    request_id = sent_message(sandbox)["requestId"]
    seen = [looked_up(sandbox, request_id) for _ in range(5)]
    assert [m["status"] for m in seen[:2]] == ["ACCEPTED", "BUFFERED"]
    assert seen[2]["status"] in FINAL_STATES
    assert seen[2] == seen[3] == seen[4]
    assert TIMESTAMP.match(seen[1]["sentDate"])
    assert TIMESTAMP.match(seen[2]["doneDate"])


def test_buffered_message_prices_are_decimal_text_and_price_effective_a_date(
    sandbox: Sandbox,
) -> None:
    (request_id,) = sandbox.add_messages(1)
    sandbox.advance(request_id)
    message = looked_up(sandbox, request_id)
    assert DECIMAL.match(message["overallPrice"])
    assert TIMESTAMP.match(message["priceEffective"])
    for part in message["parts"]:
        assert (part["currency"], part["deliveryState"]) == ("EUR", "BUFFERED")
        assert DECIMAL.match(part["price"])
        assert part["priceEffective"] == message["priceEffective"]


def test_error_fields_are_text_and_only_on_undelivered_final_states() -> None:
    sandbox = Sandbox()
    messages = [sandbox.message(i) for i in sandbox.add_messages(300, final=True)]
    assert {m["status"] for m in messages} == FINAL_STATES
    for m in messages:
        failed = m["status"] != "DELIVERED"
        assert ("errorCode" in m) == ("errorReason" in m) == failed
        assert all(("errorCode" in p) == failed for p in m["parts"])
        if failed:
            assert isinstance(m["errorCode"], str) and m["errorCode"].isdigit()


def test_some_messages_spell_part_sent_date_as_send_date() -> None:
    sandbox = Sandbox()
    messages = [sandbox.message(i) for i in sandbox.add_messages(300, final=True)]
    spellings = {("sendDate" in m["parts"][0], "sentDate" in m["parts"][0]) for m in messages}
    assert spellings == {(True, False), (False, True)}


def test_ttid_is_text_for_most_messages_and_a_number_for_some() -> None:
    sandbox = Sandbox()
    ttids = [sandbox.message(i)["ttid"] for i in sandbox.add_messages(300)]
    as_numbers = sum(isinstance(t, int) for t in ttids)
    assert 0 < as_numbers < 100
    assert all(isinstance(t, int) or t.isdigit() for t in ttids)


def test_a_few_overall_prices_are_negative_payouts() -> None:
    sandbox = Sandbox()
    prices = [sandbox.message(i)["overallPrice"] for i in sandbox.add_messages(1000, final=True)]
    payouts = [p for p in prices if p.startswith("-")]
    assert 0 < len(payouts) < 30
    assert all(DECIMAL.match(p) for p in prices)


def test_message_timestamps_carry_offsets_without_colon_and_vary() -> None:
    sandbox = Sandbox()
    messages = [sandbox.message(i) for i in sandbox.add_messages(50, final=True)]
    stamps = [m[k] for m in messages for k in ("submitDate", "sentDate", "doneDate")]
    assert all(TIMESTAMP.match(s) for s in stamps)
    assert len({s[-5:] for s in stamps}) > 1


@both_shapes("status", ("404",), (404,))
def test_unknown_message_id_answers_404_problem_document(sandbox: Sandbox, status: Any) -> None:
    response = look_up(sandbox, UNKNOWN_ID)
    assert response.status_code == 404
    assert response.json()["status"] == status
    assert sandbox.count("messages") == 1


def test_expired_message_answers_404(sandbox: Sandbox) -> None:
    (request_id,) = sandbox.add_messages(1, final=True)
    assert look_up(sandbox, request_id).status_code == 200
    sandbox.expire(request_id)
    assert look_up(sandbox, request_id).status_code == 404


def test_add_messages_are_not_counted_as_sends(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    ids = sandbox.add_messages(3)
    assert len(sandbox.sent) == before
    assert [sandbox.message(i)["status"] for i in ids] == ["ACCEPTED"] * 3


def test_lookups_do_not_advance_when_disabled(sandbox_with: Callable[..., Sandbox]) -> None:
    sb = sandbox_with(advance_on_lookup=False)
    (request_id,) = sb.add_messages(1)
    assert {looked_up(sb, request_id)["status"] for _ in range(3)} == {"ACCEPTED"}


# ------------------------------------------------------------------------------ failure faults


@both_shapes("body", (b'"status":"429"',), (b"",))
def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox, body: bytes) -> None:
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=1, retry_after="3")
    response = get(sandbox, CONTACTS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert body in response.content
    assert get(sandbox, CONTACTS).status_code == 200


@both_shapes("status", ("503",), (503,))
def test_server_error_on_sms_endpoint_is_problem_document(sandbox: Sandbox, status: Any) -> None:
    sandbox.inject("messages", Fault.SERVER_ERROR, times=1, status=503)
    response = look_up(sandbox, UNKNOWN_ID)
    assert response.status_code == 503
    assert response.json()["status"] == status


def test_server_error_on_byon_endpoint_has_code_message_timestamp(sandbox: Sandbox) -> None:
    sandbox.inject("phones", Fault.SERVER_ERROR, times=1, status=503)
    response = get(sandbox, PHONES)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert isinstance(body["timestamp"], int)


def test_html_200_answers_maintenance_page(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.HTML_200, times=1)
    response = get(sandbox, CONTACTS)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "maintenance" in response.text


def test_drop_connection_raises_connection_error_in_client(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.DROP_CONNECTION, times=1)
    with pytest.raises(requests.ConnectionError):
        get(sandbox, CONTACTS)
    assert sandbox.requests[-1].status == 0
    assert get(sandbox, CONTACTS).status_code == 200


def test_empty_204_has_no_body(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.EMPTY_204, times=1)
    response = get(sandbox, CONTACTS)
    assert response.status_code == 204
    assert response.content == b""


def test_latency_fault_delays_a_normal_answer(sandbox: Sandbox) -> None:
    sandbox.inject("phones", Fault.LATENCY, times=1, latency=0.3)
    started = time.perf_counter()
    response = get(sandbox, PHONES)
    assert time.perf_counter() - started >= 0.3
    assert len(records_of(sandbox, response)) == 20


def test_echo_headers_answers_the_request_line_and_headers_with_the_key_as_text(
    sandbox: Sandbox,
) -> None:
    sandbox.inject("phones", Fault.ECHO_HEADERS, times=1)
    response = get(sandbox, PHONES)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith(f"GET {PHONES} HTTP/1.1\n")
    assert f"{sandbox.api_key_header}: {KEY}" in response.text
    assert KEY not in repr(sandbox.requests)


@pytest.mark.parametrize(
    ("endpoint", "path", "status", "explanation"),
    [("sms", SMS, 400, "detail"), ("contacts", CONTACTS, 500, "message")],
)
def test_echo_headers_problem_explains_with_the_key(
    sandbox: Sandbox, endpoint: str, path: str, status: int, explanation: str
) -> None:
    sandbox.inject(endpoint, Fault.ECHO_HEADERS_PROBLEM, times=1)
    response = get(sandbox, path)
    assert response.status_code == status
    assert f"{sandbox.api_key_header}: {KEY}" in response.json()[explanation]


def test_failure_fault_applies_before_auth_and_is_counted(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    sandbox.inject("sms", Fault.RATE_LIMIT)
    assert get(sandbox, SMS, headers={}).status_code == 429
    assert send(sandbox).status_code == 429
    assert sandbox.count("sms") == 2
    assert len(sandbox.sent) == before


# ------------------------------------------------------------------------------ spoiled answers


def test_spoiling_fault_bills_the_send_whose_answer_it_spoils(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    sandbox.inject("sms", Fault.MISSING_KEY, times=1)
    assert "requestId" not in sent_message(sandbox)
    assert len(sandbox.sent) == before + 1


def test_spoiling_fault_leaves_an_error_answer_as_it_is(sandbox: Sandbox) -> None:
    sandbox.inject("messages", Fault.EXTRA_FIELD, times=1)
    response = look_up(sandbox, UNKNOWN_ID)
    assert response.status_code == 404
    assert "addedLater" not in response.json()


@pytest.mark.parametrize("endpoint", ["registrations", "messages"])
def test_malformed_json_is_cut_json_with_json_content_type(sandbox: Sandbox, endpoint: str) -> None:
    (request_id,) = sandbox.add_messages(1)
    path = f"{MESSAGES}/{request_id}" if endpoint == "messages" else REGISTRATIONS
    sandbox.inject(endpoint, Fault.MALFORMED_JSON, times=1)
    response = get(sandbox, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize("endpoint", ["contacts", "messages"])
def test_byte_order_mark_precedes_a_well_formed_answer(sandbox: Sandbox, endpoint: str) -> None:
    (request_id,) = sandbox.add_messages(1)
    path = f"{MESSAGES}/{request_id}" if endpoint == "messages" else CONTACTS
    sandbox.inject(endpoint, Fault.BYTE_ORDER_MARK, times=1)
    response = get(sandbox, path)
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert records_of(sandbox, response)


@both_shapes(
    "unwrap",
    (lambda body: body["result"],),
    (lambda body: [c for e in body for c in e["result"]],),
)
def test_no_data_key_puts_the_records_under_another_key(
    sandbox: Sandbox, unwrap: Callable[[Any], list[dict[str, Any]]]
) -> None:
    sandbox.inject("contacts", Fault.NO_DATA_KEY, times=1)
    assert len(unwrap(get(sandbox, CONTACTS).json())) == 40


@both_shapes(
    "unwrap",
    (lambda body: body["data"]["items"],),
    (lambda body: body["contacts"],),
)
def test_wrong_shape_answers_an_object_where_a_list_belongs(
    sandbox: Sandbox, unwrap: Callable[[Any], list[dict[str, Any]]]
) -> None:
    sandbox.inject("contacts", Fault.WRONG_SHAPE, times=1)
    assert len(unwrap(get(sandbox, CONTACTS).json())) == 40


@both_shapes("unwrap", (lambda body: body["data"],), (lambda body: body,))
def test_wrong_shape_answers_a_list_where_a_message_belongs(
    sandbox: Sandbox, unwrap: Callable[[Any], Any]
) -> None:
    (request_id,) = sandbox.add_messages(1)
    sandbox.inject("messages", Fault.WRONG_SHAPE, times=1)
    (message,) = unwrap(look_up(sandbox, request_id).json())
    assert message["requestId"] == request_id


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [("contacts", "contactId"), ("phones", "phoneNumber"), ("registrations", "requestId")],
)
def test_missing_key_drops_the_first_records_key(sandbox: Sandbox, endpoint: str, key: str) -> None:
    sandbox.inject(endpoint, Fault.MISSING_KEY, times=1)
    records = list_records(sandbox, LISTS[endpoint])
    assert key not in records[0]
    assert all(key in r for r in records[1:])


def test_wrong_type_makes_a_message_size_a_word(sandbox: Sandbox) -> None:
    (request_id,) = sandbox.add_messages(1)
    sandbox.inject("messages", Fault.WRONG_TYPE, times=1)
    assert looked_up(sandbox, request_id)["size"] == "three"


@both_shapes("size_of", (lambda body: body["data"][0]["size"],), (lambda body: body[0]["size"],))
def test_wrong_type_on_a_list_answers_a_size_as_a_word(
    sandbox: Sandbox, size_of: Callable[[Any], Any]
) -> None:
    sandbox.inject("contacts", Fault.WRONG_TYPE, times=1)
    assert size_of(get(sandbox, CONTACTS).json()) == "three"


def test_extra_field_is_added_to_the_first_record(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.EXTRA_FIELD, times=1)
    assert list_records(sandbox, CONTACTS)[0]["addedLater"] == "surprise"


def test_a_set_field_goes_round_the_records_of_every_answer(sandbox: Sandbox) -> None:
    sandbox.set_field("contacts", "score", [1, "one", OMIT])
    for _ in range(2):
        records = list_records(sandbox, CONTACTS)
        assert [r.get("score", "-") for r in records[:4]] == [1, "one", "-", 1]
    sandbox.set_field("contacts", "score", [])
    assert "score" not in list_records(sandbox, CONTACTS)[0]


def test_a_set_field_replaces_a_fields_value_in_a_look_up(sandbox: Sandbox) -> None:
    (request_id,) = sandbox.add_messages(1)
    sandbox.set_field("messages", "size", [{"parts": 1}])
    assert looked_up(sandbox, request_id)["size"] == {"parts": 1}


def test_unknown_status_is_a_status_the_provider_added_later(sandbox: Sandbox) -> None:
    (request_id,) = sandbox.add_messages(1)
    sandbox.inject("messages", Fault.UNKNOWN_STATUS, times=1)
    assert looked_up(sandbox, request_id)["status"] == "SCHEDULED"


@pytest.mark.parametrize("endpoint", LISTS)
def test_duplicate_key_gives_the_second_record_the_first_ones_key(
    sandbox: Sandbox, endpoint: str
) -> None:
    sandbox.inject(endpoint, Fault.DUPLICATE_KEY, times=1)
    first, second, *_ = list_records(sandbox, LISTS[endpoint])
    key = RECORD_KEYS[endpoint]
    assert second[key] == first[key]
    assert second != first


def test_hostile_request_id_is_answered_while_a_normal_one_is_billed(sandbox: Sandbox) -> None:
    sandbox.inject("sms", Fault.HOSTILE_REQUEST_ID, times=1)
    assert sent_message(sandbox)["requestId"] == HOSTILE_REQUEST_ID
    billed = sandbox.sent[-1]
    assert UUID.match(billed["requestId"])
    assert look_up(sandbox, billed["requestId"]).status_code == 200


def test_odd_value_spoils_overall_price_and_submit_date_only(sandbox: Sandbox) -> None:
    (request_id,) = sandbox.add_messages(1, final=True)
    stored = sandbox.message(request_id)
    sandbox.inject("messages", Fault.ODD_VALUE, times=1)
    message = looked_up(sandbox, request_id)
    assert (message["overallPrice"], message["submitDate"]) == ("n/a", "yesterday")
    assert message | {"overallPrice": None, "submitDate": None} == stored | {
        "overallPrice": None,
        "submitDate": None,
    }
    assert sandbox.message(request_id) == stored


@pytest.mark.parametrize(
    ("fault", "endpoint"),
    [
        (Fault.DUPLICATE_KEY, "messages"),
        (Fault.HOSTILE_REQUEST_ID, "messages"),
        (Fault.ODD_VALUE, "contacts"),
    ],
)
def test_fault_for_other_endpoints_is_refused(fault: Fault, endpoint: str) -> None:
    with pytest.raises(ValueError):
        Sandbox().inject(endpoint, fault)


# ------------------------------------------------------------------------------ fault handling


def test_fault_without_times_lasts_until_cleared(sandbox: Sandbox) -> None:
    sandbox.inject("phones", Fault.SERVER_ERROR, status=502)
    assert [get(sandbox, PHONES).status_code for _ in range(3)] == [502, 502, 502]
    sandbox.clear_faults()
    assert get(sandbox, PHONES).status_code == 200


def test_injected_faults_queue_in_order(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=1)
    sandbox.inject("contacts", Fault.SERVER_ERROR, times=2, status=504)
    statuses = [get(sandbox, CONTACTS).status_code for _ in range(4)]
    assert statuses == [429, 504, 504, 200]


@data_only
def test_set_latency_slows_every_request_until_cleared(sandbox: Sandbox) -> None:
    sandbox.set_latency("registrations", 0.2)
    try:
        for _ in range(2):
            started = time.perf_counter()
            assert get(sandbox, REGISTRATIONS).status_code == 200
            assert time.perf_counter() - started >= 0.2
    finally:
        sandbox.set_latency("registrations", 0)
    started = time.perf_counter()
    get(sandbox, REGISTRATIONS)
    assert time.perf_counter() - started < 0.2


def test_stats_endpoint_reports_counts_without_auth(sandbox: Sandbox) -> None:
    send(sandbox)
    get(sandbox, CONTACTS)
    stats = get(sandbox, "/_sandbox/stats", headers={}).json()
    assert stats["requests"] == {
        "sms": 1,
        "messages": 0,
        "contacts": 1,
        "phones": 0,
        "registrations": 0,
    }
    assert stats["sent"] == len(sandbox.sent)


# ------------------------------------------------------------------------------ command line


@contextmanager
def sandbox_process(*options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m messaging_assets.sandbox` on a free port: the process and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "messaging_assets.sandbox", "--port", str(port), *options],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no output from the sandbox process"
        assert process.stdout is not None
        url = f"http://127.0.0.1:{port}"
        assert process.stdout.readline().strip() == f"sandbox listening on {url}"
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_and_exits_cleanly_on_signal(signum: int) -> None:
    with sandbox_process("--contacts", "5") as (process, url):
        response = requests.get(url + CONTACTS, headers={"api_key": KEY}, timeout=5)
        assert len(response.json()["data"]) == 5
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()


@pytest.mark.e2e
def test_command_line_passes_the_provider_options() -> None:
    options = ["--shape", "provider", "--send-answer", "empty-201", "--envelopes", "2"]
    options += ["--contact-tags", "--ignore-paging", "--contacts", "4", "--phones", "5"]
    with sandbox_process(*options) as (_, url):
        headers = {"apikey": KEY}
        contacts = requests.get(url + CONTACTS, headers=headers, timeout=5).json()
        pages = [
            requests.get(url + PHONES, params={"page": p, "size": 2}, headers=headers, timeout=5)
            for p in (0, 1)
        ]
        sent = requests.get(
            url + SMS, params={"to": "+4915112345678", "from": "x"}, headers=headers, timeout=5
        )
    assert [e["size"] for e in contacts] == [2, 2]
    assert all("tags" in c for e in contacts for c in e["contacts"])
    assert pages[0].json() == pages[1].json()
    assert sent.status_code == 201
