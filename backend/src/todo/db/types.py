"""Column types and SQL constructs that mean the same on both databases.

UTC timestamps: PostgreSQL stores them as `timestamptz`. SQLite has no date
type and SQLAlchemy's default drops the zone, so there they are integer
microseconds since the epoch: exact, ordered, and cheap to compare in the
keyset pagination query.
"""

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, BindParameter, DateTime, Dialect, String
from sqlalchemy.dialects.postgresql import ARRAY
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

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "postgresql":
            # asyncpg answers timestamptz as an aware UTC datetime already.
            return None
        return super().result_processor(dialect, coltype)

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


class IntegerSet(TypeDecorator[Collection[int]]):
    """A set of integers bound as one parameter: an array on PostgreSQL, JSON on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Collection[int] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        values = sorted(value)
        return values if dialect.name == "postgresql" else json.dumps(values)


class one_of(FunctionElement[bool]):  # noqa: N801  (reads as a SQL operator)
    """`column` equals one of the integers bound to `values` (an `IntegerSet`).

    One parameter whatever the number of values, so the statement compiles
    once; an expanding IN would compile anew for every length.
    """

    inherit_cache = True
    name = "one_of"

    def __init__(self, column: ColumnElement[int] | Mapped[int], values: BindParameter[Any]):
        super().__init__(column, values)


@compiles(one_of, "postgresql")
def _one_of_postgresql(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(values, **kw)})"


@compiles(one_of, "sqlite")
def _one_of_sqlite(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    rendered = compiler.process(column, **kw), compiler.process(values, **kw)
    return "{} IN (SELECT value FROM json_each({}))".format(*rendered)  # noqa: S608
