"""What has expired goes away by itself, with no cron job to set up.

Each worker purges as it starts and then every interval, in the background
so that a slow database never holds up startup; several workers doing so at
once only share the work. Each job (expired Idempotency-Keys, old tombstones)
says how many it removed.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

PURGE_INTERVAL_SECONDS = 15 * 60

logger = logging.getLogger("todo.db")

# What a job removes (for the log line), and the job.
PurgeJob = tuple[str, Callable[[], Awaitable[int]]]


async def _purge_logged(what: str, purge: Callable[[], Awaitable[int]]) -> None:
    try:
        purged = await purge()
    except Exception:
        # A database that is down now may be back by the next round.
        logger.exception("purging %s failed", what)
    else:
        if purged:
            logger.info("purged %d %s", purged, what)


async def purge_periodically(
    jobs: Sequence[PurgeJob], interval: float = PURGE_INTERVAL_SECONDS
) -> None:
    while True:
        for what, purge in jobs:
            await _purge_logged(what, purge)
        await asyncio.sleep(interval)
