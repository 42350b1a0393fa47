import logging
import socket
from collections.abc import Iterator

import pytest

from todo.ratelimit import limiters, redis_limiter
from todo.ratelimit.limiters import LocalLimiter
from todo.ratelimit.policy import RateLimitPolicy
from todo.ratelimit.redis_limiter import RedisLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(RateLimitPolicy(rate=2.0, burst=3), clock=clock)

    decisions = [await limiter.take("u") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.tokens for d in decisions] == [2.0, 1.0, 0.0, 0.0]

    clock.now += 0.5  # one token back
    assert (await limiter.take("u")).allowed
    assert not (await limiter.take("u")).allowed

    clock.now += 60  # never more than the burst
    assert (await limiter.take("u")).tokens == 2.0


async def test_each_user_has_a_bucket_of_their_own() -> None:
    limiter = LocalLimiter(RateLimitPolicy(rate=1.0, burst=1), clock=FakeClock())
    assert (await limiter.take("a")).allowed
    assert not (await limiter.take("a")).allowed
    assert (await limiter.take("b")).allowed


async def test_idle_buckets_are_forgotten_when_memory_runs_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limiters, "LOCAL_BUCKETS_LIMIT", 3)
    clock = FakeClock()
    limiter = LocalLimiter(RateLimitPolicy(rate=1.0, burst=2), clock=clock)
    await limiter.take("idle-1")
    await limiter.take("idle-2")
    clock.now += 10  # past the 2 s window: both full again
    await limiter.take("busy")
    await limiter.take("busy")
    await limiter.take("new")  # the fourth: the idle ones make room

    assert not (await limiter.take("busy")).allowed  # still remembered, still empty
    assert (await limiter.take("idle-1")).tokens == 1.0  # as good as full


async def test_redis_buckets_are_shared_by_every_limiter_on_the_same_keys(
    redis_url: str, redis_prefix: str
) -> None:
    policy = RateLimitPolicy(rate=1 / 60, burst=3)
    one = RedisLimiter(policy, redis_url, redis_prefix)
    two = RedisLimiter(policy, redis_url, redis_prefix)
    try:
        decisions = [
            await one.take("u"),
            await two.take("u"),
            await one.take("u"),
            await two.take("u"),
        ]
        assert [d is not None and d.allowed for d in decisions] == [True, True, True, False]
        assert [int(d.tokens) for d in decisions if d is not None] == [2, 1, 0, 0]
        other = await two.take("someone-else")
        assert other is not None
        assert other.allowed
    finally:
        await one.close()
        await two.close()


@pytest.fixture
def dead_redis_url() -> Iterator[str]:
    """A loopback port held bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


async def test_unreachable_redis_fails_open_and_logs_once(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    limiter = RedisLimiter(RateLimitPolicy(rate=1.0, burst=1), dead_redis_url, "x:", clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="todo.ratelimit"):
            answers = [await limiter.take("u") for _ in range(5)]
            clock.now += 2  # past the pause: Redis is tried again, and still down
            answers.append(await limiter.take("u"))
            assert len(caplog.records) == 1
            clock.now += redis_limiter.REDIS_LOG_EVERY_SECONDS  # a minute on: one more line
            answers.append(await limiter.take("u"))
    finally:
        await limiter.close()

    assert answers == [None] * 7
    assert len(caplog.records) == 2
    assert "Redis unreachable" in caplog.records[0].getMessage()
    assert "6 request(s)" in caplog.records[1].getMessage()
