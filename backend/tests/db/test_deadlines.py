"""Statement deadlines: one timer for all, each statement past its own cut off, none else."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import DatabaseUrls
from tests.environment import only_on
from tests.postgres import admin_connection
from todo.db.deadlines import Deadlines

LIMIT = 0.3

pytestmark = only_on("postgresql")


@pytest.fixture
async def connections(database_urls: DatabaseUrls) -> AsyncIterator[list[asyncpg.Connection]]:
    opened = [await admin_connection(database_urls.app) for _ in range(3)]
    yield opened
    for connection in opened:
        connection.terminate()


async def test_a_statement_past_its_deadline_is_cut_off_and_says_so(
    connections: list[asyncpg.Connection],
) -> None:
    deadlines = Deadlines(LIMIT)
    [slow, *_] = connections
    loop = asyncio.get_running_loop()

    watch = deadlines.start(slow)
    started = loop.time()
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await slow.execute("SELECT pg_sleep(5)")
    deadlines.end(watch)

    assert LIMIT <= loop.time() - started < LIMIT + 0.5
    assert watch.expired
    assert slow.is_closed()


async def test_statements_that_end_in_time_are_left_alone_and_later_ones_keep_their_own(
    connections: list[asyncpg.Connection],
) -> None:
    deadlines = Deadlines(LIMIT)
    quick, slow, later = connections
    loop = asyncio.get_running_loop()

    # The oldest ends at once: the timer armed for it must not cut the others early.
    first = deadlines.start(quick)
    assert await quick.fetchval("SELECT 1") == 1
    deadlines.end(first)
    await asyncio.sleep(LIMIT / 2)
    cut = deadlines.start(slow)
    started = loop.time()
    slow_statement = asyncio.create_task(slow.execute("SELECT pg_sleep(5)"))
    await asyncio.sleep(LIMIT / 2)
    kept = deadlines.start(later)
    in_time = asyncio.create_task(later.execute("SELECT pg_sleep(0.1)"))

    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await slow_statement
    deadlines.end(cut)
    await in_time
    deadlines.end(kept)

    # The slow statement got its whole limit from its own start, not the oldest's.
    assert loop.time() - started >= LIMIT
    assert cut.expired
    assert not first.expired
    assert not kept.expired
    assert not quick.is_closed()
    assert not later.is_closed()
    # And once everything has ended, nothing is left to watch.
    await asyncio.sleep(LIMIT * 1.5)
    assert not later.is_closed()
    assert await later.fetchval("SELECT 2") == 2
