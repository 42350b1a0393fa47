from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, ForeignKey, String, Uuid
from sqlmodel import Field, SQLModel

from todo.db.metadata import metadata
from todo.db.types import UTCDateTime

__all__ = ["ISSUER_MAX_LENGTH", "SUBJECT_MAX_LENGTH", "User", "UserIdentity", "metadata"]

ISSUER_MAX_LENGTH = 512
SUBJECT_MAX_LENGTH = 255


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: UUID = Field(primary_key=True)
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The user's latest change number (todo.sync): every write takes the next one.
    last_change: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # The newest change whose tombstones are purged: a feed cursor before it is expired.
    purged_change: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class UserIdentity(SQLModel, table=True):
    """A user as a token issuer knows them: the issuer's `iss` and its `sub`.

    Issuers name their users with opaque strings (Better Auth's are not UUIDs),
    so each (issuer, subject) pair is linked to a user row of this service, and
    tasks keep pointing at users.id.
    """

    __tablename__ = "user_identities"

    # An empty issuer stands for tokens that carry no `iss`.
    issuer: str = Field(sa_column=Column(String(ISSUER_MAX_LENGTH), primary_key=True))
    subject: str = Field(sa_column=Column(String(SUBJECT_MAX_LENGTH), primary_key=True))
    user_id: UUID = Field(
        sa_column=Column(
            Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
