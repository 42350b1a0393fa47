"""Which databases this run of the suite covers, from the environment.

`TEST_DATABASES` (comma-separated: sqlite, postgresql) picks the engines.
`TEST_POSTGRES_URL` names the server the app talks to, in any form DATABASE_URL
accepts (a PgBouncer, a TLS server with `?sslmode=require`, ...).
`TEST_POSTGRES_ADMIN_URL` names the same server directly, for what PgBouncer
cannot do: CREATE/DROP DATABASE, migrations, and killing the app's backends.
The suite creates and drops its own databases there.
`TEST_POSTGRES_BIN_DIR` holds the server programs (`initdb`, `pg_ctl`) for the
tests that run a PostgreSQL server of their own; by default the newest
`/usr/lib/postgresql/<version>/bin` that has them.
"""

import os
from pathlib import Path

import pytest

TEST_DATABASES = os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",")
TEST_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", TEST_POSTGRES_URL)


# For tests that reach PostgreSQL some other way than through `database_urls`.
needs_postgresql = pytest.mark.skipif(
    "postgresql" not in TEST_DATABASES, reason="TEST_DATABASES leaves PostgreSQL out"
)


def _newest_postgres_bin_dir() -> Path | None:
    found = [
        folder / "bin"
        for folder in Path("/usr/lib/postgresql").glob("*")
        if folder.name.isdigit() and (folder / "bin" / "pg_ctl").exists()
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None)


_bin_dir = os.environ.get("TEST_POSTGRES_BIN_DIR")
TEST_POSTGRES_BIN_DIR = Path(_bin_dir) if _bin_dir else _newest_postgres_bin_dir()


def only_on(*backends: str) -> pytest.MarkDecorator:
    """Run a test on those of `backends` that this run covers."""
    return pytest.mark.parametrize(
        "database_urls", [name for name in TEST_DATABASES if name in backends], indirect=True
    )
