"""Where verification keys come from: the issuer's JWKS (cached) or a shared secret."""

import asyncio
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.auth.conftest import CACHE_SECONDS, COOLDOWN_SECONDS
from tests.auth.issuer import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    JwksServer,
    SigningKey,
    bearer,
    claims,
    new_key,
)
from todo.config import Settings
from todo.db import Database
from todo.main import create_app


async def _status(client: httpx.AsyncClient, key: SigningKey) -> int:
    return (await client.get("/api/tasks", headers=bearer(key.sign(claims())))).status_code


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256"])
async def test_each_asymmetric_algorithm_is_accepted(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, algorithm: str
) -> None:
    key = new_key(algorithm)
    issuer.keys = [key]

    assert await _status(jwt_client, key) == 200


async def test_keys_without_alg_are_typed_by_their_curve(
    jwt_client: httpx.AsyncClient, issuer: JwksServer
) -> None:
    key = new_key("EdDSA")
    issuer.keys = []
    issuer.extra_entries = [{k: v for k, v in key.public_jwk().items() if k != "alg"}]

    assert await _status(jwt_client, key) == 200


async def test_the_key_set_is_fetched_once_then_cached(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, signing_key: SigningKey
) -> None:
    for _ in range(5):
        assert await _status(jwt_client, signing_key) == 200

    assert issuer.fetches == 1


async def test_a_new_kid_is_picked_up_and_a_removed_one_expires(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, signing_key: SigningKey, clock: FakeClock
) -> None:
    assert await _status(jwt_client, signing_key) == 200
    rotated = new_key("EdDSA")
    issuer.keys.append(rotated)

    # Within the cooldown the new key is not fetched...
    assert await _status(jwt_client, rotated) == 401
    assert issuer.fetches == 1
    # ...after it, the unknown kid triggers one fetch, which finds it.
    clock.advance(COOLDOWN_SECONDS)
    assert await _status(jwt_client, rotated) == 200
    assert issuer.fetches == 2

    # The issuer drops the old key: it works until the cached set is too old.
    issuer.keys.remove(signing_key)
    clock.advance(CACHE_SECONDS - 1)
    assert await _status(jwt_client, signing_key) == 200
    clock.advance(1)
    assert await _status(jwt_client, signing_key) == 401
    assert await _status(jwt_client, rotated) == 200
    assert issuer.fetches == 3


async def test_a_flood_of_unknown_kids_fetches_once_per_cooldown(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, signing_key: SigningKey, clock: FakeClock
) -> None:
    assert await _status(jwt_client, signing_key) == 200

    async def bogus() -> int:
        forged = new_key("EdDSA")
        forged.kid = uuid4().hex
        return await _status(jwt_client, forged)

    clock.advance(COOLDOWN_SECONDS)
    statuses = await asyncio.gather(*(bogus() for _ in range(50)))

    assert set(statuses) == {401}
    assert issuer.fetches == 2
    clock.advance(COOLDOWN_SECONDS)
    assert await bogus() == 401
    assert issuer.fetches == 3


@pytest.mark.parametrize("outage", ["503", "connection refused"])
async def test_an_issuer_outage_keeps_serving_cached_keys(
    jwt_client: httpx.AsyncClient,
    issuer: JwksServer,
    signing_key: SigningKey,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    outage: str,
) -> None:
    assert await _status(jwt_client, signing_key) == 200
    if outage == "503":
        issuer.failing = True
    else:
        issuer.stop()
    clock.advance(CACHE_SECONDS * 10)

    for _ in range(3):
        assert await _status(jwt_client, signing_key) == 200

    assert "keeping the keys fetched before" in caplog.text
    # The failed fetch is not retried on every request.
    assert caplog.text.count("could not fetch the key set") == 1


async def test_no_keys_and_no_issuer_is_503_not_500(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, signing_key: SigningKey
) -> None:
    issuer.failing = True

    response = await jwt_client.get("/api/tasks", headers=bearer(signing_key.sign(claims())))

    assert response.status_code == 503
    assert response.json()["type"] == "urn:todo:problem:keys-unavailable"
    assert response.headers["retry-after"] == str(COOLDOWN_SECONDS)


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[]", b'{"keys": "nope"}'],
    ids=["not json", "not an object", "keys not a list"],
)
async def test_a_broken_key_set_document_is_an_outage(
    jwt_client: httpx.AsyncClient,
    issuer: JwksServer,
    signing_key: SigningKey,
    document: bytes,
) -> None:
    issuer.raw_document = document

    response = await jwt_client.get("/api/tasks", headers=bearer(signing_key.sign(claims())))

    assert response.status_code == 503


async def test_unusable_entries_of_the_key_set_are_skipped(
    jwt_client: httpx.AsyncClient, issuer: JwksServer, signing_key: SigningKey
) -> None:
    secret = b"a shared secret that is long enough for HS256"
    issuer.extra_entries = [
        # A symmetric key in a public key set would let HS256 tokens in.
        {"kty": "oct", "kid": "hmac", "k": jwt.utils.base64url_encode(secret).decode()},
        {**new_key("EdDSA").public_jwk(), "kid": "encryption", "use": "enc"},
        {"kty": "OKP", "crv": "X25519", "kid": "curve", "x": "AAAA"},
        {"kty": "RSA", "kid": "broken", "n": "not base64!", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        "not an object",
    ]

    hmac_token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "hmac"})
    refused = await jwt_client.get("/api/tasks", headers=bearer(hmac_token))

    assert refused.status_code == 401
    assert await _status(jwt_client, signing_key) == 200


SECRET = "a-shared-secret-of-at-least-32-bytes!"


@pytest.fixture
def secret_app(app: FastAPI, database: Database, database_url: str) -> FastAPI:
    settings = Settings(
        database_url=database_url,
        auth_mode="jwt",
        auth_jwt_secret=SECRET,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )
    return create_app(settings, database=database)


@pytest.fixture
async def secret_client(secret_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secret_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_hs256_with_the_shared_secret_is_accepted(secret_client: httpx.AsyncClient) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")

    response = await secret_client.get("/api/tasks", headers=bearer(token))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        pytest.param(
            lambda: jwt.encode(claims(), "another-secret-of-at-least-32-bytes", algorithm="HS256"),
            "signature",
            id="another secret",
        ),
        pytest.param(
            lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512"),
            "algorithm is not accepted",
            id="HS512",
        ),
        pytest.param(
            lambda: new_key("RS256").sign(claims()), "algorithm is not accepted", id="RS256"
        ),
        pytest.param(
            lambda: new_key("EdDSA").sign(claims()), "algorithm is not accepted", id="EdDSA"
        ),
    ],
)
async def test_secret_mode_refuses_other_keys_and_algorithms(
    secret_client: httpx.AsyncClient, make_token: Callable[[], str], reason: str
) -> None:
    response = await secret_client.get("/api/tasks", headers=bearer(make_token()))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert reason in response.json()["detail"]
