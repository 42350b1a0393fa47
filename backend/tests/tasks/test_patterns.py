"""The patterns published in the OpenAPI schema accept exactly what the API does.

Schemathesis (`make fuzz`) draws values from these patterns and expects each to
be accepted; these tests pin the agreement down character by character.
"""

import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import ValidationError

from todo.tasks.cursor import (
    CURSOR_PATTERN,
    Cursor,
    InvalidCursorError,
    decode_cursor,
    encode_cursor,
)
from todo.tasks.schemas import DESCRIPTION_PATTERN, TITLE_PATTERN, TaskCreate

SURROGATES = range(0xD800, 0xE000)
# The title's schema has no maxLength: white space around it is trimmed, not counted.
TITLE_SCHEMA_LENGTH = 10**6


def _title_accepted(title: str) -> bool:
    try:
        TaskCreate(title=title)
    except ValidationError:
        return False
    return True


def _description_accepted(description: str) -> bool:
    try:
        TaskCreate(title="t", description=description)
    except ValidationError:
        return False
    return True


def _in_schema(pattern: str, value: str, max_length: int) -> bool:
    # fullmatch: JSON Schema's `$` does not match before a final newline.
    return len(value) <= max_length and re.fullmatch(pattern, value) is not None


def test_the_title_pattern_agrees_with_validation_on_every_character() -> None:
    # Beyond the BMP no character is a control character or blank.
    characters = [chr(c) for c in range(0x10000) if c not in SURROGATES]
    characters += ["\U0001f600", "\U000e0001", "\U0010ffff"]

    disagreements = [
        hex(ord(char))
        for char in characters
        if _in_schema(TITLE_PATTERN, char, TITLE_SCHEMA_LENGTH) != _title_accepted(char)
    ]

    assert disagreements == []


@pytest.mark.parametrize(
    ("title", "accepted"),
    [
        ("  Buy milk  ", True),
        (" ", False),
        ("\u3000\u00a0 ", False),
        ("a" * 200, True),
        ("a" * 201, False),
        (" " + "a" * 199, True),
        # The limit counts the title once trimmed.
        (" " + "a" * 200 + "\t\n", True),
        (" " + "a" * 201 + " ", False),
        ("a\n", True),
        ("\x1ca", False),
        ("a\tb", False),
        ("line\u2028separator", True),
        ("\u200b", True),
    ],
)
def test_the_title_pattern_agrees_with_validation(title: str, accepted: bool) -> None:
    assert _in_schema(TITLE_PATTERN, title, TITLE_SCHEMA_LENGTH) is accepted
    assert _title_accepted(title) is accepted


@pytest.mark.parametrize(
    ("description", "accepted"),
    [("", True), ("\x01\t\n", True), ("a\x00", False), ("a" * 2000, True), ("a" * 2001, False)],
)
def test_the_description_pattern_agrees_with_validation(description: str, accepted: bool) -> None:
    assert _in_schema(DESCRIPTION_PATTERN, description, 2000) is accepted
    assert _description_accepted(description) is accepted


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(datetime(1970, 1, 1, tzinfo=UTC), UUID(int=0)),
        Cursor(datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC), uuid4()),
        Cursor(datetime(5138, 1, 1, tzinfo=UTC), UUID(int=2**128 - 1)),
    ],
)
def test_a_cursor_matches_its_pattern_and_round_trips(cursor: Cursor) -> None:
    token = encode_cursor(cursor)

    assert re.fullmatch(CURSOR_PATTERN, token)
    assert decode_cursor(token) == cursor


@pytest.mark.parametrize(
    "token",
    [
        "",
        "1.abc",
        "123",
        "1." + "F" * 32,
        "1" * 18 + "." + "0" * 32,
        "-1." + "0" * 32,
        "1." + "0" * 32 + "\n",
    ],
)
def test_a_string_outside_the_pattern_is_refused(token: str) -> None:
    assert not re.fullmatch(CURSOR_PATTERN, token)
    with pytest.raises(InvalidCursorError):
        decode_cursor(token)


@pytest.mark.parametrize("token", ["0." + "0" * 32, "9" * 17 + "." + "f" * 32])
async def test_any_cursor_the_schema_allows_is_a_position(
    client: httpx.AsyncClient, headers: dict[str, str], token: str
) -> None:
    await client.post("/api/tasks", json={"title": "a"}, headers=headers)

    response = await client.get("/api/tasks", params={"cursor": token}, headers=headers)

    assert response.status_code == 200
    # The smallest position has nothing after it; the largest has everything.
    assert len(response.json()) == (0 if token.startswith("0.") else 1)


async def test_pages_follow_the_link_header(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    titles = [f"task {n}" for n in range(5)]
    for title in titles:
        await client.post("/api/tasks", json={"title": title}, headers=headers)

    seen: list[str] = []
    url: str | None = "/api/tasks?limit=2"
    while url is not None:
        response = await client.get(url, headers=headers)
        seen += [task["title"] for task in response.json()]
        link = response.headers.get("Link")
        url = re.fullmatch(r'<(.+)>; rel="next"', link)[1] if link else None  # type: ignore[index]

    assert seen == titles[::-1]
