"""The receiver on uvicorn (httptools): bounds on idle and slow clients and on request heads, a
bounded number of connections and requests, logs without the token, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from messaging_assets.receiver.app import create_app
from messaging_assets.receiver.landing import receiver_id
from messaging_assets.receiver.settings import ReceiverSettings
from messaging_assets.receiver.storage import Storage

logger = logging.getLogger("messaging_assets.receiver")

# A request's line and headers (h11's default limit; httptools has none).
MAX_HEAD_BYTES = 16 * 1024

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        # uvicorn's access log shows each request's path, token included: AccessLog replaces it.
        "uvicorn.access": {"handlers": [], "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "messaging_assets.receiver": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds it lacks.

    uvicorn arms `timeout_keep_alive` only once a response is complete, has no read timeout, and
    with httptools no limit on a request's head: a new connection that never sends a request,
    or sends one a byte at a time, stays open for good and holds one of the `limit_concurrency`
    places, and a head without end is buffered without end. Here a new connection gets the same
    idle timeout; a request (head and body) must arrive whole within `request_seconds` of its
    first byte, or its connection is closed; and a head longer than MAX_HEAD_BYTES is refused.
    """

    request_seconds: float = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._deadline: asyncio.TimerHandle | None = None
        # Bytes of a request head received so far; None while no head is incomplete.
        self._head_bytes: int | None = None
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None and self._head_bytes + len(data) > MAX_HEAD_BYTES:
            # Feed only what the head may still take: the rest of this chunk may be its body.
            room = MAX_HEAD_BYTES - self._head_bytes
            if room:
                super().data_received(data[:room])
            if self.transport.is_closing():
                return
            if self._head_bytes is not None:
                self._refuse_head()
                return
            data = data[room:]
        super().data_received(data)
        if self._head_bytes is not None and not self.transport.is_closing():
            # A head that began in this chunk may have taken only part of it: counted whole.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.request_seconds, self._too_slow)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        # A head that began and ended within one chunk was never counted: its size as parsed.
        head = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head > MAX_HEAD_BYTES:
            logger.warning("%s: request head over %d bytes, refused", self._peer(), MAX_HEAD_BYTES)
            # httptools stops at an error in a callback, and uvicorn answers it 400 and closes.
            raise ValueError("request head too large")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        logger.warning(
            "%s: request not received whole within %g s, connection closed",
            self._peer(), self.request_seconds,
        )  # fmt: skip
        self.transport.close()

    def _refuse_head(self) -> None:
        logger.warning("%s: request head over %d bytes, refused", self._peer(), MAX_HEAD_BYTES)
        self.send_400_response("Request head too large.")

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"


def config(settings: ReceiverSettings, storage: Storage, host: str, port: int) -> uvicorn.Config:
    """uvicorn's configuration of a receiver landing into `storage`."""
    receiver = receiver_id()
    protocol = type(
        "Protocol", (BoundedProtocol,), {"request_seconds": settings.read_timeout_seconds}
    )
    configured = uvicorn.Config(
        create_app(settings, storage, receiver),
        host=host,
        port=port,
        http=protocol,
        ws="none",
        lifespan="on",
        log_config=LOGGING,
        access_log=False,
        server_header=False,
        limit_concurrency=settings.max_concurrency,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        # Requests in flight finish (they are bounded by the read deadline and one write);
        # past this they are cancelled, unacknowledged, and their senders try again.
        timeout_graceful_shutdown=settings.read_timeout_seconds + 10,  # type: ignore[arg-type]
    )
    # After uvicorn.Config, which sets up logging.
    logger.info("receiver %s landing in %s", receiver, storage)
    return configured


def serve(settings: ReceiverSettings, storage: Storage, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then finish the requests in flight and stop."""
    uvicorn.Server(config(settings, storage, host, port)).run()
