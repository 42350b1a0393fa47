import pytest

from todo.http.etags import EntityTags, format_etag, parse_entity_tags


def test_an_etag_is_the_quoted_version() -> None:
    assert format_etag(7) == '"7"'


@pytest.mark.parametrize(
    ("field_value", "weak", "expected"),
    [
        ('"3"', False, {3}),
        ('"3", "5"', False, {3, 5}),
        ('"3","5" ,  "8"', False, {3, 5, 8}),
        ('W/"3"', False, set()),  # strong comparison: a weak tag never matches
        ('W/"3", "4"', False, {4}),
        ('W/"3"', True, {3}),  # weak comparison ignores W/
        ('"a,b", "9"', False, {9}),  # a comma inside a tag does not split it
        ('"abc"', False, set()),  # not a tag this service issues
        ('"-1", "+2", " 3"', False, set()),
        ('"99999999999999999999"', False, set()),
        ("3", False, set()),  # unquoted: not an entity-tag
        ("", False, set()),
    ],
)
def test_entity_tag_lists(field_value: str, weak: bool, expected: set[int]) -> None:
    assert parse_entity_tags(field_value, weak=weak) == EntityTags(
        any=False, versions=frozenset(expected)
    )


@pytest.mark.parametrize("field_value", ["*", " * "])
def test_star_matches_any_version(field_value: str) -> None:
    tags = parse_entity_tags(field_value, weak=False)
    assert tags.any
    assert tags.matches(1)
    assert tags.matches(42)


def test_matches_only_the_named_versions() -> None:
    tags = parse_entity_tags('"2", "4"', weak=True)
    assert tags.matches(2)
    assert not tags.matches(3)
