"""Entity tags for tasks (RFC 9110, section 8.8.3).

A task's ETag is its version in quotes, `"7"`: strong, because the version
changes on every write and the representation is fully determined by it. The
tag is only ever compared with tags of the same URL, so the task id need not
be part of it. Keeping the version readable lets a conditional write check it
in the same SQL statement that writes (`WHERE version IN (...)`).
"""

import re
from dataclasses import dataclass

# An entity-tag is an optional W/ and a quoted string of etagc; a list may
# hold tags whose opaque part contains commas, so tags are found, not split.
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')
_MAX_VERSION_DIGITS = 18  # fits a BIGINT; longer tags cannot be ours


def format_etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class EntityTags:
    """A parsed If-Match or If-None-Match field: `*`, or the versions it names."""

    any: bool
    versions: frozenset[int]

    def matches(self, version: int) -> bool:
        return self.any or version in self.versions


def parse_entity_tags(field_value: str, *, weak: bool) -> EntityTags:
    """The versions named by a comma-separated entity-tag list.

    `weak=False` is the strong comparison If-Match requires: a `W/` tag never
    matches. `weak=True` is the weak comparison of If-None-Match. Tags this
    service cannot have issued are ignored, so they match nothing.
    """
    if field_value.strip() == "*":
        return EntityTags(any=True, versions=frozenset())
    versions = set()
    for match in _ENTITY_TAG.finditer(field_value):
        is_weak, opaque = match.groups()
        if is_weak and not weak:
            continue
        if opaque.isascii() and opaque.isdigit() and len(opaque) <= _MAX_VERSION_DIGITS:
            versions.add(int(opaque))
    return EntityTags(any=False, versions=frozenset(versions))
