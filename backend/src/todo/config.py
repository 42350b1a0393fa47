"""Settings, read once from the environment (and an optional `.env` file)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from todo.ratelimit.policy import RateLimitPolicy, parse_rate_limit

BACKEND_DIR = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = BACKEND_DIR / "var" / "todo.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"

    # Conditional requests: when true, PUT, PATCH .../complete and DELETE
    # without If-Match are refused with 428.
    require_if_match: bool = False
    # How long a stored Idempotency-Key response is replayed.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # How long a request with an Idempotency-Key waits on a lock (PostgreSQL),
    # such as the one its first attempt holds, before it is answered 409.
    idempotency_wait_seconds: float = Field(default=10.0, gt=0)

    # Per-user token bucket, e.g. "20/s burst 60"; unset means no limit.
    rate_limit: Annotated[RateLimitPolicy | None, NoDecode] = None
    # With a Redis URL, every worker and instance shares the buckets.
    redis_url: str | None = None
    redis_key_prefix: str = "todo:"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # A comma-separated list reads better in an env file than JSON.
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate_limit(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_rate_limit(value)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
