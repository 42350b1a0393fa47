"""Settings, read once from the environment (and an optional `.env` file)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from todo.ratelimit.policy import RateLimitPolicy, parse_rate_limit

BACKEND_DIR = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = BACKEND_DIR / "var" / "todo.db"
# RFC 7518 section 3.2: an HS256 key is at least as long as the hash.
MIN_JWT_SECRET_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    # Migrations need a session-mode connection; Neon's pooled URL is not one.
    database_url_direct: str | None = None
    # "auto": PgBouncer transaction pooling when the host is a Neon `-pooler` endpoint.
    database_pool_mode: Literal["auto", "session", "transaction"] = "auto"
    database_pool_size: Annotated[int, Field(ge=1)] = 10
    # SQLAlchemy closes an overflow connection as soon as it comes back while the
    # pool is full: under steady load that is a new connection (and TLS handshake)
    # every few requests, so by default the pool has a fixed size instead.
    database_max_overflow: Annotated[int, Field(ge=0)] = 0
    database_pool_pre_ping: bool = True
    # Seconds; a connection given back more recently than this is lent without a
    # ping (one round trip less per request under load). 0 pings on every checkout.
    database_pool_ping_idle_seconds: Annotated[float, Field(ge=0)] = 0.5
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_enabled: bool = False
    # prometheus_client reads this from the process environment when it is
    # imported; it is repeated here so that the app can tell which mode it is in.
    prometheus_multiproc_dir: Path | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    # Who is calling: `header` trusts X-User-ID (development only); `jwt`
    # verifies a bearer token from AUTH_JWKS_URL's keys or AUTH_JWT_SECRET.
    auth_mode: Literal["header", "jwt"] = "header"
    auth_jwks_url: str | None = None
    auth_jwt_secret: SecretStr | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # Fetched keys are used this long before the key set is fetched again,
    # so a key the issuer removed stops working after at most this long.
    auth_jwks_cache_seconds: float = Field(default=300, gt=0)
    # At most one fetch per this many seconds, however many tokens name a key
    # this service has not seen.
    auth_jwks_cooldown_seconds: float = Field(default=30, gt=0)

    # Conditional requests: when true, PUT, PATCH .../complete and DELETE
    # without If-Match are refused with 428.
    require_if_match: bool = False
    # How long a stored Idempotency-Key response is replayed.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # How long a request with an Idempotency-Key waits on a lock (PostgreSQL),
    # such as the one its first attempt holds, before it is answered 409.
    idempotency_wait_seconds: float = Field(default=10.0, gt=0)

    # Sync (todo.sync): how long tombstones are kept, so how old a cursor may be.
    sync_retention_seconds: float = Field(default=30 * 24 * 3600, gt=0)
    # A stream's comment line, and its recheck of the database, at least this often.
    sync_heartbeat_seconds: float = Field(default=15, gt=0)
    # A stream is ended after this long; its client reconnects with Last-Event-ID.
    sync_stream_max_seconds: float = Field(default=300, gt=0)
    # Open streams per worker; one more is answered 503 with Retry-After.
    sync_max_streams: int = Field(default=1000, ge=1)

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

    @field_validator(
        "auth_jwks_url", "auth_jwt_secret", "auth_issuer", "auth_audience", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `AUTH_ISSUER=` in an env file means "not set", not "the empty issuer".
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if self.auth_mode == "jwt" and (self.auth_jwks_url is None) == (
            self.auth_jwt_secret is None
        ):
            raise ValueError("AUTH_MODE=jwt needs exactly one of AUTH_JWKS_URL and AUTH_JWT_SECRET")
        if self.auth_jwks_url is not None and not self.auth_jwks_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("AUTH_JWKS_URL must be an http:// or https:// URL")
        secret = self.auth_jwt_secret
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"AUTH_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return self

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _parse_rate_limit(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_rate_limit(value)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
