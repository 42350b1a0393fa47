"""Running SQLAlchemy Core statements: compiled once, sent straight to the driver.

Every statement the service runs is a Core statement written once, in the
service that owns the rule, with named `bindparam`s. On PostgreSQL it is
compiled once for asyncpg and then sent on the pooled asyncpg connection with
its parameters in order: no session, no greenlet hop, no result machinery, one
round trip for a single statement. On SQLite it runs through SQLAlchemy's
connection (which caches the compilation too): the embedded database has no
round trips to save.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from uuid import UUID

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Row = Sequence[Any]
Params = Mapping[str, Any]

# Called with each statement's SQL, and with "COMMIT", just before it is sent:
# the fault-injection tests cut connections at exact points through it.
StatementListener = Callable[[str], None]


class Runner(Protocol):
    """Where a service runs its statements: the database, or one transaction in it."""

    async def fetch(
        self, statement: Executable, params: Params | None = None, *, repeatable: bool | None = None
    ) -> Sequence[Row]:
        """The statement's rows.

        `repeatable`: running the statement twice is the same as once. By
        default a read is and a write is not; an upsert that does nothing the
        second time says so. Outside a transaction a repeatable statement whose
        connection drops is run once more on a fresh one; a write never is.
        """
        ...

    async def run_many(self, statement: Executable, params: Sequence[Params]) -> None:
        """Run a write once for each set of parameters, in one transaction, sent together.

        asyncpg pipelines the executions (one round trip for all of them); SQLite
        runs them as one executemany.
        """
        ...

    @property
    def writes_in_with(self) -> bool:
        """Whether one statement may write to several tables (PostgreSQL's data-modifying WITH)."""
        ...

    def atomic(self) -> AbstractAsyncContextManager["Runner"]:
        """Several statements as one transaction: a new one, or the one this runner is."""
        ...

    def changed(self, user_id: UUID) -> None:
        """The user's data changed: wake this process's waiters once that is committed.

        On PostgreSQL the write's own NOTIFY does (todo.db.notices), and this does nothing.
        """
        ...


_Statement = TypeVar("_Statement", bound=Executable)
_PLANNED_EACH_TIME = "todo_planned_each_time"


def planned_each_time(statement: _Statement) -> _Statement:
    """`statement`, planned by PostgreSQL for each execution's own values.

    For a statement whose best plan depends on a value (a search pattern: a
    trigram index for a rare one, the newest-first index for a common one).
    A statement kept prepared gets a generic plan after five executions, which
    cannot use the trigram index at all: 60 ms instead of 3 for a rare word in
    100,000 tasks.
    """
    return statement.execution_options(**{_PLANNED_EACH_TIME: True})


def insert_on_conflict(table: Table) -> postgresql.Insert:
    """An INSERT that takes ON CONFLICT clauses, which SQLite spells as PostgreSQL does."""
    return postgresql.insert(table)


def is_read(statement: Executable) -> bool:
    return bool(getattr(statement, "is_select", False))


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    sql: str
    # The bound parameters' names, in the order of their $n.
    names: tuple[str, ...]
    # Values fixed in the statement itself (a literal, a `.values()` constant).
    fixed: Mapping[str, Any]
    bind_processors: tuple[Callable[[Any], Any] | None, ...]
    # None when the driver's values need no conversion (the common case).
    result_processors: tuple[Callable[[Any], Any] | None, ...] | None
    # See planned_each_time.
    planned_each_time: bool = False

    def arguments(self, params: Params | None) -> list[Any]:
        values = {**self.fixed, **params} if params else self.fixed
        arguments = []
        for name, process in zip(self.names, self.bind_processors, strict=True):
            value = values[name]
            arguments.append(value if process is None or value is None else process(value))
        return arguments

    def rows(self, records: Sequence[Row]) -> Sequence[Row]:
        processors = self.result_processors
        if processors is None:
            return records
        return [
            tuple(
                value if process is None or value is None else process(value)
                for process, value in zip(processors, record, strict=True)
            )
            for record in records
        ]


def compile_statement(statement: Executable, dialect: Dialect) -> CompiledStatement:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    # An expanding IN would need compiling again for every list length.
    assert not compiled.post_compile_params, "compiled once: see todo.db.types.one_of"
    names = tuple(compiled.positiontup or ())
    binds = compiled.binds
    fixed = {name: binds[name].effective_value for name in names if not binds[name].required}
    bind_processors = tuple(
        binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    columns = getattr(statement, "exported_columns", ())
    result_processors = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return CompiledStatement(
        sql=compiled.string,
        names=names,
        fixed=fixed,
        bind_processors=bind_processors,
        result_processors=(
            result_processors if any(p is not None for p in result_processors) else None
        ),
        planned_each_time=statement.get_execution_options().get(_PLANNED_EACH_TIME, False),
    )


class StatementCache:
    """Each statement compiled once per process for one dialect.

    Statements are module constants or come from cached builders, so the
    cache holds one entry per shape of query the code can write.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[Executable, CompiledStatement] = {}

    def __getitem__(self, statement: Executable) -> CompiledStatement:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = compile_statement(statement, self._dialect)
        return compiled
