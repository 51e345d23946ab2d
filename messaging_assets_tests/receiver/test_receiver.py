"""The receiver as the provider meets it: `python -m messaging_assets.receiver` in its own process
on a free port, real HTTP, real files read back with the landing helpers the loader uses."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import receiver as bench_receiver
from messaging_assets.definitions import defs
from messaging_assets.defs.jobs import pushed_data_job
from messaging_assets.receiver import landing
from messaging_assets.receiver.__main__ import main
from messaging_assets.receiver.settings import receiver_settings
from messaging_assets.settings import SettingError
from messaging_assets_tests.conftest import (
    REPO_ROOT,
    TOKEN,
    Landing,
    Receiver,
    Warehouse,
    both_destinations,
    free_port,
    request,
)

PREVIOUS_TOKEN = secrets.token_urlsafe(32)
REPORT = {"requestId": "r-1", "status": "DELIVERED", "reference": "order-1", "errorCode": "0"}
INBOUND = {
    "requestId": "in-1",
    "from": "+4915112345678",
    "to": "+4915187654321",
    "message": "Hallo, grüße aus Köln",
    "missingParts": False,
    "contentList": [{"msgId": "m-1", "sentDate": "2026-03-01T10:00:00+0100", "sequenceNumber": 1}],
    "totalPrice": -0.005,
}


def raw(port: int, sent: str) -> bytes:
    """What the receiver answers to these bytes, up to the end of its answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(sent.replace("\r\n", "\r\nHost: x\r\n", 1).encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (received := sock.recv(4096)):
            answer += received
        return answer


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver for the module's tests, with short timeouts and few connections."""
    root = tmp_path_factory.mktemp("receiver")
    shared = Receiver(
        root / "landing",
        root / "receiver.log",
        previous_token=PREVIOUS_TOKEN,
        keep_alive_seconds="1",
        read_timeout_seconds="1.5",
        max_concurrency="50",
    ).start()
    yield shared
    shared.stop()


def test_acknowledged_events_are_in_the_landing_files(receiver: Receiver):
    provider_report = json.dumps(REPORT).encode()
    seed_report = json.dumps({"data": {**REPORT, "requestId": "r-2"}}).encode()
    inbound = json.dumps(INBOUND, ensure_ascii=False).encode()

    answers = [
        receiver.post("delivery-reports", provider_report),
        receiver.post("delivery-reports", seed_report),
        receiver.post("inbound-messages", inbound),
    ]

    assert [a.status for a in answers] == [204, 204, 204]
    reports = {e.body: e for e in receiver.events(landing.DELIVERY_REPORTS)}
    (landed,) = [e for e in receiver.events(landing.INBOUND_MESSAGES) if e.body == inbound]
    for body in (provider_report, seed_report):
        assert reports[body].readable and reports[body].problem is None
        assert reports[body].endpoint == "delivery_reports"
    assert landed.readable and landed.endpoint == "inbound_messages"
    assert json.loads(landed.text)["message"] == "Hallo, grüße aus Köln"
    assert landed.received_at.utcoffset().total_seconds() == 0
    assert abs(time.time() - landed.received_at.timestamp()) < 60


def test_a_body_that_is_not_what_was_expected_is_landed_unreadable_and_acknowledged(
    receiver: Receiver,
):
    sent = {
        b"not json at all": "not JSON: Expecting value at line 1 column 1",
        b'[{"requestId": "r-3"}]': "JSON an array, not an object",
        b'{"status": "DELIVERED"}': "no requestId at the root or under data",
        b'{"requestId": 7}': "requestId is not a non-empty string: 7",
        b"": "empty body",
        b"[" * 60000: "not JSON: nested too deeply",
        b'\xff\xfe{"requestId": "r-4"}': "not UTF-8 (byte 0)",
    }

    statuses = [receiver.post("delivery-reports", body).status for body in sent]

    assert statuses == [204] * len(sent)
    landed = {e.body: e for e in receiver.events(landing.DELIVERY_REPORTS)}
    assert {body: landed[body].problem for body in sent} == sent
    assert not any(landed[body].readable for body in sent)
    # A body that is not UTF-8 is kept byte for byte, in base64.
    (path,) = [p for p in landing.list_files(receiver.landing, "delivery_reports")
               if landed[b'\xff\xfe{"requestId": "r-4"}'].file == p.name]  # fmt: skip
    assert '"body_base64":"//57InJlcXVlc3RJZCI6ICJyLTQifQ=="' in path.read_text()
    inbound = receiver.post("inbound-messages", b'{"data": {"requestId": "in-2"}}')
    assert inbound.status == 204
    assert receiver.events(landing.INBOUND_MESSAGES)[-1].problem == "no requestId"


def test_a_wrong_missing_or_partial_token_gets_the_same_404_and_stores_nothing(
    receiver: Receiver,
):
    before = receiver.stored()
    paths = [
        f"/{secrets.token_urlsafe(32)}/delivery-reports",  # wrong, same length
        "/delivery-reports",  # missing
        "//delivery-reports",  # empty
        f"/{TOKEN[:-1]}/delivery-reports",  # a prefix
        f"/{TOKEN[:8]}/delivery-reports",
        f"/{TOKEN}x/inbound-messages",  # one character more
        f"/{TOKEN.upper()}/inbound-messages",
        f"/{TOKEN}/delivery-reports/",  # a trailing slash is no redirect
        f"/{TOKEN}",
        "/",
    ]

    answers = [request(receiver.port, path, json.dumps(REPORT).encode()) for path in paths]

    assert {a.status for a in answers} == {404}
    assert {a.body for a in answers} == {b"Not Found"}
    assert (
        len({tuple(sorted((k, v) for k, v in a.headers.items() if k != "date")) for a in answers})
        == 1
    )
    assert receiver.stored() == before


def test_the_previous_token_is_accepted_during_rotation(receiver: Receiver):
    body = json.dumps({**REPORT, "requestId": "r-previous"}).encode()

    answer = receiver.post("delivery-reports", body, token=PREVIOUS_TOKEN)

    assert answer.status == 204
    assert body in {e.body for e in receiver.events(landing.DELIVERY_REPORTS)}


def test_a_body_over_the_limit_gets_413_and_stores_nothing(receiver: Receiver):
    before = receiver.stored()
    path = f"/{TOKEN}/delivery-reports"
    # The receiver answers and closes as soon as it knows: these clients then send nothing more,
    # so that the answer is never lost to a reset of a connection still sending.
    declared = raw(receiver.port, f"POST {path} HTTP/1.1\r\nContent-Length: 65537\r\n\r\n")
    # A chunked body declares no length: it is counted as it arrives.
    chunked = raw(
        receiver.port,
        f"POST {path} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        f"8000\r\n{'y' * 0x8000}\r\n8001\r\n{'y' * 0x8001}",
    )

    assert declared.startswith(b"HTTP/1.1 413 ")
    assert chunked.startswith(b"HTTP/1.1 413 ")
    assert receiver.stored() == before
    assert receiver.post("delivery-reports", b"z" * 65536).status == 204
    assert receiver.stored() == before + 1


def test_other_methods_get_405_whatever_the_token(receiver: Receiver):
    before = receiver.stored()

    answers = [
        request(receiver.port, f"/{token}/{endpoint}", method=method)
        for token in (TOKEN, "not-the-token")
        for endpoint in ("delivery-reports", "inbound-messages")
        for method in ("GET", "PUT", "DELETE", "PATCH")
    ]

    assert {(a.status, a.headers["allow"]) for a in answers} == {(405, "POST")}
    assert receiver.stored() == before


def test_idle_and_slow_clients_are_cut_off(receiver: Receiver):
    """keep-alive 1 s, a request must arrive whole within 1.5 s of its first byte."""
    before = receiver.stored()
    head = f"POST /{TOKEN}/inbound-messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"

    def closed_after(first: bytes, trickle: bytes = b"") -> float:
        """Seconds until the receiver closed the connection."""
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
            began = time.monotonic()
            sock.sendall(first)
            try:
                for byte in trickle:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.3)
                assert sock.recv(100) == b""
            except ConnectionError:  # closed while the client was still sending
                pass
            return time.monotonic() - began

    assert 0.9 < closed_after(b"") < 5  # a new connection that never sends a request
    assert 1.4 < closed_after(b"POST /x/inbound-messages HTTP/1.1\r\nHost") < 5  # a stalled head
    assert 1.4 < closed_after(head.encode(), trickle=b"{" * 100) < 5  # a body that trickles
    assert receiver.stored() == before


def test_a_request_head_over_16_kib_gets_400(receiver: Receiver):
    answer = request(
        receiver.port, f"/{TOKEN}/inbound-messages", b"{}", headers={"x-padding": "p" * 17000}
    )

    assert answer.status == 400


def test_beyond_the_concurrency_limit_the_answer_is_503(receiver: Receiver):
    """50 connections at most (idle keep-alive ones count too), then 503 until some close."""
    idle = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(50)]
    try:
        time.sleep(0.3)
        refused = receiver.post("inbound-messages", json.dumps(INBOUND).encode())
    finally:
        for sock in idle:
            sock.close()

    assert refused.status == 503
    deadline = time.monotonic() + 10
    while receiver.post("inbound-messages", json.dumps(INBOUND).encode()).status != 204:
        assert time.monotonic() < deadline, "still 503 once the idle connections closed"
        time.sleep(0.1)


def test_concurrent_requests_share_landed_files(receiver: Receiver):
    files_before = {p.name for p in landing.list_files(receiver.landing, "delivery_reports")}
    ids = [[f"c-{client}-{n}" for n in range(15)] for client in range(20)]

    def client(mine: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
        for request_id in mine:
            body = json.dumps({**REPORT, "requestId": request_id})
            connection.request("POST", f"/{TOKEN}/delivery-reports", body=body)
            response = connection.getresponse()
            response.read()
            assert response.status == 204
        connection.close()

    threads = [threading.Thread(target=client, args=(mine,)) for mine in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    new_files = [p for p in landing.list_files(receiver.landing, "delivery_reports")
                 if p.name not in files_before]  # fmt: skip
    landed = [json.loads(e.body)["requestId"] for p in new_files for e in landing.read_file(p)]
    assert sorted(landed) == sorted(i for mine in ids for i in mine)
    assert len(new_files) < len(landed) / 2


def test_the_token_is_in_no_log_line_and_no_landed_file(receiver: Receiver):
    # Every kind of answer once more, then everything the receiver wrote is read.
    receiver.post("delivery-reports", json.dumps(REPORT).encode())
    raw(receiver.port, f"POST /{TOKEN}/delivery-reports HTTP/1.1\r\nContent-Length: 70000\r\n\r\n")
    receiver.post("delivery-reports", b"{}", token=TOKEN[:-1])
    receiver.post("delivery-reports", b"{}", token=PREVIOUS_TOKEN)
    request(receiver.port, f"/{TOKEN}/inbound-messages", method="GET")
    request(receiver.port, f"/{TOKEN}", method="GET")
    request(receiver.port, f"/{TOKEN}/inbound-messages?{TOKEN}", b"{}")

    log = receiver.logs.read_text()
    landed = [p.name + p.read_text() for p in receiver.landing.rglob("*") if p.is_file()]

    assert '"POST /***/delivery-reports" 204' in log
    assert '"POST /***/delivery-reports" 413' in log
    assert '"GET /***" 404' in log
    for secret in (TOKEN, PREVIOUS_TOKEN):
        for fragment in (secret, secret[:12], secret[-12:]):
            assert fragment not in log
            assert not any(fragment in text for text in landed)


@pytest.mark.e2e
@both_destinations
def test_after_a_sigkill_mid_burst_every_acknowledged_event_is_in_the_warehouse_once(
    sandbox, destination, instance, landed: Landing, warehouse: Warehouse, tmp_path: Path
):
    """Clients that retry until a 2xx, as the provider does; the receiver killed mid-burst and
    started again; then the job the landed-files sensor launches loads the landing zone."""
    receiver = Receiver(landed.root, tmp_path / "receiver.log").start()
    # Each client alternates: a delivery report, then an inbound message in two parts.
    events = [[(n % 2, f"k-{client}-{n:02d}") for n in range(40)] for client in range(8)]
    acknowledged: list[tuple[int, str]] = []

    def body(inbound: int, request_id: str) -> bytes:
        if not inbound:
            return json.dumps({**REPORT, "requestId": request_id}).encode()
        parts = [{"msgId": f"{request_id}/{n}", "sequenceNumber": n} for n in (1, 2)]
        return json.dumps({**INBOUND, "requestId": request_id, "contentList": parts}).encode()

    def client(mine: list[tuple[int, str]]) -> None:
        for inbound, request_id in mine:
            endpoint = "inbound-messages" if inbound else "delivery-reports"
            while True:
                try:
                    if receiver.post(endpoint, body(inbound, request_id)).status == 204:
                        acknowledged.append((inbound, request_id))
                        break
                except OSError:
                    pass
                time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in events]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 100:
        time.sleep(0.005)
    receiver.kill()
    at_kill = len(acknowledged)
    receiver.start()
    for thread in threads:
        thread.join(timeout=120)
    assert receiver.stop() == 0
    # A file half-written when a receiver died, as a crash leaves it: never data.
    half = landing.temporary_name("20260101T000000.000000Z-0badcafe_1-000001.jsonl")
    (landed.root / "inbound_messages" / half).write_text('{"received_at": "2026')

    result = defs.resolve_job_def(pushed_data_job.name).execute_in_process(instance=instance)

    assert result.success
    assert at_kill < len(acknowledged) == 320
    reports = sorted(request_id for inbound, request_id in acknowledged if not inbound)
    inbound = sorted(request_id for inbound, request_id in acknowledged if inbound)
    ids = "SELECT request_id FROM messaging.{} ORDER BY 1"
    assert [row[0] for row in warehouse.rows(ids.format("delivery_reports"))] == reports
    assert [row[0] for row in warehouse.rows(ids.format("messages"))] == reports
    assert [row[0] for row in warehouse.rows(ids.format("inbound_messages"))] == inbound
    assert warehouse.rows(
        "SELECT msg_id FROM messaging.inbound_messages__content_list ORDER BY 1"
    ) == [(f"{request_id}/{n}",) for request_id in inbound for n in (1, 2)]
    assert "unreadable_events" not in warehouse.tables()


@pytest.mark.e2e
def test_the_bench_scenario_measures_the_floor_and_the_receiver():
    figures = bench_receiver.scenario(events=200, repeats=1)

    assert figures["floor"]["files"]["median"] == 200
    assert figures["receiver"]["files"]["median"] < 200
    assert figures["receiver"]["ratio"]["median"] > 0
    assert "| receiver (group commit) |" in "\n".join(bench_receiver.table(figures))


def test_landing_names_and_lines_round_trip(tmp_path: Path):
    from datetime import datetime, timezone

    from messaging_assets.receiver.storage import LocalFolder

    written_at = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    name = landing.file_name(written_at, "00ff00ff_42", 7)
    lines = landing.event_line(written_at, "inbound_messages", b"\x00\xff", "not UTF-8 (byte 1)")
    lines += landing.event_line(written_at, "inbound_messages", '{"a": "\u2028"}'.encode(), None)

    LocalFolder(tmp_path, landing.ENDPOINTS).write("inbound_messages", name, lines)

    assert name == "20260301T100000.123456Z-00ff00ff_42-000007.jsonl"
    assert lines.isascii() and lines.count(b"\n") == 2
    (first, second) = landing.read(tmp_path, "inbound_messages")
    assert (first.body, first.readable, first.text) == (b"\x00\xff", False, None)
    assert (second.body, second.problem, second.received_at) == (
        '{"a": "\u2028"}'.encode(),
        None,
        written_at,
    )
    assert os.listdir(tmp_path / "inbound_messages") == [name]


def test_the_landing_summary_counts_files_events_and_unreadable_ones(tmp_path: Path):
    from datetime import datetime, timezone

    from messaging_assets.receiver.storage import LocalFolder

    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    folder = LocalFolder(tmp_path, landing.ENDPOINTS)
    for sequence, problem in enumerate((None, "empty body"), start=1):
        line = landing.event_line(now, "delivery_reports", b"{}", problem)
        folder.write("delivery_reports", landing.file_name(now, "00ff00ff_42", sequence), line)

    assert landing.summary(tmp_path) == [
        f"{tmp_path}:",
        "  endpoint                   files  events  unreadable",
        "  delivery_reports               2       2           1",
        "  inbound_messages               0       0           0",
    ]


# ------------------------------------------------------------------------------------ settings


@pytest.mark.e2e
def test_the_receiver_refuses_to_start_without_a_token_or_with_a_short_one(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__MESSAGING__")}
    # dlt reads no secret from config.toml: a token there is refused, not ignored.
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        f'[sources.messaging.receiver]\ntoken = "{"short-secret-" * 4}"\n'
    )
    cases = {
        "SOURCES__MESSAGING__RECEIVER__TOKEN is not set": (env, REPO_ROOT),
        "SOURCES__MESSAGING__RECEIVER__TOKEN: expected at least 32 characters": (
            {**env, "SOURCES__MESSAGING__RECEIVER__TOKEN": "short-secret-1234"},
            REPO_ROOT,
        ),
        "SOURCES__MESSAGING__RECEIVER__TOKEN: found in config.toml": (env, tmp_path),
    }
    # Side by side: each start imports the project (seconds).
    started = {
        said: subprocess.Popen(
            [sys.executable, "-m", "messaging_assets.receiver", "--port", str(free_port())],
            cwd=cwd,
            env={**case, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for said, (case, cwd) in cases.items()
    }

    for said, process in started.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 1
        assert out == ""
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"messaging receiver: {said}")
        assert "short-secret" not in err


def test_the_receiver_refuses_to_start_where_it_cannot_write(monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__LANDING_URL", "pyproject.toml/landing")

    assert main([]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "messaging receiver: SOURCES__MESSAGING__RECEIVER__LANDING_URL='pyproject.toml/landing': "
        "cannot write there (Not a directory).\n"
    )


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("previous_token", "x" * 31, "PREVIOUS_TOKEN: expected at least 32 characters"),
        ("token", "a/b" * 11, "TOKEN: expected only letters, digits and - . _ ~"),
        ("max_body_bytes", "0", "MAX_BODY_BYTES=0: expected a whole number of 1 or more"),
        ("max_body_bytes", "lots", "MAX_BODY_BYTES='lots': expected a whole number"),
        ("read_timeout_seconds", "0", "READ_TIMEOUT_SECONDS=0.0: expected a number of seconds"),
        ("commit_window_ms", "5000", "COMMIT_WINDOW_MS=5000.0: expected milliseconds from 0"),
        ("landing_url", "ftp://host/landing", "LANDING_URL='ftp://host/landing': expected a"),
        ("landing_url", "s3:///landing", "LANDING_URL='s3:///landing': expected a local folder"),
    ],
)
def test_a_wrong_receiver_setting_is_one_line_naming_it(monkeypatch, name, value, said):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv(f"SOURCES__MESSAGING__RECEIVER__{name.upper()}", value)

    with pytest.raises(SettingError) as refused:
        receiver_settings()

    assert f"SOURCES__MESSAGING__RECEIVER__{said}" in str(refused.value)
    assert "\n" not in str(refused.value)
    if "token" in name:
        assert value not in str(refused.value)


def test_urls_prints_the_two_urls_to_register(monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__PUBLIC_URL", "https://hooks.example.com/sms/")

    assert main(["urls"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"delivery reports: https://hooks.example.com/sms/{TOKEN}/delivery-reports",
        f"inbound messages: https://hooks.example.com/sms/{TOKEN}/inbound-messages",
    ]


@pytest.mark.parametrize(
    ("public_url", "said"),
    [
        (None, "SOURCES__MESSAGING__RECEIVER__PUBLIC_URL is not set"),
        ("http://hooks.example.com", "PUBLIC_URL='http://hooks.example.com': expected an https"),
    ],
)
def test_urls_without_a_public_https_url_is_one_line_naming_it(
    monkeypatch, capsys, public_url, said
):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    if public_url:
        monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__PUBLIC_URL", public_url)

    assert main(["urls"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert said in err and len(err.strip().splitlines()) == 1
    assert TOKEN not in err
