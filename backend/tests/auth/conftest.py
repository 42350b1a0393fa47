"""A JWT-mode app, beside the header-mode one, on the same test database."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.issuer import AUDIENCE, ISSUER, FakeClock, JwksServer, SigningKey, new_key
from todo.auth.current_user import build_authenticator
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

CACHE_SECONDS = 300
COOLDOWN_SECONDS = 30


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def signing_key() -> SigningKey:
    return new_key("EdDSA")


@pytest.fixture
def issuer(signing_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys.append(signing_key)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jwt_settings(database_url: str, issuer: JwksServer) -> Settings:
    return Settings(
        database_url=database_url,
        auth_mode="jwt",
        auth_jwks_url=issuer.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        auth_jwks_cache_seconds=CACHE_SECONDS,
        auth_jwks_cooldown_seconds=COOLDOWN_SECONDS,
    )


@pytest.fixture
def jwt_app(app: FastAPI, database: Database, jwt_settings: Settings, clock: FakeClock) -> FastAPI:
    # Depends on `app` for its teardown, which empties the tables.
    authenticator = build_authenticator(jwt_settings, clock=clock)
    return create_app(jwt_settings, database=database, authenticator=authenticator)


@pytest.fixture
async def jwt_client(jwt_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=jwt_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
