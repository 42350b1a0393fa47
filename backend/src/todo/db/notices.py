"""Notices that a user's data changed, for those waiting on it in this process.

A notice carries no data, only the user and the change number: whoever wakes
reads the database itself. On PostgreSQL every write sends one with NOTIFY
in its own statement (delivered when it commits, in commit order), and each
worker holds one dedicated connection that LISTENs while anyone in the worker
waits (a stream, a feed wait), so a write on any worker or instance reaches
all of them. A worker with no one waiting stops listening (after a linger):
each notice it would take in costs it a wakeup, a read and a parse, for every
write of every worker. On SQLite a transaction publishes its notices here
after it commits. A lost notice only delays: waiters recheck anyway, and
whenever listening starts, everyone rereads.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import asyncpg

logger = logging.getLogger("todo.db")

CHANNEL = "todo_changes"

# Reconnecting a dropped listener: the first wait, doubled up to the last.
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
# How often a quiet listening connection is pinged: a connection that died
# without a word (no FIN) is found within this and the ping's timeout.
PING_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 5.0
# How long a listener keeps listening once no one waits: a stream's client that
# reconnects at once (EventSource does) finds it still listening.
LINGER_SECONDS = 30.0


class Subscription:
    """One waiter's view of one user's notices: set when any arrives."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def wait(self, within: float) -> bool:
        """Whether a notice came (since the last `wait`) within `within` seconds.

        A notice that came before the call counts: subscribe, read, then wait,
        and nothing that commits in between is missed.
        """
        try:
            async with asyncio.timeout(within):
                await self._changed.wait()
        except TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True


class Notices:
    """Subscriptions by user, woken by `publish`; counters for the metrics."""

    def __init__(self) -> None:
        self._subscriptions: dict[UUID, set[Subscription]] = {}
        self.received = 0
        self.reconnects = 0
        # Called at each subscription (the listener listens then, if it does not yet),
        # and when the last one ends (it may stop).
        self.on_subscribe: Callable[[], None] | None = None
        self.on_idle: Callable[[], None] | None = None

    @property
    def waiting(self) -> bool:
        """Whether anyone in this process waits for a notice."""
        return bool(self._subscriptions)

    @contextlib.contextmanager
    def subscribe(self, user_id: UUID) -> Iterator[Subscription]:
        subscription = Subscription()
        subscriptions = self._subscriptions.setdefault(user_id, set())
        subscriptions.add(subscription)
        if self.on_subscribe is not None:
            self.on_subscribe()
        try:
            yield subscription
        finally:
            subscriptions.discard(subscription)
            if not subscriptions:
                self._subscriptions.pop(user_id, None)
            if not self._subscriptions and self.on_idle is not None:
                self.on_idle()

    def publish(self, user_id: UUID) -> None:
        for subscription in self._subscriptions.get(user_id, ()):
            subscription.changed()

    def wake_all(self) -> None:
        """After notices may have been lost: every waiter rechecks."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.changed()

    def received_payload(self, payload: str) -> None:
        self.received += 1
        if not self.waiting:
            # The common case of a worker with no stream open: every write of every
            # worker sends a notice, and nothing here waits for one.
            return
        user, _, _change = payload.partition(" ")
        try:
            user_id = UUID(user)
        except ValueError:
            logger.warning("ignoring a malformed change notice: %r", payload)
            return
        self.publish(user_id)


class NoticeListener:
    """A dedicated connection, reopened with backoff when it drops, that LISTENs while
    anyone waits (`Notices.waiting`) and for LINGER_SECONDS after.

    The connection is no pooled one: PgBouncer in transaction mode (Neon's
    pooled endpoint) cannot keep a LISTEN, so it is opened on the direct URL.
    """

    def __init__(self, notices: Notices, connect_kwargs: dict[str, Any]) -> None:
        self._notices = notices
        self._connect_kwargs = connect_kwargs
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connection: asyncpg.Connection | None = None
        # Whether the connection LISTENs; changed, and the connection used, one at a time.
        self.listening = False
        self._using = asyncio.Lock()
        self._switches: set[asyncio.Task[None]] = set()
        self._idle_timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Hold the connection from now on (once: a second call does nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-notice-listener")

    def subscribed(self) -> None:
        """Someone waits: listen, if not yet (everyone rereads once it does)."""
        self.start()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self.listening:
            self._switch()

    def idle(self) -> None:
        """No one waits any more: stop listening after the linger, unless someone comes."""
        if self._idle_timer is None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(LINGER_SECONDS, self._lingered)

    def _lingered(self) -> None:
        self._idle_timer = None
        self._switch()

    def _switch(self) -> None:
        task = asyncio.get_running_loop().create_task(self._listen_as_needed())
        self._switches.add(task)
        task.add_done_callback(self._switches.discard)

    async def _listen_as_needed(self) -> None:
        try:
            started = await self._match_waiting()
        except Exception as error:
            # The connection is failing: `_run` reopens it, and listens then if needed.
            logger.warning("change notices: cannot switch listening (%r)", error)
            return
        if started:
            # What was sent before the LISTEN: everyone reads again.
            self._notices.wake_all()

    async def _match_waiting(self) -> bool:
        """LISTEN if anyone waits, else UNLISTEN (on a connection that is open); whether
        it started listening."""
        async with self._using:
            connection = self.connection
            wanted = self._notices.waiting
            if connection is None or connection.is_closed() or wanted == self.listening:
                return False
            if wanted:
                await connection.add_listener(CHANNEL, self._received)
            else:
                await connection.remove_listener(CHANNEL, self._received)
            self.listening = wanted
            return wanted

    async def stop(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for switch in list(self._switches):
            switch.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        first = True
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("change notices: cannot listen (%r); retrying", error)
                await self._close()
                await asyncio.sleep(delay * (1 + random.random() / 2))  # noqa: S311  (jitter)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = RECONNECT_FIRST_SECONDS
            if not first:
                self._notices.reconnects += 1
                logger.info("change notices: listening again")
            first = False
            # What was sent while no one listened: everyone reads again.
            self._notices.wake_all()
            await self._until_lost()
            logger.warning("change notices: the listening connection was lost; reopening")
            await self._close()

    async def _until_lost(self) -> None:
        while True:
            try:
                async with asyncio.timeout(PING_SECONDS):
                    await self._lost.wait()
                return
            except TimeoutError:
                pass
            try:
                async with self._using, asyncio.timeout(PING_TIMEOUT_SECONDS):
                    connection = self.connection
                    assert connection is not None
                    await connection.execute("SELECT 1")
            except Exception:
                return

    async def _listen(self) -> None:
        self._lost.clear()
        connection: asyncpg.Connection = await asyncpg.connect(**self._connect_kwargs)
        self.connection = connection
        self.listening = False
        connection.add_termination_listener(lambda _connection: self._lost.set())
        # `_run` has everyone reread once this returns.
        await self._match_waiting()

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._notices.received_payload(payload)

    async def _close(self) -> None:
        connection, self.connection = self.connection, None
        self.listening = False
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=1)
            if not connection.is_closed():
                connection.terminate()
