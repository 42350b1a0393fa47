"""The per-user token bucket's parameters, and the headers that describe it.

Headers follow draft-ietf-httpapi-ratelimit-headers (structured fields): the
policy names a quota `q` (the burst) and a window `w` (the seconds an empty
bucket takes to fill); `RateLimit` reports the units remaining `r` and the
seconds `t` until the bucket is full again.
"""

import math
import re
from dataclasses import dataclass

POLICY_NAME = "default"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_RATE_LIMIT = re.compile(
    r"\s*(?P<count>[1-9][0-9]*)\s*/\s*(?P<unit>[smh])(?:\s+burst\s+(?P<burst>[1-9][0-9]*))?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    rate: float  # tokens added per second
    burst: int  # the bucket's size: requests allowed at once after an idle spell

    @property
    def window_seconds(self) -> int:
        return max(1, math.ceil(self.burst / self.rate))

    def policy_header(self) -> str:
        return f'"{POLICY_NAME}";q={self.burst};w={self.window_seconds}'

    def remaining_header(self, tokens: float) -> str:
        full_in = math.ceil(max(0.0, self.burst - tokens) / self.rate)
        return f'"{POLICY_NAME}";r={math.floor(tokens)};t={full_in}'

    def retry_after(self, tokens: float) -> int:
        """Whole seconds until the bucket holds a token again."""
        return max(1, math.ceil((1 - tokens) / self.rate))


def parse_rate_limit(text: str) -> RateLimitPolicy | None:
    """`20/s burst 60`, `300/m`, ...; empty or `off` means no limit.

    Without `burst`, the bucket holds one unit's worth: `300/m` allows 300
    requests at once, then 5 a second.
    """
    if text.strip().lower() in {"", "off", "none"}:
        return None
    match = _RATE_LIMIT.fullmatch(text)
    if match is None:
        raise ValueError(f"RATE_LIMIT must look like '20/s burst 60' or '300/m', not {text!r}")
    count = int(match["count"])
    burst = int(match["burst"]) if match["burst"] else count
    return RateLimitPolicy(rate=count / _UNIT_SECONDS[match["unit"].lower()], burst=burst)
