"""Token buckets shared by every worker and instance, in Redis.

Its own module: only a service with RATE_LIMIT and REDIS_URL set imports the
Redis client (todo.ratelimit.limiters.create_limiter).
"""

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from todo.ratelimit.limiters import Decision
from todo.ratelimit.policy import RateLimitPolicy

logger = logging.getLogger("todo.ratelimit")

REDIS_TIMEOUT_SECONDS = 0.5
# After Redis fails, requests skip it (and are let through) for this long,
# so an outage does not add a connect timeout to every request.
REDIS_RETRY_SECONDS = 1.0
# At most one log line per this many seconds while Redis is unreachable.
REDIS_LOG_EVERY_SECONDS = 60.0


# Refill, then spend one token, in one atomic step. Redis's clock is the one
# every instance shares, so no instance's clock skew bends the rate.
_TAKE_SCRIPT = """
-- Before Redis 5, a script that reads TIME may write only after this.
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl_ms = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {allowed, tostring(tokens)}
"""


class RedisLimiter:
    """Buckets in Redis, shared by every worker and instance; fails open."""

    def __init__(
        self,
        policy: RateLimitPolicy,
        redis_url: str,
        key_prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._redis: Redis = Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._redis.register_script(_TAKE_SCRIPT)
        self._key_prefix = f"{key_prefix}ratelimit:"
        # An idle bucket refills within a window; keep it a little longer.
        self._ttl_ms = (policy.window_seconds + 1) * 1000
        self._clock = clock
        self._skip_until = float("-inf")
        self._last_logged = float("-inf")
        self._unlogged_failures = 0
        self._down = False

    async def take(self, user_key: str) -> Decision | None:
        now = self._clock()
        if now < self._skip_until:
            self._failed(now, None)
            return None
        try:
            allowed, tokens = await self._script(
                keys=[self._key_prefix + user_key],
                args=[self.policy.rate, self.policy.burst, self._ttl_ms],
            )
        except (RedisError, OSError) as error:
            self._skip_until = now + REDIS_RETRY_SECONDS
            self._failed(now, error)
            return None
        if self._down:
            self._recovered()
        return Decision(bool(allowed), float(tokens))

    def _failed(self, now: float, error: Exception | None) -> None:
        self._down = True
        self._unlogged_failures += 1
        if now - self._last_logged < REDIS_LOG_EVERY_SECONDS:
            return
        logger.warning(
            "rate limiter: Redis unreachable (%s); %d request(s) served without a limit",
            error or "still down",
            self._unlogged_failures,
        )
        self._last_logged = now
        self._unlogged_failures = 0

    def _recovered(self) -> None:
        logger.warning(
            "rate limiter: Redis reachable again; %d more request(s) were served without a limit",
            self._unlogged_failures,
        )
        self._down = False
        self._unlogged_failures = 0
        self._last_logged = float("-inf")

    async def close(self) -> None:
        await self._redis.aclose()
