"""A local imitation of the messaging provider's HTTP API, with a request log and fault injection.

Only the standard library: the sandbox must run wherever the project's tests run. What it pushes
(delivery reports, inbound messages) is in pusher.py.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import hmac
import json
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from . import data
from .pusher import (
    PROVIDER_RETRIES,
    REPORT_TIMING,
    PushAttempt,
    Pusher,
    ReportTiming,
    RetrySchedule,
)

Shape = Literal["data", "provider"]
SendAnswer = Literal["object", "empty_201"]
SHAPES: tuple[Shape, ...] = ("data", "provider")
SEND_ANSWERS: tuple[SendAnswer, ...] = ("object", "empty_201")
# The neutral shape names the key header api_key, the provider's published contract apikey.
DEFAULT_KEY_HEADERS: dict[Shape, str] = {"data": "api_key", "provider": "apikey"}


@dataclass(frozen=True)
class ListEndpoint:
    """A full list the sandbox serves: where, and how its records are wrapped and keyed."""

    path: str
    # In the provider's shape a list answer is an array of envelopes holding the records here.
    envelope: str
    # The field that identifies a record (MISSING_KEY and DUPLICATE_KEY spoil it).
    key: str
    # Paged by `page` and `size` in the provider's shape.
    paged: bool = False


# The lists are the BYON endpoints; the provider answers their errors unlike the SMS endpoints'.
LISTS = {
    "contacts": ListEndpoint("/byon/contacts/v1", "contacts", "contactId"),
    "phones": ListEndpoint(
        "/byon/phonebook/v1/numbers", "provisioningRequests", "phoneNumber", paged=True
    ),
    "registrations": ListEndpoint("/byon/provisioning/v1", "provisioningRequests", "requestId"),
}
ENDPOINTS = ("sms", "messages", *LISTS)
RECORD_KEYS = {"sms": "requestId", "messages": "requestId"} | {
    name: endpoint.key for name, endpoint in LISTS.items()
}
# The phone book's page size limit in the provider's contract; it is also the default size.
PAGE_SIZE_LIMIT = 3000
# What a send answers as its message: the message's fields a send already knows.
SEND_ANSWER_FIELDS = ("requestId", "status", "to", "from", "reference", "submitDate")
# A requestId that walks out of the messages path into a billed send if put into a URL path.
HOSTILE_REQUEST_ID = "../sms?to=%2B4915112345678&from=EVIL&message=billed"
# A value `Sandbox.set_field` leaves out of a record.
OMIT = object()

_LIST_PATHS = {"/messaging/v1/sms": "sms"} | {
    endpoint.path: name for name, endpoint in LISTS.items()
}
_MESSAGES_PATH = "/messaging/v1/messages"
_BYON_PREFIX = "/byon/"
STATS_PATH = "/_sandbox/stats"
# POST (count=N, default 3): push N inbound messages to the inbound URL (`make demo`, `make dev`);
# with from=NUMBER&text=TEXT instead, one reply from that number (STOP, START, ...).
INBOUND_PATH = "/_sandbox/inbound-messages"
PROBLEM_BASE = "https://sandbox.local/problems/"
JSON = "application/json"
# Below this size a response goes out in a single write: one syscall, one TCP segment train.
_SINGLE_WRITE_LIMIT = 256 * 1024
_HTML_MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>"
    b"<h1>Scheduled maintenance</h1><p>The service is under maintenance. "
    b"Please try again later.</p></body></html>"
)


class Fault(str, Enum):
    # Failures: they answer instead of the endpoint, before the key is checked, so nothing is
    # sent and no message moves on.
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    HTML_200 = "html_200"
    DROP_CONNECTION = "drop_connection"
    EMPTY_204 = "empty_204"
    # A 200 text/plain echo of the request line and headers, query and key included.
    ECHO_HEADERS = "echo_headers"
    ECHO_HEADERS_PROBLEM = "echo_headers_problem"  # an error whose explanation echoes them
    # Delays the request, which is then served as usual.
    LATENCY = "latency"
    # Spoiled answers: the request is served as usual (key checked, a send billed, a look-up
    # moving its message on), then its 2xx JSON answer is altered. Other answers go out as usual.
    MALFORMED_JSON = "malformed_json"  # the answer cut in half
    BYTE_ORDER_MARK = "byte_order_mark"  # a well-formed answer after a UTF-8 BOM
    NO_DATA_KEY = "no_data_key"  # the records under "result" instead of their key
    WRONG_SHAPE = "wrong_shape"  # an object where a list belongs, or a list for an object
    MISSING_KEY = "missing_key"  # the first record lacks its key (see RECORD_KEYS)
    WRONG_TYPE = "wrong_type"  # an integer `size` arrives as the word "three"
    EXTRA_FIELD = "extra_field"  # the first record carries a field the API did not have before
    UNKNOWN_STATUS = "unknown_status"  # the first record in a status the provider added later
    DUPLICATE_KEY = "duplicate_key"  # lists only: the second record carries the first one's key
    HOSTILE_REQUEST_ID = "hostile_request_id"  # sms only: the send answers HOSTILE_REQUEST_ID
    ODD_VALUE = "odd_value"  # messages only: overallPrice "n/a" and submitDate "yesterday"


_FAILURES = frozenset(
    {
        Fault.RATE_LIMIT,
        Fault.SERVER_ERROR,
        Fault.HTML_200,
        Fault.DROP_CONNECTION,
        Fault.EMPTY_204,
        Fault.ECHO_HEADERS,
        Fault.ECHO_HEADERS_PROBLEM,
    }
)
_FAULT_ENDPOINTS = {
    Fault.DUPLICATE_KEY: frozenset(LISTS),
    Fault.HOSTILE_REQUEST_ID: frozenset({"sms"}),
    Fault.ODD_VALUE: frozenset({"messages"}),
}


def _params(query: str) -> dict[str, str]:
    """Query parameters, the first value of each."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str  # raw query string, as received
    endpoint: str | None
    headers: dict[str, str]  # the API key header's value is replaced by "***"
    status: int  # status answered; 0 while in flight or when the connection was dropped
    received_at: float = 0.0  # time.monotonic() on arrival, to measure waits between retries

    @property
    def params(self) -> dict[str, str]:
        """The decoded query parameters, the first value of each."""
        return _params(self.query)


@dataclass
class _FaultSpec:
    fault: Fault
    remaining: int | None
    retry_after: str
    latency: float
    status: int


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Sequence[bytes | memoryview] = ()  # written in order; empty: no body, no Content-Type
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _joined(runs: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """Runs of comma-joined records, with the commas that go between runs."""
    pieces: list[bytes | memoryview] = []
    for run in runs:
        if pieces:
            pieces.append(b",")
        pieces.append(run)
    return pieces


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _count(params: dict[str, str], name: str, default: int) -> int | None:
    """A non-negative integer parameter, its default when absent, None when it is not one."""
    text = params.get(name)
    if text is None:
        return default
    return int(text) if text.isascii() and text.isdigit() else None


def _route(path: str) -> tuple[str | None, str | None]:
    """Endpoint name and, for message look-ups, the (decoded) request id."""
    if path == _MESSAGES_PATH or path.startswith(_MESSAGES_PATH + "/"):
        rest = path[len(_MESSAGES_PATH) + 1 :]
        # An empty or nested id still counts as a look-up: a client bug should show in count().
        return "messages", unquote(rest) if rest and "/" not in rest else ""
    endpoint = _LIST_PATHS.get(path.rstrip("/") if len(path) > 1 else path)
    return endpoint, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive handler threads would otherwise wait for their client's next request forever.
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is routine here (timeouts in tests), not a bug.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "messaging-sandbox/1.0"
    sys_version = ""
    # Small responses on keep-alive connections would otherwise wait for delayed ACKs (~40 ms).
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped eventually so their threads do not pile up.
    timeout = 300
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # The sandbox's request log replaces the per-request stderr line.
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    do_PUT = do_PATCH = do_DELETE = do_POST

    # ---------------------------------------------------------------- response writing

    def _respond(self, answer: _Answer) -> int:
        status, chunks = answer.status, answer.body
        length = sum(len(c) for c in chunks)
        lines = [
            f"{self.protocol_version} {status} {_phrase(status)}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if status == 204:
            chunks, length = (), 0  # a 204 has neither body nor Content-Length
        else:
            if length:
                lines.append(f"Content-Type: {answer.content_type}")
            lines.append(f"Content-Length: {length}")
        lines += [f"{name}: {value}" for name, value in answer.headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Recorded before the first byte leaves, so a client that has its answer sees it logged.
        if self._token is not None:
            self.server.sandbox._record_status(self._token, status)
        if length <= _SINGLE_WRITE_LIMIT:
            self.wfile.write(b"".join((head, *chunks)))
        else:
            self.wfile.write(head)
            for chunk in chunks:
                self.wfile.write(chunk)
        return status

    # ---------------------------------------------------------------- dispatch

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        self._token: tuple[int, int, str | None] | None = None
        path, _, query = self.path.partition("?")
        if self.command != "GET":
            # Drain any body so the keep-alive connection stays in step.
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
        if path == STATS_PATH and self.command == "GET":
            self._respond(_Answer(200, (_encode(sandbox._stats()),)))
            return
        if path == INBOUND_PATH and self.command == "POST":
            self._respond(sandbox._inbound_answer(_params(query)))
            return
        endpoint, message_id = _route(path)
        token = self._token = sandbox._log_arrival(
            self.command, path, query, endpoint, self.headers.items()
        )
        status = 0
        try:
            status = self._dispatch(sandbox, endpoint, message_id, path, query)
        finally:
            sandbox._log_done(token, status)

    def _dispatch(
        self,
        sandbox: Sandbox,
        endpoint: str | None,
        message_id: str | None,
        path: str,
        query: str,
    ) -> int:
        if endpoint is None:
            byon = path.startswith(_BYON_PREFIX)
            return self._respond(sandbox._error(byon, 404, "No such resource"))
        byon = endpoint in LISTS
        if self.command != "GET":
            self.close_connection = True
            allow = (("Allow", "GET"),)
            return self._respond(sandbox._error(byon, 405, "Only GET is supported", allow))
        delay = sandbox._latency.get(endpoint, 0.0)
        if delay > 0:
            time.sleep(delay)
        spec = sandbox._take_fault(endpoint)
        fault = spec.fault if spec is not None else None
        if spec is not None and fault in _FAILURES:
            return self._fail(sandbox, spec, byon)
        if spec is not None and fault is Fault.LATENCY:
            time.sleep(spec.latency)
            fault = None
        answer = sandbox._answer(
            endpoint, message_id, query, self.headers.get(sandbox.api_key_header)
        )
        answer = sandbox._with_fields(answer, endpoint)
        if fault is not None and 200 <= answer.status < 300 and answer.body:
            answer = sandbox._spoil(answer, endpoint, fault)
        return self._respond(answer)

    def _fail(self, sandbox: Sandbox, spec: _FaultSpec, byon: bool) -> int:
        fault = spec.fault
        if fault is Fault.DROP_CONNECTION:
            # Returning without a byte written and closing is what a crashed upstream looks like.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return 0
        # As a misconfigured gateway would: the request line and every header as received, the
        # query (a send's callbackUrl) and the key included.
        echoed = f"{self.requestline}\n" + "".join(
            f"{name}: {value}\n" for name, value in self.headers.items()
        )
        if fault is Fault.RATE_LIMIT:
            retry_after = (("Retry-After", spec.retry_after),)
            answer = sandbox._error(byon, 429, "Rate limit exceeded", retry_after)
        elif fault is Fault.SERVER_ERROR:
            answer = sandbox._error(byon, spec.status, "Upstream failure")
        elif fault is Fault.ECHO_HEADERS_PROBLEM:
            answer = sandbox._error(byon, 500 if byon else 400, echoed)
        elif fault is Fault.ECHO_HEADERS:
            answer = _Answer(200, (echoed.encode("utf-8"),), "text/plain; charset=utf-8")
        elif fault is Fault.HTML_200:
            answer = _Answer(200, (_HTML_MAINTENANCE,), "text/html; charset=utf-8")
        else:
            answer = _Answer(204)
        return self._respond(answer)


class Sandbox:
    """The sandbox server: start it, point a client at ``url``, inspect ``requests``.

    ``shape`` is the API's wire format: ``"data"`` (the neutral shape: ``{"data": ...}``
    everywhere, single pages) or ``"provider"`` (the provider's published contract: objects at
    the root, lists as arrays of envelopes, a paged phone book, BYON errors without bodies). Both
    serve the same records.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key",
        api_key_header: str | None = None,
        shape: Shape = "data",
        send_answer: SendAnswer = "object",
        envelopes: int = 1,
        contact_tags: bool = False,
        ignore_paging: bool = False,
        contacts: int = 200,
        phones: int = 50,
        registrations: int = 30,
        seed: int = 7,
        advance_on_lookup: bool = True,
        inbound_url: str | None = None,
        report_timing: ReportTiming = REPORT_TIMING,
        retry: RetrySchedule = PROVIDER_RETRIES,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
        if send_answer not in SEND_ANSWERS:
            raise ValueError(f"unknown send_answer {send_answer!r}; expected one of {SEND_ANSWERS}")
        if envelopes < 1:
            raise ValueError(f"envelopes must be at least 1, not {envelopes}")
        self.host = host
        self.port = port
        self.shape: Shape = shape
        self.api_key_header = api_key_header or DEFAULT_KEY_HEADERS[shape]
        self._api_key = api_key.encode("utf-8")
        self.send_answer: SendAnswer = send_answer
        self.envelopes = envelopes
        self.contact_tags = contact_tags
        self.ignore_paging = ignore_paging
        self.seed = seed
        self.advance_on_lookup = advance_on_lookup
        # Where inbound messages are pushed: the URL registered with the provider.
        self.inbound_url = inbound_url
        self.report_timing = report_timing
        self._provider = shape == "provider"
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._log: list[RecordedRequest] = []
        self._log_generation = 0
        self._counts: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peak_in_flight: Counter[str] = Counter()
        self._faults: dict[str, deque[_FaultSpec]] = {}
        self._latency: dict[str, float] = {}
        self._fields: dict[str, dict[str, list[Any]]] = {}

        self._contact_count = contacts
        self._stores = {
            "contacts": data.contact_store(contacts, seed, contact_tags),
            "phones": data.store_from_records(data.phone_records(phones, seed, contacts)),
            "registrations": data.store_from_records(
                data.registration_records(registrations, seed, contacts)
            ),
        }
        self._factory = data.MessageFactory(seed)
        self._messages: dict[str, data.StoredMessage] = {}
        self._sent: list[dict[str, Any]] = []
        # Messages sent with a callbackUrl: timers move them on and push each state; a look-up
        # only reads them.
        self._pushed: set[str] = set()
        self._pusher = Pusher(retry)
        self._inbound_rng = random.Random(f"{seed}:inbound")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Sandbox:
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._server = _Server((self.host, self.port), self)
        self._pusher.start(f"sandbox-pushes-{self._server.server_address[1]}")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._pusher.stop()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---------------------------------------------------------------- request log

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, endpoint: str) -> int:
        with self._lock:
            return self._counts[endpoint]

    def peak_in_flight(self, endpoint: str) -> int:
        """The most requests to endpoint the sandbox was answering at one time."""
        with self._lock:
            return self._peak_in_flight[endpoint]

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._log_generation += 1
            self._counts.clear()
            self._peak_in_flight = Counter(self._in_flight)
            self._faults.clear()
            self._fields.clear()

    def _log_arrival(
        self,
        method: str,
        path: str,
        query: str,
        endpoint: str | None,
        headers: Any,
    ) -> tuple[int, int, str | None]:
        secret = self.api_key_header.lower()
        recorded = {k: ("***" if k.lower() == secret else v) for k, v in headers}
        entry = RecordedRequest(method, path, query, endpoint, recorded, 0, time.monotonic())
        # Logged on arrival, so count() includes a request whose client already gave up waiting.
        with self._lock:
            self._log.append(entry)
            if endpoint is not None:
                self._counts[endpoint] += 1
                self._in_flight[endpoint] += 1
                self._peak_in_flight[endpoint] = max(
                    self._peak_in_flight[endpoint], self._in_flight[endpoint]
                )
            return self._log_generation, len(self._log) - 1, endpoint

    def _record_status(self, token: tuple[int, int, str | None], status: int) -> None:
        generation, index, _ = token
        with self._lock:
            if generation == self._log_generation:
                self._log[index] = dataclasses.replace(self._log[index], status=status)

    def _log_done(self, token: tuple[int, int, str | None], status: int) -> None:
        self._record_status(token, status)
        with self._lock:
            if token[2] is not None:
                self._in_flight[token[2]] -= 1

    def _stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {name: self._counts[name] for name in ENDPOINTS},
                "sent": len(self._sent),
                "pushes": self._pusher.stats(),
            }

    # ---------------------------------------------------------------- faults

    def inject(
        self,
        endpoint: str,
        fault: Fault | str,
        *,
        times: int | None = None,
        retry_after: str = "1",
        latency: float = 0.0,
        status: int = 500,
    ) -> None:
        """Give the next ``times`` requests to ``endpoint`` the fault (None: until cleared).

        Injections on one endpoint queue up: a second one applies once the first is used up.
        """
        self._check_endpoint(endpoint)
        spec = _FaultSpec(Fault(fault), times, str(retry_after), latency, status)
        if endpoint not in _FAULT_ENDPOINTS.get(spec.fault, ENDPOINTS):
            raise ValueError(f"{spec.fault.name} does not apply to {endpoint!r}")
        if times is not None and times <= 0:
            return
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(spec)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_latency(self, endpoint: str, seconds: float) -> None:
        self._check_endpoint(endpoint)
        with self._lock:
            if seconds > 0:
                self._latency[endpoint] = seconds
            else:
                self._latency.pop(endpoint, None)

    def _take_fault(self, endpoint: str) -> _FaultSpec | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            if not queue:
                return None
            spec = queue[0]
            if spec.remaining is not None:
                spec.remaining -= 1
                if spec.remaining <= 0:
                    queue.popleft()
            return spec

    @staticmethod
    def _check_endpoint(endpoint: str) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")

    def _authorized(self, supplied: str | None) -> bool:
        if supplied is None:
            return False
        return hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), self._api_key)

    # ---------------------------------------------------------------- answers

    def _wrap(self, payload: Any) -> bytes:
        return _encode(payload if self._provider else {"data": payload})

    def _error(
        self, byon: bool, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> _Answer:
        """An error answer as the endpoint's family (SMS or BYON) and the shape give it."""
        title = _phrase(status) or "Error"
        if byon and (status >= 500 or status == 400):
            code = title.upper().replace(" ", "_")
            body = {"code": code, "message": detail, "timestamp": int(time.time() * 1000)}
            return _Answer(status, (_encode(body),), headers=headers)
        if byon and self._provider:
            return _Answer(status, headers=headers)
        # The problem document's status is a number in the provider's contract, text in the
        # neutral shape.
        problem = {
            "type": PROBLEM_BASE + title.lower().replace(" ", "-"),
            "title": title,
            "status": status if self._provider else str(status),
            "detail": detail,
        }
        return _Answer(status, (_encode(problem),), headers=headers)

    def _answer(
        self, endpoint: str, message_id: str | None, query: str, supplied_key: str | None
    ) -> _Answer:
        """What the endpoint answers when nothing is wrong."""
        if not self._authorized(supplied_key):
            return self._error(endpoint in LISTS, 401, "Invalid or missing API key")
        if endpoint == "sms":
            return self._send_answer(query)
        if endpoint == "messages":
            body = self._lookup(message_id or "")
            if body is None:
                return self._error(False, 404, "Message not found")
            return _Answer(200, (body,))
        return self._list_answer(endpoint, _params(query))

    def _send_answer(self, query: str) -> _Answer:
        pairs = parse_qsl(query, keep_blank_values=True)
        # A template the client never rendered ("{ config['to'] }") must not become a billed SMS.
        if any("{" in text or "}" in text for pair in pairs for text in pair):
            return self._error(False, 400, "Parameter values must not contain { or }")
        params = _params(query)
        to = params.get("to", "").strip()
        sender = params.get("from", "").strip()
        if not to or not sender:
            return self._error(False, 400, "Parameters 'to' and 'from' are required")
        callback = params.get("callbackUrl") or None
        if callback and urlsplit(callback).scheme not in ("http", "https"):
            return self._error(False, 400, "callbackUrl must be an http or https URL")
        # The provider also calls back with GET, with no documented parameters: not imitated.
        if params.get("callbackMethod", "POST").upper() != "POST":
            callback = None
        message = self._send(
            to, sender, params.get("message", ""), params.get("reference"), callback
        )
        if self.send_answer == "empty_201":
            return _Answer(201)
        return _Answer(200, (self._wrap(message),))

    def _list_answer(self, endpoint: str, params: dict[str, str]) -> _Answer:
        with self._lock:
            store = self._stores[endpoint]
            total = len(store)
            if not self._provider:
                return _Answer(200, (b'{"data":[', *_joined(store.records()), b"]}"))
            if not total:
                return _Answer(204)
            start, stop = 0, total
            if LISTS[endpoint].paged:
                page = _count(params, "page", 0)
                size = _count(params, "size", PAGE_SIZE_LIMIT)
                if page is None or size is None or not 1 <= size <= PAGE_SIZE_LIMIT:
                    detail = f"page must be 0 or more, size from 1 to {PAGE_SIZE_LIMIT}"
                    return self._error(True, 400, detail)
                start = min(0 if self.ignore_paging else page * size, total)
                stop = min(start + size, total)
            # The records go over up to `envelopes` envelopes, in order; never an empty one,
            # except the single envelope of a page past the end.
            count = max(1, min(self.envelopes, stop - start))
            bounds = [start + (stop - start) * k // count for k in range(count + 1)]
            opening = b'{"' + LISTS[endpoint].envelope.encode() + b'":['
            body: list[bytes | memoryview] = [b"["]
            for k in range(count):
                lo, hi = bounds[k], bounds[k + 1]
                if k:
                    body.append(b",")
                body += (opening, *_joined(store.records(lo, hi)), b'],"size":%d}' % (hi - lo))
            body.append(b"]")
            return _Answer(200, body)

    def _spoil(self, answer: _Answer, endpoint: str, fault: Fault) -> _Answer:
        """The answer as the fault alters it (a spoiling fault, on a 2xx answer with a body)."""
        text = b"".join(answer.body)
        if fault is Fault.BYTE_ORDER_MARK:
            return dataclasses.replace(answer, body=(codecs.BOM_UTF8, text))
        if fault is Fault.MALFORMED_JSON:
            return dataclasses.replace(answer, body=(text[: len(text) // 2],))
        payload = json.loads(text)
        is_list = endpoint in LISTS
        list_key = LISTS[endpoint].envelope if is_list else ""
        inner = payload if self._provider else payload["data"]
        records = self._records_in(payload, endpoint)
        key = RECORD_KEYS[endpoint]
        if fault is Fault.NO_DATA_KEY:
            if self._provider and is_list:
                payload = [
                    {"result" if name == list_key else name: value for name, value in e.items()}
                    for e in inner
                ]
            else:
                payload = {"result": inner}
        elif fault is Fault.WRONG_SHAPE:
            if self._provider:
                payload = {list_key: records, "size": len(records)} if is_list else [inner]
            else:
                payload = {"data": {"items": inner} if is_list else [inner]}
        elif not records:
            pass  # an empty page has no record to spoil
        elif fault is Fault.MISSING_KEY:
            records[0].pop(key, None)
        elif fault is Fault.WRONG_TYPE:
            # A provider list's integer is its envelope's size; the neutral shape's lists have
            # no integer, so their first record gets a `size`.
            (inner[0] if self._provider and is_list else records[0])["size"] = "three"
        elif fault is Fault.EXTRA_FIELD:
            records[0]["addedLater"] = "surprise"
        elif fault is Fault.UNKNOWN_STATUS:
            records[0]["status"] = "SCHEDULED"
        elif fault is Fault.DUPLICATE_KEY:
            if len(records) > 1 and key in records[0]:
                records[1][key] = records[0][key]
        elif fault is Fault.HOSTILE_REQUEST_ID:
            records[0]["requestId"] = HOSTILE_REQUEST_ID
        elif fault is Fault.ODD_VALUE:
            records[0].update(overallPrice="n/a", submitDate="yesterday")
        return dataclasses.replace(answer, body=(_encode(payload),))

    def _records_in(self, payload: Any, endpoint: str) -> list[dict[str, Any]]:
        """The answer's records in order: the neutral shape's "data", all envelopes' lists
        concatenated, or the object at the root."""
        inner = payload if self._provider else payload["data"]
        if endpoint not in LISTS:
            return [inner]
        if self._provider:
            return [record for envelope in inner for record in envelope[LISTS[endpoint].envelope]]
        return inner

    def _with_fields(self, answer: _Answer, endpoint: str) -> _Answer:
        """The answer with the fields `set_field` gave its records."""
        fields = self._fields.get(endpoint)
        if not fields or not 200 <= answer.status < 300 or not answer.body:
            return answer
        payload = json.loads(b"".join(answer.body))
        for index, record in enumerate(self._records_in(payload, endpoint)):
            for name, values in fields.items():
                value = values[index % len(values)]
                if value is OMIT:
                    record.pop(name, None)
                else:
                    record[name] = value
        return dataclasses.replace(answer, body=(_encode(payload),))

    def set_field(self, endpoint: str, name: str, values: Sequence[Any]) -> None:
        """From now on the i-th record of every answer of ``endpoint`` carries ``name`` with
        ``values[i % len(values)]`` (``OMIT``: without it), whatever its type: a field the API
        adds, or one whose type or shape changes. An empty ``values`` stops it."""
        self._check_endpoint(endpoint)
        with self._lock:
            fields = self._fields.setdefault(endpoint, {})
            if values:
                fields[name] = list(values)
            else:
                fields.pop(name, None)

    # ---------------------------------------------------------------- lists

    def remove_contact(self, contact_id: str) -> None:
        index = data.contact_index(contact_id)
        with self._lock:
            if index is None or not self._stores["contacts"].remove(index):
                raise KeyError(contact_id)

    def set_contact_count(self, n: int) -> None:
        """Serve contacts 0..n-1 from now on (the first ones are the same whatever n is)."""
        # Built outside the lock: requests keep flowing.
        store = data.contact_store(n, self.seed, self.contact_tags)
        with self._lock:
            self._stores["contacts"] = store
            self._contact_count = n

    def set_phone_count(self, n: int) -> None:
        """Serve phones 0..n-1 from now on (the first ones are the same whatever n is)."""
        with self._lock:
            contacts = self._contact_count
        store = data.store_from_records(data.phone_records(n, self.seed, contacts))
        with self._lock:
            self._stores["phones"] = store

    # ---------------------------------------------------------------- messages

    def _send(
        self, to: str, sender: str, text: str, reference: str | None, callback: str | None = None
    ) -> dict[str, Any]:
        """Create and bill a message; the send's answer (its fields a send already knows). With a
        `callback`, its reports are pushed there as it moves on."""
        with self._lock:
            message = self._factory.create(to, sender, text, reference)
            record = message.record
            request_id = record["requestId"]
            self._messages[request_id] = message
            if callback:
                self._pushed.add(request_id)
                self._pusher.later(
                    self.report_timing.accepted_after,
                    lambda: self._report(request_id, callback, steps=0),
                )
            self._sent.append(
                {
                    "requestId": request_id,
                    "to": to,
                    "from": sender,
                    "message": text,
                    "reference": reference,
                }
            )
            return {name: record[name] for name in SEND_ANSWER_FIELDS if name in record}

    def _lookup(self, request_id: str) -> bytes | None:
        with self._lock:
            message = self._messages.get(request_id)
            if message is None or message.expired:
                return None
            # Answer the current state, then move on: a fresh send reads ACCEPTED first. A message
            # whose reports are pushed moves on with its pushes only.
            body = self._wrap(message.record)
            if self.advance_on_lookup and request_id not in self._pushed:
                message.advance()
            return body

    # ---------------------------------------------------------------- pushes

    def _report(self, request_id: str, callback: str, steps: int) -> None:
        """Move a pushed message `steps` states on and push its status as a look-up would now
        answer it; then time its next state, if it has one."""
        timing = self.report_timing
        with self._lock:
            message = self._messages[request_id]
            for _ in range(steps):
                message.advance()
            body = self._wrap(message.record)
            status = message.record["status"]
        self._pusher.push("delivery_report", request_id, callback, body)
        if status == "ACCEPTED":
            # A message bound to expire is BUFFERED (in retry) first; the others end at once.
            expires = message.final_status == "EXPIRED"
            self._pusher.later(
                timing.changed_after,
                lambda: self._report(request_id, callback, steps=1 if expires else 2),
            )
        elif status == "BUFFERED":
            self._pusher.later(
                timing.expired_after, lambda: self._report(request_id, callback, steps=1)
            )

    def push_inbound(self, count: int = 3) -> list[dict[str, Any]]:
        """Push `count` new inbound messages to `inbound_url`, newest first (out of order), and
        the first one pushed once more at the end (the same body twice); the bodies as pushed,
        in order. See `data.inbound_messages` for what they hold."""
        if not self.inbound_url:
            raise RuntimeError("no inbound URL: start the sandbox with inbound_url (--inbound-url)")
        with self._lock:
            numbers = [p["phoneNumber"] for p in data.phone_records(3, self.seed, 0)]
            messages = data.inbound_messages(self._inbound_rng, count, numbers)
        pushed = [*messages[::-1], messages[-1]] if messages else []
        for message in pushed:
            body = _encode(message)
            self._pusher.push("inbound_message", message["requestId"], self.inbound_url, body)
        return pushed

    def push_reply(self, sender: str, text: str) -> dict[str, Any]:
        """Push one inbound message from `sender` saying `text` (a STOP or START reply, or a near
        miss) to one of the account's numbers, sent now; the body as pushed."""
        if not self.inbound_url:
            raise RuntimeError("no inbound URL: start the sandbox with inbound_url (--inbound-url)")
        with self._lock:
            (number,) = [p["phoneNumber"] for p in data.phone_records(1, self.seed, 0)]
        message = data.reply_message(sender, number, text)
        self._pusher.push(
            "inbound_message", message["requestId"], self.inbound_url, _encode(message)
        )
        return message

    def _inbound_answer(self, params: dict[str, str]) -> _Answer:
        if "text" in params:
            if not params.get("from"):
                return self._error(False, 400, "a reply needs `from` (the number replying)")
            if not self.inbound_url:
                return self._error(
                    False, 409, "No inbound URL: start the sandbox with --inbound-url"
                )
            reply = self.push_reply(params["from"], params["text"])
            return _Answer(200, (_encode({"pushed": [reply["requestId"]]}),))
        count = _count(params, "count", 3)
        if count is None or not 1 <= count <= 1000:
            return self._error(False, 400, "count must be from 1 to 1000")
        if not self.inbound_url:
            return self._error(False, 409, "No inbound URL: start the sandbox with --inbound-url")
        pushed = self.push_inbound(count)
        return _Answer(200, (_encode({"pushed": [m["requestId"] for m in pushed]}),))

    @property
    def pushes(self) -> list[PushAttempt]:
        """Every attempt to push, in the order made."""
        return self._pusher.attempts

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._sent]

    def add_messages(self, n: int, *, final: bool = False) -> list[str]:
        """Create ``n`` messages as if another system had sent them (not listed in ``sent``)."""
        ids = []
        with self._lock:
            for _ in range(n):
                message = self._factory.create(*self._factory.random_send(), None)
                if final:
                    message.advance()
                    message.advance()
                request_id = message.record["requestId"]
                self._messages[request_id] = message
                ids.append(request_id)
        return ids

    def advance(self, request_id: str) -> None:
        """Move a message one status step on (for ``advance_on_lookup=False``)."""
        with self._lock:
            self._messages[request_id].advance()

    def expire(self, request_id: str) -> None:
        """The provider forgot the message: look-ups answer 404 from now on."""
        with self._lock:
            self._messages[request_id].expired = True

    def message(self, request_id: str) -> dict[str, Any]:
        """The message's record as a look-up would answer it now (without moving it on)."""
        with self._lock:
            return json.loads(_encode(self._messages[request_id].record))


def serve_until_signalled(sandbox: Sandbox, ready_line: str) -> None:
    """Start the sandbox, print `ready_line` (`{url}` filled in), serve until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before the server starts, so a signal right after the ready line is handled.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sandbox.start()
    print(ready_line.format(url=sandbox.url), flush=True)
    try:
        # A timed wait lets the main thread run the signal handler promptly.
        while not stop.wait(0.2):
            pass
    finally:
        sandbox.stop()
