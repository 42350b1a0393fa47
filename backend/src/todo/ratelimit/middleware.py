"""The per-user rate limit: a dependency that spends a token and sets the headers.

It is installed only when RATE_LIMIT is set, so an unlimited service pays
nothing. The limit is taken after the caller is identified, whatever the way
of identifying, and before the body is parsed or the task touched.
"""

from http import HTTPStatus

from fastapi import Request

from todo.auth.current_user import CurrentOwner
from todo.errors import TodoError
from todo.http.middleware import add_response_headers
from todo.ratelimit.limiters import Limiter


class RateLimitedError(TodoError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    problem_type = "urn:todo:problem:rate-limited"
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"This user has made too many requests; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


async def enforce_rate_limit(request: Request, owner: CurrentOwner) -> None:
    limiter: Limiter = request.app.state.limiter
    decision = await limiter.take(str(owner.user_id))
    if decision is None:  # unknown (Redis is down): let it through
        return
    policy = limiter.policy
    # Every response to this request carries them, whichever way it is made.
    add_response_headers(
        request,
        {
            "RateLimit-Policy": policy.policy_header(),
            "RateLimit": policy.remaining_header(decision.tokens),
        },
    )
    if not decision.allowed:
        raise RateLimitedError(policy.retry_after(decision.tokens))
