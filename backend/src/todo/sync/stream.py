"""Server-Sent Events: a user's changes as they commit, and how many streams are open.

A stream holds no database connection while it waits: it reads through the
pool when a change notice (todo.db.notices) wakes it, and at every heartbeat
in case a notice was lost. It ends after its maximum age, when the caller's
token expires, and at once when the worker is told to stop, so that the
graceful shutdown is not held up by clients that never hang up.
"""

import asyncio
import contextlib
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from itertools import groupby
from types import FrameType
from uuid import UUID

import orjson

from todo.db import Database
from todo.errors import ServiceUnavailableError
from todo.sync.service import Change, Position, read_changes
from todo.tasks.encode import task_json

# Changes per read while catching up (one event each page) and once live.
PAGE_SIZE = 500
RETRY_AFTER_SECONDS = 5


class TooManyStreamsError(ServiceUnavailableError):
    problem_type = "urn:todo:problem:too-many-streams"
    title = "Too many open streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server holds its limit of {limit} open streams; retry shortly "
            "(another instance may have room).",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class Streams:
    """This worker's open streams (counted and limited) and feed waits, all ended on exit."""

    def __init__(self, database: Database, limit: int) -> None:
        self._database = database
        self.limit = limit
        self.open = 0
        self.events_sent = 0
        self.closing = False
        # Called when a figure changes: the metrics, when enabled, read them then.
        self.on_activity: Callable[[], None] | None = None

    def figures(self) -> tuple[int, int, int, int]:
        """Open streams, events sent, notices received, listener reconnects."""
        notices = self._database.notices
        return self.open, self.events_sent, notices.received, notices.reconnects

    def _active(self) -> None:
        if self.on_activity is not None:
            self.on_activity()

    def sent(self) -> None:
        self.events_sent += 1
        self._active()

    def check_room(self) -> None:
        """Refuse a stream beyond the limit, before its response starts."""
        if self.open >= self.limit:
            raise TooManyStreamsError(self.limit)

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        self.open += 1
        self._active()
        try:
            yield
        finally:
            self.open -= 1
            self._active()

    def close(self) -> None:
        """End every stream and feed wait now (the worker is stopping)."""
        self.closing = True
        self._database.notices.wake_all()

    def close_on_exit_signals(self) -> None:
        """Close as soon as SIGTERM or SIGINT comes, then let the server's handler run.

        The server (uvicorn) waits for open responses before it shuts down;
        a stream would otherwise hold it until the graceful-shutdown timeout.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(number: int, frame: FrameType | None, previous: object = previous) -> None:
                loop.call_soon_threadsafe(self.close)
                if callable(previous):
                    previous(number, frame)

            signal.signal(signum, handler)


def change_json(change: Change) -> bytes:
    """One element of the feed: the task as GET returns it, or the id of a deleted one."""
    if change.deleted:
        return b'{"op":"delete","id":"' + str(change.task.id).encode() + b'"}'
    return b'{"op":"upsert","task":' + task_json(change.task) + b"}"


def changes_json(changes: Sequence[Change]) -> bytes:
    return b"[" + b",".join(change_json(change) for change in changes) + b"]"


def feed_json(changes: Sequence[Change], cursor: str, *, has_more: bool) -> bytes:
    return b"".join(
        (
            b'{"changes":',
            changes_json(changes),
            b',"cursor":"',
            cursor.encode(),
            b'","has_more":',
            b"true" if has_more else b"false",
            b"}",
        )
    )


def _event(name: str, data: bytes, event_id: str | None = None) -> bytes:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


def _changes_event(changes: Sequence[Change], at: Position) -> bytes:
    return _event("changes", b'{"changes":' + changes_json(changes) + b"}", at.cursor)


async def wait_for_changes(
    database: Database,
    streams: Streams,
    user_id: UUID,
    at: Position,
    limit: int,
    *,
    wait: float,
    heartbeat: float,
) -> tuple[list[Change], Position, bool]:
    """The feed's page after `at`; when empty, held up to `wait` seconds for a change."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    # Subscribed before the read: a change committed after it wakes the wait.
    with database.notices.subscribe(user_id) as subscription:
        while True:
            changes, after, has_more = await read_changes(database, user_id, at, limit)
            remaining = deadline - loop.time()
            if changes or remaining <= 0 or streams.closing:
                return changes, after, has_more
            await subscription.wait(min(remaining, heartbeat))


async def events(
    database: Database,
    streams: Streams,
    user_id: UUID,
    at: Position,
    *,
    heartbeat: float,
    max_seconds: float,
    expires_at: float | None,
) -> AsyncIterator[bytes]:
    """The stream after `at`: the catch-up, `ready`, then one event per change."""
    loop = asyncio.get_running_loop()
    # Up to a tenth sooner, at random: streams opened together (after a deploy)
    # do not all end, and reconnect, together.
    end = loop.time() + max_seconds * (1 - random.random() / 10)  # noqa: S311
    if expires_at is not None:
        end = min(end, loop.time() + expires_at - time.time())
    with streams.opened(), database.notices.subscribe(user_id) as subscription:
        try:
            while True:
                changes, at, has_more = await read_changes(database, user_id, at, PAGE_SIZE)
                if changes:
                    streams.sent()
                    yield _changes_event(changes, at)
                if not has_more:
                    break
            # With the cursor as its id too: an EventSource resumes from it.
            yield _event("ready", orjson.dumps({"cursor": at.cursor}), at.cursor)
            while not streams.closing:
                remaining = end - loop.time()
                if remaining <= 0:
                    return
                if not await subscription.wait(min(heartbeat, remaining)):
                    if streams.closing or loop.time() >= end:
                        return
                    # And read anyway: a notice may have been lost.
                    yield b": heartbeat\n\n"
                if streams.closing:
                    return
                has_more = True
                while has_more:
                    changes, after, has_more = await read_changes(database, user_id, at, PAGE_SIZE)
                    for number, group in groupby(changes, key=lambda change: change.number):
                        at = Position(at.tag, number, 0)
                        streams.sent()
                        yield _changes_event(list(group), at)
                    at = after
        except ServiceUnavailableError:
            # The database is unreachable: the client reconnects from its last id.
            return
