"""Token buckets, one per user: in this process, or shared through Redis
(todo.ratelimit.redis_limiter)."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from todo.ratelimit.policy import RateLimitPolicy

logger = logging.getLogger("todo.ratelimit")

LOCAL_BUCKETS_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tokens: float  # left in the bucket after this request


class Limiter(Protocol):
    policy: RateLimitPolicy

    async def take(self, user_key: str) -> Decision | None:
        """Spend one token; None when the answer is unknown and the request goes through."""

    async def close(self) -> None: ...


class LocalLimiter:
    """Buckets in this process's memory: each worker counts on its own."""

    def __init__(
        self, policy: RateLimitPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)

    async def take(self, user_key: str) -> Decision:
        now = self._clock()
        tokens, at = self._buckets.get(user_key, (float(self.policy.burst), now))
        tokens = min(float(self.policy.burst), tokens + (now - at) * self.policy.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._buckets) >= LOCAL_BUCKETS_LIMIT and user_key not in self._buckets:
            self._forget_full_buckets(now)
        self._buckets[user_key] = (tokens, now)
        return Decision(allowed, tokens)

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket idle for a whole window is full again: forgetting it changes nothing.
        window = self.policy.window_seconds
        self._buckets = {
            user: state for user, state in self._buckets.items() if now - state[1] < window
        }
        if len(self._buckets) >= LOCAL_BUCKETS_LIMIT:
            self._buckets.clear()

    async def close(self) -> None:
        self._buckets.clear()


def create_limiter(policy: RateLimitPolicy, redis_url: str | None, key_prefix: str) -> Limiter:
    if redis_url:
        # Imported here: the Redis client costs each worker 14 MiB.
        from todo.ratelimit.redis_limiter import RedisLimiter  # noqa: PLC0415

        return RedisLimiter(policy, redis_url, key_prefix)
    return LocalLimiter(policy)
