"""The one ASGI layer every request passes through before FastAPI.

In order, from the outside in, it gives the request its id (todo.http.request_context),
answers CORS for cross-origin requests, refuses bodies over the limit with a 413,
and turns an unhandled exception into a logged 500. Each response carries the
request id, `Vary: Origin` (or, cross-origin, the CORS headers) and the headers a
dependency left in the request state (`RESPONSE_HEADERS_STATE`); once answered,
the request is logged and counted.

One layer with one `send` wrapper, rather than a middleware for each: each layer
costs a request a call, a closure and a pass over its messages.
"""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from random import getrandbits
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo.http.logs import current_request_id, write_line
from todo.http.problems import problem_response, unexpected_error_response
from todo.http.request_context import (
    CLIENT_CLOSED_REQUEST,
    REQUEST_ID_HEADER_KEY,
    access_logger,
    caller_id,
    incoming_request_id,
    route_template,
)

if TYPE_CHECKING:
    from todo.http.metrics import Metrics

logger = logging.getLogger("todo.errors")

# A request-state key (`request.state.response_headers`): a dict of headers added to
# the request's response, whichever way it is made (the rate limit's, for one).
RESPONSE_HEADERS_STATE = "response_headers"

_VARY_ORIGIN = (b"vary", b"Origin")


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Have the request's response carry `headers`, whichever way it is made."""
    state = request.scope.setdefault("state", {})
    state.setdefault(RESPONSE_HEADERS_STATE, {}).update(headers)


class EdgeMiddleware:
    """Request id, CORS, the body limit and unexpected errors; the access line and metrics.

    `cors` holds Starlette's CORSMiddleware arguments. A request without `Origin`
    is not cross-origin: it skips Starlette's CORS handling, which would only add
    `Vary: Origin` after parsing every request and response header to find that out.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        cors: dict[str, Any],
        metrics: "Metrics | None" = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._cors = cors
        self._cross_origin = CORSMiddleware(self._limited, **cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = perf_counter()
        # 128 random bits in hex, as uuid4().hex would give (less its version
        # digits). A request id correlates lines, it guards nothing: the process's
        # own generator (seeded from the OS, and again in a forked child) serves,
        # without the system call os.urandom makes for each one.
        request_id = incoming_request_id(scope) or f"{getrandbits(128):032x}"
        cross_origin = any(name == b"origin" for name, _ in scope["headers"])
        added: Sequence[tuple[bytes, bytes]] = (
            ((REQUEST_ID_HEADER_KEY, request_id.encode("ascii")),)
            if cross_origin
            # Whatever a cache stores from this answer must not serve a cross-origin one.
            else ((REQUEST_ID_HEADER_KEY, request_id.encode("ascii")), _VARY_ORIGIN)
        )
        status = CLIENT_CLOSED_REQUEST

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *added]
                state = scope.get("state")
                extra = state.get(RESPONSE_HEADERS_STATE) if state else None
                if extra:
                    headers += [
                        (name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in extra.items()
                    ]
                message["headers"] = headers
            await send(message)

        token = current_request_id.set(request_id)
        try:
            try:
                if cross_origin:
                    await self._cross_origin(scope, receive, send_with_headers)
                else:
                    await self._limited(scope, receive, send_with_headers)
            except Exception:
                if status != CLIENT_CLOSED_REQUEST:
                    # The response had started: nothing else can be sent.
                    status = HTTPStatus.INTERNAL_SERVER_ERROR
                    raise
                self._log_error(scope, request_id)
                response = unexpected_error_response(scope.get("path", ""))
                await self._respond(response, cross_origin, scope, send_with_headers)
        finally:
            current_request_id.reset(token)
            self._record(scope, request_id, int(status), perf_counter() - started_at)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, unless the request's body is over the limit (a 413).

        A declared Content-Length is checked up front. A body without one (chunked)
        is read here, up to the limit, and replayed to the app: raising from inside
        `receive` would reach FastAPI's body parser and come out as a plain 400.
        """
        declared = _declared_length(scope)
        if declared is not None:
            if declared > self.max_body_bytes:
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
            if size > self.max_body_bytes:
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
            f"The request body is larger than the limit of {self.max_body_bytes} bytes.",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, _no_receive, send)

    async def _respond(
        self, response: Response, cross_origin: bool, scope: Scope, send: Send
    ) -> None:
        """Send a response the edge makes itself, with CORS's headers when cross-origin."""
        app: ASGIApp = CORSMiddleware(response, **self._cors) if cross_origin else response
        await app(scope, _no_receive, send)

    def _log_error(self, scope: Scope, request_id: str) -> None:
        logger.exception(
            "unhandled error",
            extra={
                "method": scope["method"],
                "route": route_template(scope),
                "request_id": request_id,
                "user_id": caller_id(scope),
            },
        )

    def _record(self, scope: Scope, request_id: str, status: int, seconds: float) -> None:
        logging_on = access_logger.isEnabledFor(logging.INFO)
        if not logging_on and self.metrics is None:
            return
        route = route_template(scope)
        method = scope["method"]
        if self.metrics is not None:
            self.metrics.observe_request(method, route, status, seconds)
        if logging_on:
            fields = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "request_id": request_id,
                "user_id": caller_id(scope),
            }
            write_line(access_logger, "request", fields)


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
