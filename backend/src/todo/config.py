"""Settings, read once from the environment (and an optional `.env` file)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BACKEND_DIR = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = BACKEND_DIR / "var" / "todo.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    # Migrations need a session-mode connection; Neon's pooled URL is not one.
    database_url_direct: str | None = None
    # "auto": PgBouncer transaction pooling when the host is a Neon `-pooler` endpoint.
    database_pool_mode: Literal["auto", "session", "transaction"] = "auto"
    database_pool_size: Annotated[int, Field(ge=1)] = 5
    database_max_overflow: Annotated[int, Field(ge=0)] = 5
    database_pool_pre_ping: bool = True
    # Seconds; a connection older than this is replaced when next taken from the pool.
    database_pool_recycle: Annotated[int, Field(ge=-1)] = 300
    database_connect_timeout: Annotated[float, Field(gt=0)] = 5.0
    # Seconds one statement may take (PostgreSQL), or wait for a lock (SQLite).
    database_command_timeout: Annotated[float, Field(gt=0)] = 10.0
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # A comma-separated list reads better in an env file than JSON.
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
