import re
from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from todo.http.openapi import no_default
from todo.tasks.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, TaskStatus

# The rules below, also written as JSON Schema patterns, so that the published
# schema accepts exactly what the validators do. Both dialects that read them
# (ECMA-262 and Python's `re`) take `\uXXXX` escapes.
CONTROL_CHARACTERS = r"\u0000-\u001f\u007f-\u009f"  # Unicode category Cc
# Unicode's White_Space characters: what a title is trimmed of.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_WHITE_SPACE_CLASS = (
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
_TEXT = f"[^{CONTROL_CHARACTERS}]"
_EDGE = f"[^{CONTROL_CHARACTERS}{_WHITE_SPACE_CLASS}]"
# White space around 1 to 200 characters that start and end with neither.
TITLE_PATTERN = (
    f"^[{_WHITE_SPACE_CLASS}]*{_EDGE}(?:{_TEXT}{{0,{TITLE_MAX_LENGTH - 2}}}{_EDGE})?"
    f"[{_WHITE_SPACE_CLASS}]*$"
)
DESCRIPTION_PATTERN = r"^[^\u0000]*$"
# Found by a regex in a fraction of the time a loop over the characters takes.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}]")


def _title(value: str) -> str:
    value = value.strip(WHITE_SPACE)
    if not value:
        raise PydanticCustomError("string_too_short", "must not be empty once trimmed")
    if len(value) > TITLE_MAX_LENGTH:
        raise PydanticCustomError(
            "string_too_long", f"must be at most {TITLE_MAX_LENGTH} characters once trimmed"
        )
    return value


def _storable(value: str) -> str:
    # "\ud800" is valid JSON and a valid Python str, but not UTF-8: no
    # database driver can store it.
    if _SURROGATE.search(value):
        raise ValueError("must not contain unpaired UTF-16 surrogates")
    return value


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTER.search(value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


Title = Annotated[
    str,
    AfterValidator(_title),
    AfterValidator(_storable),
    AfterValidator(_no_control_characters),
    Field(
        description="1 to 200 characters once trimmed of white space; no control characters.",
        json_schema_extra={"pattern": TITLE_PATTERN},
    ),
]
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX_LENGTH),
    AfterValidator(_storable),
    AfterValidator(_no_nul),
    Field(
        description="At most 2000 characters; no NUL.",
        json_schema_extra={"pattern": DESCRIPTION_PATTERN},
    ),
]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    status: TaskStatus = Field(
        default=TaskStatus.PENDING,
        description="`pending` when left out.",
        json_schema_extra=no_default,
    )


class TaskUpdate(BaseModel):
    """A partial update: the fields given change, the others keep their value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Defaults are not validated, so an omitted title or status stays unset,
    # while an explicit null is refused: neither can be cleared.
    title: Annotated[Title, Field(default=None)]
    description: Description | None = None
    status: Annotated[TaskStatus, Field(default=None)]

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, status")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as column values (the status as its string)."""
        return self.model_dump(exclude_unset=True, mode="json")


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    user_id: UUID
    title: str
    description: str | None
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    position: str = Field(
        description="The task's place in the user's own order: sort by it as plain strings "
        "(code point by code point). Opaque; changed by a move.",
    )


class TaskMove(BaseModel):
    """`POST /api/tasks/{task_id}/move`: where the task goes."""

    model_config = ConfigDict(extra="forbid")

    after: UUID | None = Field(
        description="The task it goes right after; null puts it first.",
    )


class BulkStatus(BaseModel):
    """`PATCH /api/tasks`: the status every matching task is set to."""

    model_config = ConfigDict(extra="forbid")

    status: TaskStatus


class BulkUpdated(BaseModel):
    updated: int = Field(description="How many tasks changed (those already at it did not).")


class BulkDeleted(BaseModel):
    deleted: int


class TaskSummary(BaseModel):
    total: int
    pending: int
    completed: int
