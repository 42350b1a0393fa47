"""ASGI middleware that must see every request, before FastAPI does."""

import logging
from http import HTTPStatus

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.http.problems import problem_response, unexpected_error_response
from todo.http.request_context import caller_id, current_request_id, route_template

logger = logging.getLogger("todo.errors")


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413 problem.

    A declared Content-Length is checked up front. A body without one (chunked)
    is read here, up to the limit, and replayed to the app: raising from inside
    `receive` would reach FastAPI's body parser and come out as a plain 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before sending its body.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        response = problem_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request body is larger than the limit of {self.max_bytes} bytes.",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _declared_length(scope: Scope) -> int | None:
    """The body's declared size; 0 when the request has none; None when unknown.

    A request with neither Content-Length nor Transfer-Encoding has no body
    (RFC 9112, section 6.3), as nearly every GET: it goes straight through.
    """
    content_length: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            # Chunked: the size is only known once read (and it overrides any length).
            return None
        if name == b"content-length":
            content_length = value
    if content_length is None:
        return 0
    try:
        return int(content_length)
    except ValueError:
        return None


class UnexpectedErrorMiddleware:
    """Turn an unhandled exception into a logged 500 problem.

    Starlette's own handler for `Exception` runs outside every user middleware,
    so its response would miss the CORS headers; this one sits inside them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def watch(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logger.exception(
                "unhandled error",
                extra={
                    "method": scope["method"],
                    "route": route_template(scope),
                    "request_id": current_request_id.get(),
                    "user_id": caller_id(scope),
                },
            )
            if response_started:
                raise
            await unexpected_error_response(scope.get("path", ""))(scope, receive, send)


class CrossOriginMiddleware(CORSMiddleware):
    """Starlette's CORS handling, skipped for requests that are not cross-origin.

    A browser names the origin of every cross-origin request; without `Origin`
    Starlette would only add `Vary: Origin`, after parsing every request and
    response header to find that out. That is all this does for such requests.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Whatever a cache stores from this answer must not serve a cross-origin one.
                message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, send_vary)
