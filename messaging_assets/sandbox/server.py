"""A local imitation of the messaging provider's HTTP API, with a request log and fault injection.

Only the standard library: the sandbox must run wherever the project's tests run.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import hmac
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote

from . import data

ENDPOINTS = ("sms", "messages", "contacts", "phones", "registrations")
# The provider answers SMS endpoints' errors as problem documents, BYON endpoints' differently.
SMS_ENDPOINTS = frozenset({"sms", "messages"})
LIST_ENDPOINTS = frozenset({"contacts", "phones", "registrations"})

_LIST_PATHS = {
    "/messaging/v1/sms": "sms",
    "/byon/contacts/v1": "contacts",
    "/byon/phonebook/v1/numbers": "phones",
    "/byon/provisioning/v1": "registrations",
}
_MESSAGES_PATH = "/messaging/v1/messages"
STATS_PATH = "/_sandbox/stats"
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
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    LATENCY = "latency"
    MALFORMED_JSON = "malformed_json"
    HTML_200 = "html_200"
    DROP_CONNECTION = "drop_connection"
    NO_DATA_KEY = "no_data_key"
    WRONG_SHAPE = "wrong_shape"
    EMPTY_204 = "empty_204"
    BYTE_ORDER_MARK = (
        "byte_order_mark"  # a well-formed answer after a UTF-8 BOM, as some servers send
    )
    # Well-formed answers whose first record is off: what schema hints and contracts must catch.
    MISSING_KEY = "missing_key"  # the record lacks its key (contactId, phoneNumber, requestId)
    WRONG_TYPE = "wrong_type"  # a message's `size` (an integer) arrives as a word
    EXTRA_FIELD = "extra_field"  # the record carries a field the API did not have before
    UNKNOWN_STATUS = "unknown_status"  # a message in a status the provider added later


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str  # raw query string, as received
    endpoint: str | None
    headers: dict[str, str]  # the API key header's value is replaced by "***"
    status: int  # status answered; 0 while in flight or when the connection was dropped
    received_at: float = 0.0  # time.monotonic() on arrival, to measure waits between retries


@dataclass
class _FaultSpec:
    fault: Fault
    remaining: int | None
    retry_after: str
    latency: float
    status: int


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def problem(status: int, slug: str, title: str, detail: str) -> bytes:
    # `status` is a string in the provider's problem documents.
    return _encode(
        {"type": PROBLEM_BASE + slug, "title": title, "status": str(status), "detail": detail}
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


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

    def _respond(
        self,
        status: int,
        body: bytes | list[bytes] = b"",
        content_type: str = JSON,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> int:
        chunks = [body] if isinstance(body, bytes) else body
        length = sum(len(c) for c in chunks)
        lines = [
            f"{self.protocol_version} {status} {_phrase(status)}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if status == 204:
            chunks, length = [], 0  # a 204 has neither body nor Content-Length
        else:
            lines += [f"Content-Type: {content_type}", f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Recorded before the first byte leaves, so a client that has its answer sees it logged.
        if self._token is not None:
            self.server.sandbox._record_status(self._token, status)
        if length <= _SINGLE_WRITE_LIMIT:
            self.wfile.write(head + b"".join(chunks))
        else:
            self.wfile.write(head)
            for chunk in chunks:
                self.wfile.write(chunk)
        return status

    def _problem(self, status: int, slug: str, title: str, detail: str) -> int:
        return self._respond(status, problem(status, slug, title, detail))

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
            self._respond(200, _encode(sandbox._stats()))
            return
        endpoint, message_id = _route(path)
        token = self._token = sandbox._log_arrival(
            self.command, path, query, endpoint, self.headers.items()
        )
        status = 0
        try:
            status = self._dispatch(sandbox, endpoint, message_id, query)
        finally:
            sandbox._log_done(token, status)

    def _dispatch(
        self, sandbox: Sandbox, endpoint: str | None, message_id: str | None, query: str
    ) -> int:
        if endpoint is None:
            return self._problem(404, "not-found", "Not Found", "No such resource")
        if self.command != "GET":
            self.close_connection = True
            return self._respond(
                405,
                problem(405, "method-not-allowed", "Method Not Allowed", "Only GET is supported"),
                headers=(("Allow", "GET"),),
            )
        delay = sandbox._latency.get(endpoint, 0.0)
        if delay > 0:
            time.sleep(delay)
        spec = sandbox._take_fault(endpoint)
        if spec is not None:
            if spec.fault is not Fault.LATENCY:
                return self._fault(spec, endpoint, sandbox, message_id)
            time.sleep(spec.latency)
        if not sandbox._authorized(self.headers.get(sandbox.api_key_header)):
            return self._problem(401, "unauthorized", "Unauthorized", "Invalid or missing API key")
        if endpoint == "sms":
            return self._send_sms(sandbox, query)
        if endpoint == "messages":
            body = sandbox._lookup(message_id or "")
            if body is None:
                return self._problem(404, "not-found", "Not Found", "Message not found")
            return self._respond(200, body)
        return self._respond(200, sandbox._list_body(endpoint))

    def _send_sms(self, sandbox: Sandbox, query: str) -> int:
        params = parse_qs(query, keep_blank_values=True)
        # A template the client never rendered ("{ config['to'] }") must not become a billed SMS.
        if any(
            "{" in k or "}" in k or any("{" in v or "}" in v for v in vs)
            for k, vs in params.items()
        ):
            return self._problem(
                400, "invalid-parameter", "Bad Request", "Parameter values must not contain { or }"
            )
        values = {key: vs[0] for key, vs in params.items()}
        to = values.get("to", "").strip()
        sender = values.get("from", "").strip()
        if not to or not sender:
            return self._problem(
                400, "missing-parameter", "Bad Request", "Parameters 'to' and 'from' are required"
            )
        reference = values.get("reference")
        request_id = sandbox._send(to, sender, values.get("message", ""), reference)
        return self._respond(
            200,
            _encode(
                {"data": {"requestId": request_id, "status": "ACCEPTED", "reference": reference}}
            ),
        )

    def _fault(
        self, spec: _FaultSpec, endpoint: str, sandbox: Sandbox, message_id: str | None
    ) -> int:
        fault = spec.fault
        is_list = endpoint in LIST_ENDPOINTS
        if fault is Fault.RATE_LIMIT:
            return self._respond(
                429,
                problem(429, "rate-limited", "Too Many Requests", "Rate limit exceeded"),
                headers=(("Retry-After", spec.retry_after),),
            )
        if fault is Fault.SERVER_ERROR:
            status = spec.status
            phrase = _phrase(status)
            if endpoint in SMS_ENDPOINTS:
                body = problem(status, "server-error", phrase or "Server Error", "Upstream failure")
            else:
                code = phrase.upper().replace(" ", "_") or "SERVER_ERROR"
                body = _encode(
                    {"code": code, "message": "Upstream failure", "timestamp": data.now_ts()}
                )
            return self._respond(status, body)
        if fault is Fault.MALFORMED_JSON:
            body = b'{"data":[{"id":"trunc' if is_list else b'{"data":{"requestId":"'
            return self._respond(200, body)
        if fault is Fault.HTML_200:
            return self._respond(200, _HTML_MAINTENANCE, content_type="text/html; charset=utf-8")
        if fault is Fault.DROP_CONNECTION:
            # Returning without a byte written and closing is what a crashed upstream looks like.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return 0
        if fault is Fault.EMPTY_204:
            return self._respond(204)
        if fault is Fault.BYTE_ORDER_MARK:
            return self._respond(200, codecs.BOM_UTF8 + _answer(sandbox, endpoint, message_id))
        if fault is Fault.NO_DATA_KEY:
            if is_list:
                return self._respond(200, sandbox._list_body(endpoint, prefix=b'{"result":['))
            return self._respond(200, _encode({"result": {"requestId": message_id}}))
        if fault is Fault.WRONG_SHAPE:
            if is_list:
                # The real provider's own wrapping: an object around the list.
                return self._respond(
                    200, sandbox._list_body(endpoint, prefix=b'{"data":{"items":[', suffix=b"]}}")
                )
            return self._respond(200, _encode({"data": [{"requestId": message_id}]}))
        if fault in (Fault.MISSING_KEY, Fault.WRONG_TYPE, Fault.EXTRA_FIELD, Fault.UNKNOWN_STATUS):
            envelope = json.loads(_answer(sandbox, endpoint, message_id))
            records = envelope["data"] if is_list else [envelope["data"]]
            if records:
                _spoil(records[0], endpoint, fault)
            return self._respond(200, _encode(envelope))
        raise AssertionError(f"unhandled fault {fault}")


_KEYS = {"contacts": "contactId", "phones": "phoneNumber"}


def _answer(sandbox: Sandbox, endpoint: str, message_id: str | None) -> bytes:
    """The body the endpoint answers when nothing is wrong."""
    if endpoint in LIST_ENDPOINTS:
        return b"".join(sandbox._list_body(endpoint))
    return sandbox._lookup(message_id or "") or _encode({"data": {}})


def _spoil(record: dict[str, Any], endpoint: str, fault: Fault) -> None:
    if fault is Fault.MISSING_KEY:
        record.pop(_KEYS.get(endpoint, "requestId"), None)
    elif fault is Fault.WRONG_TYPE:
        record["size"] = "three"
    elif fault is Fault.UNKNOWN_STATUS:
        record["status"] = "SCHEDULED"
    else:
        record["addedLater"] = "surprise"


class Sandbox:
    """The sandbox server: start it, point a client at ``url``, inspect ``requests``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sandbox-key",
        api_key_header: str = "api_key",
        contacts: int = 200,
        phones: int = 50,
        registrations: int = 30,
        seed: int = 7,
        advance_on_lookup: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key_header = api_key_header
        self._api_key = api_key.encode("utf-8")
        self.seed = seed
        self.advance_on_lookup = advance_on_lookup
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

        self._contacts = data.contact_store(contacts, seed)
        phone_list = data.phone_records(phones, seed)
        self._phones = data.store_from_records(phone_list)
        self._registrations = data.store_from_records(
            data.registration_records(registrations, seed, [p["phoneNumber"] for p in phone_list])
        )
        self._factory = data.MessageFactory(seed)
        self._messages: dict[str, data.StoredMessage] = {}
        self._sent: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Sandbox:
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._server = _Server((self.host, self.port), self)
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

    # ---------------------------------------------------------------- lists

    def _list_body(
        self, endpoint: str, prefix: bytes = b'{"data":[', suffix: bytes = b"]}"
    ) -> list[bytes]:
        with self._lock:
            store = {
                "contacts": self._contacts,
                "phones": self._phones,
                "registrations": self._registrations,
            }[endpoint]
            # The chunks are immutable bytes, so the snapshot stays valid after the lock is gone.
            return store.body(prefix, suffix)

    def remove_contact(self, contact_id: str) -> None:
        index = data.contact_index(contact_id)
        with self._lock:
            if index is None or not self._contacts.remove(index):
                raise KeyError(contact_id)

    def set_contact_count(self, n: int) -> None:
        store = data.contact_store(n, self.seed)  # built outside the lock: requests keep flowing
        with self._lock:
            self._contacts = store

    # ---------------------------------------------------------------- messages

    def _send(self, to: str, sender: str, text: str, reference: str | None) -> str:
        with self._lock:
            message = self._factory.create(to, sender, text, reference)
            request_id = message.record["requestId"]
            self._messages[request_id] = message
            self._sent.append(
                {
                    "requestId": request_id,
                    "to": to,
                    "from": sender,
                    "message": text,
                    "reference": reference,
                }
            )
            return request_id

    def _lookup(self, request_id: str) -> bytes | None:
        with self._lock:
            message = self._messages.get(request_id)
            if message is None or message.expired:
                return None
            # Answer the current state, then move on: a fresh send reads ACCEPTED first.
            body = _encode({"data": message.record})
            if self.advance_on_lookup:
                message.advance()
            return body

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
        with self._lock:
            self._messages[request_id].expired = True

    def message(self, request_id: str) -> dict[str, Any]:
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
