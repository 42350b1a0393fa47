"""`python -m todo create-schema`: prepare the database named by DATABASE_URL."""

import asyncio
import sys

from todo.config import get_settings
from todo.db import Database
from todo.idempotency import models as _idempotency_models  # noqa: F401  (registers the table)
from todo.tasks import models as _models  # noqa: F401  (registers the tables)


async def _create_schema() -> None:
    database = Database(get_settings().database_url)
    try:
        await database.create_schema()
    finally:
        await database.dispose()


def main(argv: list[str]) -> int:
    if argv[1:] == ["create-schema"]:
        asyncio.run(_create_schema())
        return 0
    print("usage: python -m todo create-schema", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
