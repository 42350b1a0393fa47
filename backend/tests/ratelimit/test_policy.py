import pytest

from todo.config import Settings
from todo.ratelimit.policy import RateLimitPolicy, parse_rate_limit


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("20/s burst 60", 20.0, 60),
        ("20/s", 20.0, 20),
        ("300/m", 5.0, 300),
        ("30/m burst 10", 0.5, 10),
        (" 7 / S  BURST 9 ", 7.0, 9),
        ("3600/h burst 5", 1.0, 5),
    ],
)
def test_rate_limits_parse(text: str, rate: float, burst: int) -> None:
    assert parse_rate_limit(text) == RateLimitPolicy(rate=rate, burst=burst)


@pytest.mark.parametrize("text", ["", "  ", "off", "OFF", "none"])
def test_no_rate_limit(text: str) -> None:
    assert parse_rate_limit(text) is None


@pytest.mark.parametrize(
    "text", ["20", "20/x", "0/s", "-1/s", "20/s burst 0", "20/s burst", "1.5/s", "20/s 60"]
)
def test_a_malformed_rate_limit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT"):
        parse_rate_limit(text)


def test_settings_read_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT", "20/s burst 60")
    assert Settings().rate_limit == RateLimitPolicy(rate=20.0, burst=60)
    monkeypatch.delenv("RATE_LIMIT")
    assert Settings().rate_limit is None


def test_headers_use_the_structured_field_syntax() -> None:
    policy = RateLimitPolicy(rate=20.0, burst=60)
    assert policy.policy_header() == '"default";q=60;w=3'
    assert policy.remaining_header(60.0) == '"default";r=60;t=0'
    assert policy.remaining_header(0.5) == '"default";r=0;t=3'
    assert policy.remaining_header(40.0) == '"default";r=40;t=1'


def test_retry_after_is_the_wait_for_one_token_in_whole_seconds() -> None:
    slow = RateLimitPolicy(rate=0.1, burst=1)  # 6/m
    assert slow.retry_after(0.0) == 10
    assert slow.retry_after(0.95) == 1
    assert RateLimitPolicy(rate=20.0, burst=60).retry_after(0.0) == 1
