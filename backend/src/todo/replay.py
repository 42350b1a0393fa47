"""Run a read once more when the database connection dropped under it.

A GET changes nothing (the caller's user row is an idempotent upsert), so
repeating it on a fresh connection is invisible to the client. Writes are never
repeated here: their commit may already have reached the database.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REPLAYABLE = "todo.replayable"
# Requests that change nothing: read in autocommit (todo.db) and safe to run again here.
SAFE_METHODS = frozenset({"GET", "HEAD"})


def mark_replayable(scope: Scope) -> None:
    """Note that this request failed only because its connection was lost."""
    scope[_REPLAYABLE] = True


class ReplayReadsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        scope[_REPLAYABLE] = False
        withheld = False

        async def withhold_if_replayable(message: Message) -> None:
            nonlocal withheld
            if message["type"] == "http.response.start" and scope[_REPLAYABLE]:
                withheld = True
            if not withheld:
                await send(message)

        await self.app(scope, receive, withhold_if_replayable)
        if withheld:
            scope[_REPLAYABLE] = False
            await self.app(scope, _empty_body(receive), send)


def _empty_body(receive: Receive) -> Receive:
    # The first attempt may already have read the (empty) body of the request.
    delivered = False

    async def receive_once() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive_once
