"""The sync routes: the change feed, and the same changes live over Server-Sent Events."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from todo.auth.current_user import CurrentOwner
from todo.config import Settings
from todo.deps import settings_of
from todo.http.problems import problem_docs
from todo.ratelimit.docs import RATE_LIMITED_DOCS
from todo.sync import service
from todo.sync.cursor import CURSOR_PATTERN, decode_sync_cursor
from todo.sync.stream import Streams, events, feed_json, wait_for_changes

DEFAULT_FEED_LIMIT = 500
MAX_FEED_LIMIT = 1000
MAX_WAIT_SECONDS = 60

router = APIRouter(
    prefix="/api/tasks",
    tags=["sync"],
    responses={**problem_docs(400, 410, 422, 500, 503), **RATE_LIMITED_DOCS},
)

_CHANGE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["op", "task"],
            "properties": {
                "op": {"type": "string", "const": "upsert"},
                "task": {"$ref": "#/components/schemas/TaskRead"},
            },
        },
        {
            "type": "object",
            "required": ["op", "id"],
            "properties": {
                "op": {"type": "string", "const": "delete"},
                "id": {"type": "string", "format": "uuid"},
            },
        },
    ]
}
_FEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["changes", "cursor", "has_more"],
    "properties": {
        "changes": {"type": "array", "items": _CHANGE_SCHEMA},
        "cursor": {"type": "string", "pattern": CURSOR_PATTERN},
        "has_more": {"type": "boolean"},
    },
}
# One event of the stream, as an event-stream parser reads it (comment lines carry none).
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["changes", "ready"]},
        "id": {
            "type": "string",
            "pattern": CURSOR_PATTERN,
            "description": "On `changes`: the cursor after them, to resume from.",
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": '`changes`: `{"changes": [...]}`, the feed\'s elements; '
            '`ready`: `{"cursor": "..."}`.',
        },
    },
}
LAST_EVENT_ID_HEADER = "Last-Event-ID"
# Read from the request itself: as a typed optional header, its schema would allow null.
_LAST_EVENT_ID_PARAMETER: dict[str, Any] = {
    "name": LAST_EVENT_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "The id of the last event received: the stream resumes after it.",
    "schema": {"type": "string", "pattern": CURSOR_PATTERN},
}
_SINCE_DESCRIPTION = (
    "Where to start: a `cursor` from an earlier answer (or an event's id). "
    "Without it, the snapshot: every live task."
)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


def streams_of(request: Request) -> Streams:
    streams: Streams = request.app.state.streams
    return streams


SinceQuery = Annotated[
    str | None,
    Query(description=_SINCE_DESCRIPTION, json_schema_extra={"pattern": CURSOR_PATTERN}),
]


@router.get(
    "/changes",
    summary="What changed in the caller's tasks since a cursor",
    description=(
        "Each task at most once, in its latest state, in the order of the writes; a page "
        "never ends inside one write (so it may hold more than `limit`). Start again "
        "without `since` after a 410."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The changes after `since`, and the cursor to read on from.",
            "content": {"application/json": {"schema": _FEED_SCHEMA}},
        }
    },
)
async def read_changes(
    request: Request,
    owner: CurrentOwner,
    since: SinceQuery = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_FEED_LIMIT, description="Changes per page.")
    ] = DEFAULT_FEED_LIMIT,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to hold the request when nothing is newer (long polling).",
        ),
    ] = 0,
) -> Response:
    settings: Settings = settings_of(request)
    at = await service.position(owner.database, owner.user_id, since)
    changes, after, has_more = await wait_for_changes(
        owner.database,
        streams_of(request),
        owner.user_id,
        at,
        limit,
        wait=wait,
        heartbeat=settings.sync_heartbeat_seconds,
    )
    body = feed_json(changes, after.cursor, has_more=has_more)
    return Response(body, media_type="application/json")


@router.get(
    "/stream",
    summary="The caller's changes, live, as Server-Sent Events",
    description=(
        "`changes` events (`id` is the cursor after them, `data` is "
        '`{"changes": [...]}` with the feed\'s elements), first catching up from '
        "`Last-Event-ID`, else `since`, else the snapshot; then one `ready` event "
        '(`data: {"cursor": "..."}`), then one `changes` event per write. A comment line '
        "at every heartbeat. The server ends the stream after a while (and when the token "
        "expires); reconnect with `Last-Event-ID`."
    ),
    response_class=EventStreamResponse,
    openapi_extra={"parameters": [_LAST_EVENT_ID_PARAMETER]},
    responses={
        200: {
            "description": "The event stream.",
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
            "headers": {
                "Cache-Control": {"schema": {"type": "string", "enum": ["no-cache"]}},
            },
        },
    },
)
async def stream_changes(
    request: Request,
    owner: CurrentOwner,
    since: SinceQuery = None,
) -> EventStreamResponse:
    settings: Settings = settings_of(request)
    streams = streams_of(request)
    streams.check_room()
    last_event_id = request.headers.get(LAST_EVENT_ID_HEADER)
    if since is not None and last_event_id is not None:
        # Not used, but never silently wrong.
        decode_sync_cursor(since)
    start = last_event_id if last_event_id is not None else since
    at = await service.position(owner.database, owner.user_id, start)
    body = events(
        owner.database,
        streams,
        owner.user_id,
        at,
        heartbeat=settings.sync_heartbeat_seconds,
        max_seconds=settings.sync_stream_max_seconds,
        expires_at=getattr(request.state, "credentials_expire_at", None),
    )
    return EventStreamResponse(
        body, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
