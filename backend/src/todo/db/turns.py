"""Turns at the pool's connections: first come, first served, each wait bounded.

asyncio.Semaphore lets no one pass its waiters, but bounding each wait with
`asyncio.timeout_at` arms and cancels a timer per waiting request (about 3.5 µs
under uvloop, and nearly every request waits under load). Every waiter here
waits at most as long as the others, so deadlines fall in the order of
arrival, and one timer, for the oldest waiter, serves them all.
"""

import asyncio
from collections import deque


class Turns:
    def __init__(self, count: int) -> None:
        self._free = count
        # (deadline, future) in order of arrival, which is the order of the deadlines.
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def take(self, deadline: float) -> None:
        """A turn, or TimeoutError once the loop's clock passes `deadline`.

        Each caller's deadline must be its arrival time plus the same wait (as the
        runner's are): a later one is only checked once every earlier one is.
        """
        if self._free and not self._waiters:
            # Free now: taken without waiting, so without a future or a timer.
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiters.append((deadline, turn))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                # Handed the turn just as it was cancelled: the next one gets it.
                self.give_back()
            raise

    def give_back(self) -> None:
        """End a turn: the longest waiter still waiting gets it, else it is free."""
        while self._waiters:
            _, turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._waiters and self._waiters[0][0] <= now:
            _, turn = self._waiters.popleft()
            if not turn.done():
                turn.set_exception(TimeoutError())
        self._timer = loop.call_at(self._waiters[0][0], self._expire) if self._waiters else None
