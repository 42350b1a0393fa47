"""In JWT mode a change stream lasts no longer than the token that opened it."""

import time
from uuid import uuid4

from fastapi import FastAPI

from tests.auth.issuer import SigningKey, bearer, claims
from tests.sync.test_stream_app import HEARTBEAT, OpenStream
from todo.auth.current_user import build_authenticator
from todo.config import Settings
from todo.db import Database
from todo.main import create_app


async def test_the_stream_ends_when_the_token_expires(
    jwt_app: FastAPI, jwt_settings: Settings, database: Database, signing_key: SigningKey
) -> None:
    settings = jwt_settings.model_copy(update={"sync_heartbeat_seconds": HEARTBEAT})
    sync_app = create_app(settings, database=database, authenticator=build_authenticator(settings))
    token = signing_key.sign(claims(subject=f"user-{uuid4()}", exp=int(time.time()) + 2))
    started = time.monotonic()
    stream = OpenStream(sync_app, bearer(token))

    body = await stream.until_end(within=10)

    assert stream.status == 200
    assert b"event: ready" in body
    # Well before the 300 s maximum: at the token's expiry (a whole second, so 1 to 2 s away).
    assert 0.5 <= time.monotonic() - started < 4
