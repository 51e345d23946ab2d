"""The sandbox imitates the provider closely enough for the pipeline's tests to mean something."""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from messaging_assets.sandbox import Fault, Sandbox

KEY = "sandbox-key"
AUTH = {"api_key": KEY}
ROOT = Path(__file__).resolve().parents[1]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SMS = "/messaging/v1/sms"
CONTACTS = "/byon/contacts/v1"
PHONES = "/byon/phonebook/v1/numbers"
REGISTRATIONS = "/byon/provisioning/v1"
MESSAGE_FIELDS = {
    "requestId", "doneDate", "errorCode", "errorReason", "from", "href", "mccmnc",
    "overallPrice", "parts", "priceEffective", "reference", "sentDate", "size", "status",
    "submitDate", "to", "ttid",
}  # fmt: skip
UNAUTHORIZED = {
    "type": "https://sandbox.local/problems/unauthorized",
    "title": "Unauthorized",
    "status": "401",
    "detail": "Invalid or missing API key",
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=40, phones=20, registrations=15) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _clean(sandbox: Sandbox) -> Iterator[None]:
    sandbox.reset()
    yield
    sandbox.reset()


def get(sb: Sandbox, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return requests.get(
        sb.url + path, headers=AUTH if headers is None else headers, timeout=5, **kw
    )


def send(sb: Sandbox, **params: str) -> requests.Response:
    params = {
        "to": "+4915112345678",
        "from": "Shop",
        "message": "Your parcel is on its way",
    } | params
    return get(sb, SMS, params=params)


def look_up(sb: Sandbox, request_id: str) -> requests.Response:
    return get(sb, f"/messaging/v1/messages/{request_id}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ list endpoints


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        (
            CONTACTS,
            {"contactId", "firstName", "lastName", "phoneNumber", "email", "company"}
            | {"createdAt", "updatedAt"},
        ),
        (PHONES, {"phoneNumber", "country", "type", "capabilities", "status", "createdAt"}),
        (
            REGISTRATIONS,
            {"requestId", "phoneNumber", "status", "createdAt", "updatedAt", "rejectionReason"},
        ),
    ],
)
def test_list_endpoints_answer_data_envelope_with_expected_fields(
    sandbox: Sandbox, path: str, fields: set[str]
) -> None:
    response = get(sandbox, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["data"]
    assert body["data"]
    assert all(set(record) == fields for record in body["data"])


def test_list_timestamps_use_provider_format_without_colon_in_offset(sandbox: Sandbox) -> None:
    contacts = get(sandbox, CONTACTS).json()["data"]
    stamps = [c["createdAt"] for c in contacts] + [c["updatedAt"] for c in contacts]
    assert all(TIMESTAMP.match(s) for s in stamps)
    assert len({s[-5:] for s in stamps}) > 1


def test_contact_ids_and_phone_numbers_are_unique(sandbox: Sandbox) -> None:
    contacts = get(sandbox, CONTACTS).json()["data"]
    phones = get(sandbox, PHONES).json()["data"]
    assert len({c["contactId"] for c in contacts}) == len(contacts) == 40
    assert len({p["phoneNumber"] for p in phones}) == len(phones) == 20


def test_rejection_reason_only_on_rejected_registrations(sandbox: Sandbox) -> None:
    for registration in get(sandbox, REGISTRATIONS).json()["data"]:
        assert (registration["rejectionReason"] is not None) == (
            registration["status"] == "REJECTED"
        )


def test_same_seed_gives_same_contacts_and_other_seed_differs() -> None:
    bodies = []
    for seed in (7, 7, 8):
        with Sandbox(contacts=30, seed=seed) as sb:
            bodies.append(get(sb, CONTACTS).content)
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_set_contact_count_keeps_existing_records_as_prefix() -> None:
    with Sandbox(contacts=10) as sb:
        small = get(sb, CONTACTS).json()["data"]
        sb.set_contact_count(25)
        large = get(sb, CONTACTS).json()["data"]
    assert len(large) == 25
    assert large[:10] == small


def test_remove_contact_drops_it_from_the_list() -> None:
    with Sandbox(contacts=10) as sb:
        sb.remove_contact("c-000003")
        sb.remove_contact("c-000010")
        ids = [c["contactId"] for c in get(sb, CONTACTS).json()["data"]]
        with pytest.raises(KeyError):
            sb.remove_contact("c-000003")
    assert ids == [f"c-{i:06d}" for i in (1, 2, 4, 5, 6, 7, 8, 9)]


def test_hundred_thousand_contacts_are_served_quickly_once_built() -> None:
    with Sandbox(contacts=100_000) as sb, requests.Session() as session:
        session.get(sb.url + CONTACTS, headers=AUTH, timeout=30).raise_for_status()
        started = time.perf_counter()
        response = session.get(sb.url + CONTACTS, headers=AUTH, timeout=30)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert len(response.json()["data"]) == 100_000
    assert elapsed < 2.0


def test_unknown_path_answers_404_problem_document(sandbox: Sandbox) -> None:
    response = get(sandbox, "/byon/nothing/v1")
    assert response.status_code == 404
    assert response.json()["status"] == "404"


# ------------------------------------------------------------------------------ auth


def test_wrong_api_key_answers_401_problem_document(sandbox: Sandbox) -> None:
    response = get(sandbox, CONTACTS, headers={"api_key": "wrong"})
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == UNAUTHORIZED


def test_missing_api_key_answers_401_and_sends_nothing(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    response = get(sandbox, SMS, headers={}, params={"to": "+4915112345678", "from": "x"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert len(sandbox.sent) == before


def test_custom_api_key_header_name_is_honoured() -> None:
    with Sandbox(api_key="s3cret", api_key_header="apikey") as sb:
        assert get(sb, PHONES, headers={"api_key": "s3cret"}).status_code == 401
        assert get(sb, PHONES, headers={"apikey": "s3cret"}).status_code == 200


def test_api_key_is_never_recorded(sandbox: Sandbox) -> None:
    get(sandbox, CONTACTS)
    (recorded,) = sandbox.requests
    assert recorded.headers["api_key"] == "***"
    assert KEY not in repr(sandbox.requests)
    assert (recorded.endpoint, recorded.status, recorded.path) == ("contacts", 200, CONTACTS)


# ------------------------------------------------------------------------------ sending


def test_send_answers_accepted_and_is_counted(sandbox: Sandbox) -> None:
    response = send(sandbox, reference="order-17")
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["status"] == "ACCEPTED"
    assert data["reference"] == "order-17"
    assert UUID.match(data["requestId"])
    assert sandbox.count("sms") == 1
    assert sandbox.sent[-1]["requestId"] == data["requestId"]
    assert sandbox.sent[-1]["reference"] == "order-17"


def test_send_without_reference_echoes_null(sandbox: Sandbox) -> None:
    assert send(sandbox).json()["data"]["reference"] is None


def test_unrendered_template_in_parameters_is_rejected_and_not_sent(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    # What dlt sends for the seed's "{{ config['to'] }}".
    response = get(sandbox, SMS, params={"to": "{ config['to'] }", "from": "x", "message": "hi"})
    assert response.status_code == 400
    assert response.json()["status"] == "400"
    assert len(sandbox.sent) == before
    assert sandbox.requests[-1].query.startswith("to=%7B")


def test_send_without_recipient_is_rejected(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    assert get(sandbox, SMS, params={"from": "x", "message": "hi"}).status_code == 400
    assert len(sandbox.sent) == before


def test_concurrent_sends_get_distinct_request_ids(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: send(sandbox).json()["data"]["requestId"], range(64)))
    assert len(set(ids)) == 64
    assert sandbox.count("sms") == 64


# ------------------------------------------------------------------------------ message status


def test_message_record_has_exact_fields_and_parts(sandbox: Sandbox) -> None:
    request_id = send(sandbox, message="x" * 200).json()["data"]["requestId"]
    message = look_up(sandbox, request_id).json()["data"]
    assert set(message) == MESSAGE_FIELDS
    assert message["href"] == f"/messaging/v1/messages/{request_id}"
    assert message["size"] == len(message["parts"]) == 2
    assert TIMESTAMP.match(message["submitDate"])
    assert message["sentDate"] is None
    assert message["doneDate"] is None


def test_status_moves_accepted_buffered_final_and_then_stays(sandbox: Sandbox) -> None:
    request_id = send(sandbox).json()["data"]["requestId"]
    seen = [look_up(sandbox, request_id).json()["data"] for _ in range(5)]
    statuses = [m["status"] for m in seen]
    assert statuses[:2] == ["ACCEPTED", "BUFFERED"]
    assert statuses[2] in {"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"}
    assert seen[2] == seen[3] == seen[4]
    assert seen[1]["sentDate"] and re.match(r"^-?\d+\.\d{4}$", seen[1]["overallPrice"])
    assert TIMESTAMP.match(seen[2]["doneDate"])


def test_error_fields_set_only_for_undelivered_final_states(sandbox: Sandbox) -> None:
    messages = [sandbox.message(i) for i in sandbox.add_messages(300, final=True)]
    statuses = {m["status"] for m in messages}
    assert "DELIVERED" in statuses and len(statuses) > 1
    for m in messages:
        failed = m["status"] != "DELIVERED"
        assert (m["errorCode"] is not None) == failed
        assert (m["errorReason"] is not None) == failed


def test_some_messages_spell_part_sent_date_as_send_date(sandbox: Sandbox) -> None:
    messages = [sandbox.message(i) for i in sandbox.add_messages(300, final=True)]
    spellings = {("sendDate" in m["parts"][0], "sentDate" in m["parts"][0]) for m in messages}
    assert spellings == {(True, False), (False, True)}


def test_unknown_message_id_answers_404_problem_document(sandbox: Sandbox) -> None:
    response = look_up(sandbox, "00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["status"] == "404"
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


def test_lookups_do_not_advance_when_disabled() -> None:
    with Sandbox(advance_on_lookup=False) as sb:
        (request_id,) = sb.add_messages(1)
        statuses = {look_up(sb, request_id).json()["data"]["status"] for _ in range(3)}
    assert statuses == {"ACCEPTED"}


# ------------------------------------------------------------------------------ faults


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=1, retry_after="3")
    response = get(sandbox, CONTACTS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["status"] == "429"
    assert get(sandbox, CONTACTS).status_code == 200


def test_server_error_on_sms_endpoint_is_problem_document(sandbox: Sandbox) -> None:
    sandbox.inject("messages", Fault.SERVER_ERROR, times=1)
    response = look_up(sandbox, "anything")
    assert response.status_code == 500
    assert response.json()["status"] == "500"


def test_server_error_on_byon_endpoint_has_code_message_timestamp(sandbox: Sandbox) -> None:
    sandbox.inject("phones", Fault.SERVER_ERROR, times=1, status=503)
    response = get(sandbox, PHONES)
    assert response.status_code == 503
    assert set(response.json()) == {"code", "message", "timestamp"}


def test_html_200_answers_maintenance_page(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.HTML_200, times=1)
    response = get(sandbox, CONTACTS)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "maintenance" in response.text


def test_malformed_json_is_truncated_json_with_json_content_type(sandbox: Sandbox) -> None:
    sandbox.inject("registrations", Fault.MALFORMED_JSON, times=1)
    response = get(sandbox, REGISTRATIONS)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


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
    assert response.status_code == 200
    assert response.json()["data"]


def test_no_data_key_wraps_records_under_another_key(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.NO_DATA_KEY, times=1)
    body = get(sandbox, CONTACTS).json()
    assert "data" not in body
    assert len(body["result"]) == 40


def test_wrong_shape_answers_object_where_list_expected(sandbox: Sandbox) -> None:
    sandbox.inject("contacts", Fault.WRONG_SHAPE, times=1)
    assert isinstance(get(sandbox, CONTACTS).json()["data"], dict)


def test_fault_applies_before_auth_and_is_counted(sandbox: Sandbox) -> None:
    before = len(sandbox.sent)
    sandbox.inject("sms", Fault.RATE_LIMIT)
    assert get(sandbox, SMS, headers={}).status_code == 429
    assert send(sandbox).status_code == 429
    assert sandbox.count("sms") == 2
    assert len(sandbox.sent) == before


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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_and_exits_cleanly_on_signal(signum: int) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "messaging_assets.sandbox", "--port", str(port), "--contacts", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no output from the sandbox process"
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"sandbox listening on http://127.0.0.1:{port}"
        response = requests.get(f"http://127.0.0.1:{port}{CONTACTS}", headers=AUTH, timeout=5)
        assert len(response.json()["data"]) == 5
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
