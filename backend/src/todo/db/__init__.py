"""The database layer: engine and connections, URL parsing, PostgreSQL and SQLite
specifics, outages as 503 problems, column types and migrations.

It knows no HTTP and no users: services hand it Core statements (see
todo.db.statements) and get rows back.
"""

from todo.db.database import Database
from todo.db.statements import Row, Runner, planned_each_time

__all__ = ["Database", "Row", "Runner", "planned_each_time"]
