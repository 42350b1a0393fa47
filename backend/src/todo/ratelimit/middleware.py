"""Per-user rate limiting of the API, before any database work.

Installed only when RATE_LIMIT is set, so an unlimited service pays nothing.
"""

from http import HTTPStatus

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.identity import claimed_user_id
from todo.problems import problem_response
from todo.ratelimit.limiters import Limiter

RATE_LIMITED_PROBLEM_TYPE = "urn:todo:problem:rate-limited"
LIMITED_PATH_PREFIX = "/api/"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter
        self.policy_header = limiter.policy.policy_header()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        user_id = claimed_user_id(scope)
        decision = await self.limiter.take(str(user_id)) if user_id is not None else None
        if decision is None:
            await self.app(scope, receive, send)
            return

        policy = self.limiter.policy
        headers = {
            "RateLimit-Policy": self.policy_header,
            "RateLimit": policy.remaining_header(decision.tokens),
        }
        if not decision.allowed:
            retry_after = policy.retry_after(decision.tokens)
            headers["Retry-After"] = str(retry_after)
            response = problem_response(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"This user has made too many requests; retry in {retry_after} s.",
                title="Too many requests",
                problem_type=RATE_LIMITED_PROBLEM_TYPE,
                instance=scope["path"],
                headers=headers,
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
