"""How long a statement may run on a pooled connection, with one timer for all of them.

asyncpg's `command_timeout` arms and cancels a timer for every protocol step: two
for a read behind PgBouncer (prepare, then execute), four for a write there (with
BEGIN and COMMIT). Every statement here may run the same time, so deadlines fall
in the order statements start, and one timer, for the oldest statement still
running, serves them all (as todo.db.turns does for waits at the pool).

A statement past its deadline has its connection cut off: what it was doing is
abandoned, and the call waiting on it fails, which the runner reports as a
timeout (`Watch.expired`). The runner discards a timed-out connection in any
case; cutting it rather than asking the server to cancel also frees a caller
whose server no longer answers at all. Where the server enforces a statement
timeout of its own (a direct connection), it fires first, and this is the
backstop for a server or network that has gone silent.
"""

import asyncio
from collections import deque

import asyncpg


class Watch:
    """One statement's run on `connection`, until `Deadlines.end`."""

    __slots__ = ("connection", "deadline", "ended", "expired")

    def __init__(self, connection: asyncpg.Connection, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.ended = False
        # Set when the deadline passed first and the connection was cut off.
        self.expired = False


class Deadlines:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # In order of start, which is the order of the deadlines.
        self._running: deque[Watch] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, connection: asyncpg.Connection) -> Watch:
        """Watch a statement about to run on `connection`; end the watch when it is done."""
        loop = asyncio.get_running_loop()
        watch = Watch(connection, loop.time() + self.seconds)
        self._running.append(watch)
        if self._timer is None:
            self._timer = loop.call_at(watch.deadline, self._expire)
        return watch

    def end(self, watch: Watch) -> None:
        watch.ended = True
        running = self._running
        # Statements mostly end in the order they started: the queue holds
        # about as many as are running.
        while running and running[0].ended:
            running.popleft()

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        running = self._running
        while running and (running[0].ended or running[0].deadline <= now):
            watch = running.popleft()
            if not watch.ended:
                watch.expired = True
                watch.connection.terminate()
        self._timer = loop.call_at(running[0].deadline, self._expire) if running else None
