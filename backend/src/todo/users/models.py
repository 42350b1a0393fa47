from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from todo.metadata import metadata
from todo.timestamps import UTCDateTime

__all__ = ["User", "metadata"]


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: UUID = Field(primary_key=True)
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
