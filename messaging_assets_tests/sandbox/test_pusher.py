"""The sandbox pushes as the provider does: a send's delivery reports to its callbackUrl as the
message moves on, inbound messages on request, each retried until answered 2xx. Those that land
go to the real receiver (`python -m messaging_assets.receiver` on a free port) and are read back
from its landing files."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from messaging_assets.receiver import landing
from messaging_assets.sandbox import ReportTiming, RetrySchedule, Sandbox, wait
from messaging_assets.sandbox.__main__ import parse_args
from messaging_assets.sandbox.wait import wait_until_pushed
from messaging_assets_tests.conftest import TOKEN, Receiver, Warehouse, free_port

KEY = "sandbox-key"
SMS = "/messaging/v1/sms"
FINAL = {"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"}
# Everything in tenths of a second; seed 7's second send is bound to expire (BUFFERED first).
FAST = ReportTiming(accepted_after=0.05, changed_after=0.1, expired_after=0.2)
# No pause after 100 failures (10 s of them, while a slow machine starts the receiver), and a
# generous timeout: an answer given after it would make the push land twice.
QUICK_RETRIES = RetrySchedule(every=0.1, pause=0.1, timeout=10)


def send(sandbox: Sandbox, callback: str | None, method: str | None = None) -> str:
    params = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}
    if callback:
        params["callbackUrl"] = callback
    if method:
        params["callbackMethod"] = method
    headers = {sandbox.api_key_header: KEY}
    answer = requests.get(sandbox.url + SMS, params=params, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return (body if sandbox.shape == "provider" else body["data"])["requestId"]


def look_up(sandbox: Sandbox, request_id: str) -> dict[str, Any]:
    headers = {sandbox.api_key_header: KEY}
    answer = requests.get(
        f"{sandbox.url}/messaging/v1/messages/{request_id}", headers=headers, timeout=10
    )
    body = answer.json()
    return body if sandbox.shape == "provider" else body["data"]


def landed(receiver: Receiver, endpoint: landing.Endpoint) -> list[Any]:
    events = receiver.events(endpoint)
    assert all(event.readable for event in events)
    return [json.loads(event.body) for event in events]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    root = tmp_path_factory.mktemp("receiver")
    started = Receiver(root / "landing", root / "receiver.log").start()
    yield started
    started.stop()


def url(receiver: Receiver, path: str) -> str:
    return f"http://127.0.0.1:{receiver.port}/{TOKEN}/{path}"


@pytest.mark.e2e
@pytest.mark.parametrize("shape", ["provider", "data"])
def test_a_send_with_a_callback_has_each_state_pushed_and_landed(receiver: Receiver, shape: str):
    with Sandbox(shape=shape, report_timing=FAST, retry=QUICK_RETRIES) as sandbox:
        before = len(receiver.events(landing.DELIVERY_REPORTS))
        sent = [send(sandbox, url(receiver, "delivery-reports")) for _ in range(2)]
        wait_until_pushed(sandbox.url, timeout=30)
        reports = landed(receiver, landing.DELIVERY_REPORTS)[before:]
        # At the root in the provider's shape, under `data` in the neutral one.
        statuses = [r if shape == "provider" else r["data"] for r in reports]
        states = {rid: [s for s in statuses if s["requestId"] == rid] for rid in sent}
        looked_up = {rid: look_up(sandbox, rid) for rid in sent}

    assert len(reports) == 5
    delivered, expired = (states[rid] for rid in sent)
    assert [s["status"] for s in delivered] == ["ACCEPTED", "DELIVERED"]
    assert [s["status"] for s in expired] == ["ACCEPTED", "BUFFERED", "EXPIRED"]
    # Each report is the status as a look-up answers it then, and the last one what it answers
    # now: the message moved on with its pushes, and a look-up does not move it further.
    assert delivered[0]["submitDate"] == delivered[1]["submitDate"]
    assert "doneDate" not in delivered[0] and "doneDate" in delivered[1]
    assert all(looked_up[rid] == states[rid][-1] for rid in sent)


@pytest.mark.e2e
def test_pushes_are_retried_until_answered_2xx_and_none_is_lost(tmp_path: Path):
    down = Receiver(tmp_path / "landing", tmp_path / "receiver.log")  # not started yet
    with Sandbox(shape="provider", report_timing=FAST, retry=QUICK_RETRIES) as sandbox:
        sandbox.inbound_url = url(down, "inbound-messages")
        sent = send(sandbox, url(down, "delivery-reports"))
        pushed = sandbox.push_inbound(2)
        deadline = time.monotonic() + 30
        while len([a for a in sandbox.pushes if a.push == 1]) < 4:
            assert time.monotonic() < deadline, "the first push was not tried 4 times"
            time.sleep(0.05)

        down.start()
        try:
            wait_until_pushed(sandbox.url, timeout=30)
        finally:
            down.stop()
        attempts = sandbox.pushes

    reports = landed(down, landing.DELIVERY_REPORTS)
    assert sorted(r["status"] for r in reports) == ["ACCEPTED", "DELIVERED"]
    assert {r["requestId"] for r in reports} == {sent}
    inbound = landed(down, landing.INBOUND_MESSAGES)
    assert sorted(map(json.dumps, inbound)) == sorted(map(json.dumps, pushed))
    # The first push (the ACCEPTED report): refused while the receiver was down, every 0.1 s,
    # until its 204.
    first = [a for a in attempts if a.push == 1]
    assert [a.status for a in first] == [0] * (len(first) - 1) + [204]
    assert len(first) > 4
    assert all(b.at - a.at >= 0.1 for a, b in itertools.pairwise(first))


def test_after_pause_after_failures_in_a_row_a_push_pauses_then_goes_on():
    closed = f"http://127.0.0.1:{free_port()}/delivery-reports"
    retry = RetrySchedule(every=0.02, pause_after=3, pause=1, timeout=1)
    # One push: the ACCEPTED report; the next state is a minute away.
    with Sandbox(report_timing=ReportTiming(0, 60), retry=retry) as sandbox:
        send(sandbox, closed)
        deadline = time.monotonic() + 10
        while len(sandbox.pushes) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        attempts = sandbox.pushes[:5]

    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert [(a.push, a.attempt, a.status) for a in attempts] == [(1, n, 0) for n in range(1, 6)]
    assert gaps[2] >= 1 and max(gaps[:2] + gaps[3:]) < 1


def test_a_push_never_answered_2xx_is_given_up_after_give_up_after():
    closed = f"http://127.0.0.1:{free_port()}/inbound-messages"
    retry = RetrySchedule(every=0.05, give_up_after=0.3, timeout=1)
    with Sandbox(inbound_url=closed, retry=retry) as sandbox:
        sandbox.push_inbound(1)  # two pushes: the message, and the same again
        time.sleep(1)
        stats = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()["pushes"]
        attempts = sandbox.pushes
        time.sleep(0.3)
        later = sandbox.pushes

    assert (stats["given_up"], stats["waiting"], stats["delivered"]) == (2, 0, 0)
    # None after 0.3 s: at most one attempt then every 0.05 s after the first.
    assert {a.push for a in attempts} == {1, 2} and max(a.attempt for a in attempts) <= 7
    assert later == attempts


@pytest.mark.e2e
def test_inbound_messages_land_multi_part_duplicated_and_out_of_order(receiver: Receiver):
    with Sandbox(inbound_url=url(receiver, "inbound-messages"), retry=QUICK_RETRIES) as sandbox:
        before = len(receiver.events(landing.INBOUND_MESSAGES))
        pushed = sandbox.push_inbound(3)
        wait_until_pushed(sandbox.url, timeout=30)
        messages = landed(receiver, landing.INBOUND_MESSAGES)[before:]

    assert messages == pushed
    newest, single, oldest, again = messages
    assert again == newest  # the same message twice
    assert newest["contentList"][0]["sentDate"] > oldest["contentList"][0]["sentDate"]
    # Three parts, listed last first; the second of three never arrived.
    assert [p["sequenceNumber"] for p in oldest["contentList"]] == [3, 2, 1]
    assert (newest["missingParts"], newest["size"], len(newest["contentList"])) == (True, 3, 2)
    assert "<...>" in newest["message"] and "<...>" not in oldest["message"]
    assert (single["size"], single["missingParts"]) == (1, False)
    for message in messages:
        assert isinstance(message["totalPrice"], float)
        assert all(isinstance(part["price"], float) for part in message["contentList"])
        assert all(part["sentDate"].endswith("+0200") for part in message["contentList"])
        assert message["originMNC"].startswith("0") and message["originMCC"].isdigit()
        assert isinstance(message["originTtId"], str)


def test_inbound_messages_are_pushed_on_request_over_http():
    closed = f"http://127.0.0.1:{free_port()}/inbound-messages"
    with Sandbox(inbound_url=closed) as sandbox, Sandbox() as without:
        pushed = requests.post(f"{sandbox.url}/_sandbox/inbound-messages?count=2", timeout=5)
        refused = requests.post(f"{without.url}/_sandbox/inbound-messages", timeout=5)
        waiting = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()["pushes"]

    ids = pushed.json()["pushed"]
    assert pushed.status_code == 200 and len(ids) == 3 and ids[0] == ids[-1]
    assert waiting["waiting"] == 3
    assert refused.status_code == 409
    assert "--inbound-url" in refused.json()["detail"]


def test_a_pushed_message_moves_on_with_its_pushes_only():
    closed = f"http://127.0.0.1:{free_port()}/delivery-reports"
    later = ReportTiming(accepted_after=60)
    with Sandbox(shape="provider", report_timing=later) as sandbox:
        pushed = send(sandbox, closed)
        polled = send(sandbox, None)
        statuses = [(look_up(sandbox, pushed)["status"], look_up(sandbox, polled)["status"])]
        statuses.append((look_up(sandbox, pushed)["status"], look_up(sandbox, polled)["status"]))

    assert statuses == [("ACCEPTED", "ACCEPTED"), ("ACCEPTED", "BUFFERED")]


def test_a_get_callback_or_none_pushes_nothing():
    closed = f"http://127.0.0.1:{free_port()}/delivery-reports"
    with Sandbox(report_timing=FAST) as sandbox:
        send(sandbox, closed, method="GET")
        send(sandbox, None)
        time.sleep(0.5)
        pushes = sandbox.pushes

    assert pushes == []


def test_a_callback_url_that_is_not_http_is_refused_and_not_billed():
    with Sandbox() as sandbox:
        params = {"to": "+4915112345678", "from": "ACME", "callbackUrl": "ftp://example.com/r"}
        answer = requests.get(
            sandbox.url + SMS, params=params, headers={"api_key": KEY}, timeout=10
        )
        sent = sandbox.sent

    assert answer.status_code == 400
    assert answer.json()["detail"] == "callbackUrl must be an http or https URL"
    assert sent == []


def test_stopping_the_sandbox_stops_its_pushes_at_once():
    closed = f"http://127.0.0.1:{free_port()}/delivery-reports"
    sandbox = Sandbox(report_timing=FAST, retry=QUICK_RETRIES).start()
    send(sandbox, closed)
    time.sleep(0.3)

    started = time.monotonic()
    sandbox.stop()
    stopped = time.monotonic() - started
    count = len(sandbox.pushes)
    time.sleep(0.3)

    assert sandbox.pushes and len(sandbox.pushes) == count
    assert stopped < 2
    assert not [t for t in threading.enumerate() if t.name.startswith("sandbox-pushes-")]


def test_command_line_sets_the_pushes():
    args = parse_args(
        ["--inbound-url", "http://127.0.0.1:1/t/inbound-messages", "--accepted-after", "0.5",
         "--changed-after", "2", "--expired-after", "30", "--retry-every", "1",
         "--retry-pause-after", "5", "--retry-pause", "3", "--retry-give-up-after", "60"]
    )  # fmt: skip

    assert args.inbound_url == "http://127.0.0.1:1/t/inbound-messages"
    assert (args.accepted_after, args.changed_after, args.expired_after) == (0.5, 2, 30)
    assert (args.retry_every, args.retry_pause_after, args.retry_pause) == (1, 5, 3)
    assert args.retry_give_up_after == 60


@pytest.mark.e2e
def test_stop_replies_pushed_by_the_sandbox_opt_their_numbers_out_and_near_misses_do_not(
    receiver: Receiver, run, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
):
    replies = {
        "+4915199990001": "STOP",
        "+4915199990002": "stop it!",
        "+4915199990003": "Stopp",
        "+4915199990004": "please STOP sending these",
    }
    with Sandbox(inbound_url=url(receiver, "inbound-messages"), retry=QUICK_RETRIES) as sandbox:
        # As `make demo` has it push them.
        pushes = [f"--reply={number}:{text}" for number, text in replies.items()]
        wait.main([sandbox.url, *pushes, "--pushed"])
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__LANDING_URL", str(receiver.landing))

    run("inbound_messages", "opt_outs")

    assert warehouse.rows(
        "SELECT phone_number, keyword FROM messaging.opt_outs "
        "WHERE phone_number LIKE '+491519999%' AND opted_out ORDER BY 1"
    ) == [("+4915199990001", "STOP"), ("+4915199990002", "STOP")]


def test_a_reply_without_the_number_replying_is_refused():
    with Sandbox(inbound_url=f"http://127.0.0.1:{free_port()}/inbound-messages") as sandbox:
        refused = requests.post(f"{sandbox.url}/_sandbox/inbound-messages?text=STOP", timeout=5)

    assert refused.status_code == 400
    assert "`from`" in refused.json()["detail"]
