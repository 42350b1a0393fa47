"""UTC timestamps that survive both databases unchanged.

PostgreSQL stores them as `timestamptz`. SQLite has no date type and SQLAlchemy's
default drops the zone, so there they are integer microseconds since the epoch:
exact, ordered, and cheap to compare in the keyset pagination query.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return (value - EPOCH) // ONE_MICROSECOND
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return EPOCH + value * ONE_MICROSECOND
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


class advance_timestamp(FunctionElement[datetime]):  # noqa: N801  (reads as a SQL function)
    """`now`, or one microsecond past `column` if that is later.

    Setting `updated_at` to this makes it move strictly forward on every change,
    even when two writers read the clock in the opposite order to the one in
    which the database applies their updates.
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "advance_timestamp"

    def __init__(
        self, column: ColumnElement[datetime] | Mapped[datetime], now: ColumnElement[datetime]
    ):
        super().__init__(column, now)


@compiles(advance_timestamp, "postgresql")
def _advance_timestamp_postgresql(
    element: advance_timestamp, compiler: SQLCompiler, **kw: Any
) -> str:
    column, now = element.clauses
    return (
        f"GREATEST({compiler.process(now, **kw)}, "
        f"{compiler.process(column, **kw)} + interval '1 microsecond')"
    )


@compiles(advance_timestamp, "sqlite")
def _advance_timestamp_sqlite(element: advance_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    column, now = element.clauses
    return f"MAX({compiler.process(now, **kw)}, {compiler.process(column, **kw)} + 1)"
