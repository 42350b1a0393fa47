"""The change-notice listener listens while someone in the process waits, and only then."""

import asyncio
import time
from collections.abc import Callable
from uuid import uuid4

import pytest

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from tests.postgres import admin_connection
from todo.config import Settings
from todo.db import Database, notices
from todo.db.notices import CHANNEL


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@only_on("postgresql")
async def test_a_worker_listens_only_while_someone_waits(
    database_urls: DatabaseUrls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notices, "LINGER_SECONDS", 0.05)
    settings = Settings(database_url=database_urls.direct, database_pool_mode="session")
    database = Database(database_urls.direct, settings)
    listener = database.listener
    assert listener is not None
    admin = await admin_connection(database_urls.direct)
    user = uuid4()
    try:
        database.start_listening()
        await _until(lambda: listener.connection is not None, "the listener connects")
        # Connected, but with no one waiting nothing is listened for.
        assert not listener.listening

        with database.notices.subscribe(user) as subscription:
            await _until(lambda: listener.listening, "a subscription makes it listen")
            # Listening began after the subscription: everyone was woken to reread.
            assert await subscription.wait(within=5)
            await admin.execute(f"NOTIFY {CHANNEL}, '{user} 1'")
            assert await subscription.wait(within=5)
        received = database.notices.received

        # No one waits any more: after the linger, it stops listening.
        await _until(lambda: not listener.listening, "it stops once no one waits")
        await admin.execute(f"NOTIFY {CHANNEL}, '{user} 2'")

        with database.notices.subscribe(user) as subscription:
            await _until(lambda: listener.listening, "it listens again")
            assert await subscription.wait(within=5)
            await admin.execute(f"NOTIFY {CHANNEL}, '{user} 3'")
            assert await subscription.wait(within=5)
        # Notices come in order: had the one sent while it did not listen arrived, it
        # would have come before this one.
        assert database.notices.received == received + 1
    finally:
        await admin.close()
        await database.dispose()
