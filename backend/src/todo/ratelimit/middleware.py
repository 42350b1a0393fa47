"""The per-user rate limit: a dependency that spends a token, a middleware for the headers.

Both are installed only when RATE_LIMIT is set, so an unlimited service pays
nothing. The limit is taken after the caller is identified, whatever the way
of identifying, and before the body is parsed or the task touched.
"""

from http import HTTPStatus

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.auth.current_user import CurrentOwner
from todo.errors import TodoError
from todo.ratelimit.limiters import Limiter

_HEADERS_STATE_KEY = "rate_limit_headers"


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
    request.state.rate_limit_headers = {
        "RateLimit-Policy": policy.policy_header(),
        "RateLimit": policy.remaining_header(decision.tokens),
    }
    if not decision.allowed:
        raise RateLimitedError(policy.retry_after(decision.tokens))


class RateLimitHeadersMiddleware:
    """Add the headers `enforce_rate_limit` left in the request state to its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = state.get(_HEADERS_STATE_KEY)
                if headers:
                    response_headers = MutableHeaders(scope=message)
                    for name, value in headers.items():
                        response_headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
