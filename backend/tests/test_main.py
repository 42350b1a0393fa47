"""The app's life cycle in one process."""

import gc
from pathlib import Path

from todo.config import Settings
from todo.main import create_app


async def test_what_exists_at_startup_is_frozen_from_the_collector_while_serving(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db"))
    assert gc.get_freeze_count() == 0

    async with app.router.lifespan_context(app):
        # The app itself is among the frozen objects: full passes skip it.
        assert gc.get_freeze_count() > 10_000

    assert gc.get_freeze_count() == 0
