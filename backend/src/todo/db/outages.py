"""Which database failures are outages, and what the client is told about each.

This is the one place that reads SQLAlchemy, asyncpg, sqlite3 and socket
exceptions. A failure that is the database's (unreachable, connection dropped,
too slow, locked, out of connections) becomes a 503 problem; anything else is
left to propagate, because it is a bug and must be a logged 500.
"""

import logging
import sqlite3
from collections.abc import Callable, Iterator
from enum import Enum

import asyncpg
from sqlalchemy import exc as sa_exc

from todo.errors import ServiceUnavailableError

RETRY_AFTER_SECONDS = 2

logger = logging.getLogger("todo.db")


class Outage(Enum):
    UNREACHABLE = "the database cannot be reached"
    CONNECTION_LOST = "the connection to the database was lost"
    TIMED_OUT = "the database did not answer in time"
    NO_CONNECTION_FREE = "no database connection became free in time"
    REFUSED = "the database refused the work for now"
    BUSY = "the database is locked by another writer"

    @property
    def leaves_commit_in_doubt(self) -> bool:
        """Whether a COMMIT sent before this failure may still have been applied.

        A server that answered with an error did not commit; silence did not say.
        """
        return self in (Outage.UNREACHABLE, Outage.CONNECTION_LOST, Outage.TIMED_OUT)


class DatabaseUnavailableError(ServiceUnavailableError):
    problem_type = "urn:todo:problem:database-unavailable"
    title = "Database unavailable"

    def __init__(self, outage: Outage, *, unsent: bool = False) -> None:
        super().__init__(
            f"The request was not carried out: {outage.value}. Try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        self.outage = outage
        # Known never to have reached the database: safe to send again at once.
        self.unsent = unsent


class WriteOutcomeUnknownError(ServiceUnavailableError):
    """The commit was sent and no answer came back: it may or may not have happened.

    No Retry-After: repeating a non-idempotent write blindly could apply it twice.
    """

    problem_type = "urn:todo:problem:write-outcome-unknown"
    title = "Write outcome unknown"

    def __init__(self, outage: Outage) -> None:
        super().__init__(
            f"The change was sent to the database, but {outage.value} before it confirmed "
            "the commit, so it may or may not have been saved. Read it back before "
            "trying again."
        )
        self.outage = outage


_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
# SQLSTATE classes and codes that say "not now" rather than "wrong request":
# 08 connection exception, 53 insufficient resources (too many connections),
# 57P01-57P03 shutdown or start-up in progress, 57014 statement cancelled.
_LOST_STATES = ("08", "57P01", "57P02")
_REFUSED_STATES = ("53", "57P03", "57014")
_LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate(error: BaseException) -> str:
    return str(error.sqlstate or "") if isinstance(error, asyncpg.PostgresError) else ""


def _sqlite_busy(error: BaseException) -> bool:
    return (
        isinstance(error, sqlite3.OperationalError)
        and getattr(error, "sqlite_errorcode", 0) & 0xFF in _SQLITE_BUSY_CODES
    )


def never_sent(error: BaseException) -> bool:
    """Whether `error` says the statement was refused before it left the client.

    A pooled connection whose server ended it (a restart, a crash) can be lent
    again before asyncpg has seen the socket close: asyncpg then refuses to
    start the statement, because the server's goodbye is still being read.
    """
    return any(
        isinstance(link, asyncpg.InternalClientError) and "another operation" in str(link)
        for link in _causes(error)
    )


def is_lock_timeout(error: BaseException) -> bool:
    """PostgreSQL gave up waiting for a row lock (`lock_timeout`)."""
    return any(_sqlstate(link) == _LOCK_NOT_AVAILABLE for link in _causes(error))


# In order: the first that matches an exception, or what it wraps, names the outage.
_SIGNS: list[tuple[Callable[[BaseException], bool], Outage]] = [
    (lambda error: isinstance(error, sa_exc.TimeoutError), Outage.NO_CONNECTION_FREE),
    (
        lambda error: isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated,
        Outage.CONNECTION_LOST,
    ),
    (lambda error: isinstance(error, TimeoutError), Outage.TIMED_OUT),
    (lambda error: isinstance(error, OSError), Outage.UNREACHABLE),
    (_sqlite_busy, Outage.BUSY),
    (lambda error: _sqlstate(error).startswith(_LOST_STATES), Outage.CONNECTION_LOST),
    (lambda error: _sqlstate(error).startswith(_REFUSED_STATES), Outage.REFUSED),
    (
        lambda error: (
            isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)
        ),
        Outage.CONNECTION_LOST,
    ),
    (never_sent, Outage.CONNECTION_LOST),
]


def classify(error: BaseException) -> Outage | None:
    """The outage `error` reports, or None when it is not the database's fault."""
    for link in _causes(error):
        for sign, outage in _SIGNS:
            if sign(link):
                return outage
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it wraps: a driver error's original, or its explicit cause."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        wrapped = getattr(link, "orig", None) or getattr(link, "driver_exception", None)
        link = wrapped if isinstance(wrapped, BaseException) else link.__cause__


def as_service_error(
    error: BaseException, *, commit_sent: bool = False
) -> DatabaseUnavailableError | WriteOutcomeUnknownError | None:
    """The problem to answer for `error`, or None when it is not an outage."""
    outage = classify(error)
    if outage is None:
        return None
    logger.warning("database unavailable: %s (%s: %s)", outage.value, type(error).__name__, error)
    unsent = never_sent(error)
    if commit_sent and outage.leaves_commit_in_doubt and not unsent:
        return WriteOutcomeUnknownError(outage)
    return DatabaseUnavailableError(outage, unsent=unsent)
