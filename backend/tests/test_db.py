import pytest

from todo.db import async_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example.com/app", "postgresql+asyncpg://u:***@db.example.com/app"),
        (
            "postgres://u:p@db.example.com:6543/app",
            "postgresql+asyncpg://u:***@db.example.com:6543/app",
        ),
        ("postgresql+asyncpg://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("postgresql+psycopg2://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("sqlite:///var/todo.db", "sqlite+aiosqlite:///var/todo.db"),
        ("sqlite+aiosqlite:////tmp/todo.db", "sqlite+aiosqlite:////tmp/todo.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert str(async_database_url(given)) == expected


def test_unsupported_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        async_database_url("mysql://u@h/app")
