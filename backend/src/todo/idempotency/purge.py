"""Expired Idempotency-Keys go away by themselves, with no cron job to set up.

Each worker purges as it starts and then every PURGE_INTERVAL_SECONDS, in the
background so that a slow database never holds up startup; several workers
doing so at once only share the work.
"""

import asyncio
import logging

from todo.db import Database
from todo.idempotency.service import purge_expired

PURGE_INTERVAL_SECONDS = 15 * 60

logger = logging.getLogger("todo.idempotency")


async def _purge_logged(database: Database) -> None:
    try:
        purged = await purge_expired(database)
    except Exception:
        # A database that is down now may be back by the next round.
        logger.exception("purging expired idempotency keys failed")
    else:
        if purged:
            logger.info("purged %d expired idempotency keys", purged)


async def purge_periodically(database: Database, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    while True:
        await _purge_logged(database)
        await asyncio.sleep(interval)
