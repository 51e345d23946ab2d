"""Group commit: one landed file, one flush, for every event that arrived while the previous file
was being written, so that durability costs one fsync per batch, not one per request."""

from __future__ import annotations

import asyncio
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from messaging_assets.receiver.landing import file_name
from messaging_assets.receiver.storage import Storage

logger = logging.getLogger("messaging_assets.receiver")

# Files written at once per endpoint. One at a time, the next batch waits for the previous
# batch's journal commits (two: the file, then the rename); with 20 clients on a 2-core VM, 2 to 8
# at once acknowledged about 1.3x as many events a second as 1 did (bench/receiver.py).
WRITES_IN_FLIGHT = 4


class LandingFailed(Exception):
    """The file holding an event could not be written: the event is not acknowledged."""


class FileNames:
    """A receiver process's file names: its id, and a sequence shared by its endpoints."""

    def __init__(self, receiver: str) -> None:
        self.receiver = receiver
        self._sequence = itertools.count(1)

    def next(self) -> str:
        return file_name(datetime.now(timezone.utc), self.receiver, next(self._sequence))


class GroupCommit:
    """One endpoint's writer. `commit` returns once the event's file is durable.

    The writer takes every pending event, writes them as one file in a worker thread (the event
    loop goes on receiving meanwhile), then acknowledges them all. Up to `writes` files are
    written at once: a flush waits for the file system's journal, and flushes in flight together
    share its commits, so that the next batch need not wait for the previous one's flush. After
    an idle moment the writer first waits `window` seconds for company, so that a trickle of
    events makes fewer files too.
    """

    def __init__(
        self, storage: Storage, folder: str, names: FileNames, window: float, writes: int
    ) -> None:
        self.storage = storage
        self.folder = folder
        self.names = names
        self.window = window
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self._closing = False
        self._slots = asyncio.Semaphore(writes)
        self._writes: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(writes, thread_name_prefix=f"landing-{folder}")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def commit(self, line: bytes) -> None:
        """Land one event (its line); raises LandingFailed when its file could not be written."""
        if self._closing:
            raise LandingFailed("the receiver is stopping")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((line, future))
        self._arrived.set()
        await future

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending or not self._closing:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                if self.window and not self._writes and not self._closing:
                    await asyncio.sleep(self.window)
                continue
            await self._slots.acquire()
            # Whatever arrived while every slot was busy goes into this file too.
            batch, self._pending = self._pending, []
            write = loop.create_task(self._write(batch))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
        if self._writes:
            await asyncio.wait(self._writes)

    async def _write(self, batch: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        name = self.names.next()
        data = b"".join(line for line, _ in batch)
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.storage.write, self.folder, name, data
            )
        except Exception as error:
            logger.error(
                "landing %s/%s failed, %d event(s) not acknowledged: %s: %s",
                self.folder, name, len(batch), type(error).__name__, error,
            )  # fmt: skip
            for _, future in batch:
                # A request that gave up waiting (its client left) cancelled its future.
                if not future.done():
                    future.set_exception(LandingFailed(type(error).__name__))
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
        finally:
            self._slots.release()
