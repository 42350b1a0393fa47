"""Every way a bearer token is refused: a 401 problem with its RFC 6750 challenge."""

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.auth.issuer import JwksServer, SigningKey, bearer, claims, new_key

INVALID_TOKEN_CHALLENGE = 'Bearer realm="todo", error="invalid_token", error_description='


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unsigned(key: SigningKey) -> str:
    return f"{_b64({'alg': 'none', 'kid': key.kid})}.{_b64(claims())}."


def _hmac_with_public_key(key: SigningKey) -> str:
    # The classic confusion: the public key, which anyone has, as an HMAC secret.
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'kid': key.kid})}.{_b64(claims())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def _tampered(key: SigningKey) -> str:
    header, _, signature = key.sign(claims()).split(".")
    return f"{header}.{_b64(claims(subject='someone-else'))}.{signature}"


def _foreign_key_same_kid(key: SigningKey) -> str:
    impostor = new_key("EdDSA")
    impostor.kid = key.kid
    return impostor.sign(claims())


def _algorithm_of_another_key(key: SigningKey) -> str:
    other = new_key("ES256")
    other.kid = key.kid
    return other.sign(claims())


NOW = int(time.time())

REFUSALS: list[tuple[str, Callable[[SigningKey], str], str]] = [
    ("not a jwt", lambda key: "not-a-jwt", "malformed"),
    ("garbage segments", lambda key: "a.b.c", "malformed"),
    ("expired", lambda key: key.sign(claims(exp=NOW - 3600, iat=NOW - 7200)), "expired"),
    ("not yet valid", lambda key: key.sign(claims(nbf=NOW + 3600)), "not valid yet"),
    ("issued in the future", lambda key: key.sign(claims(iat=NOW + 3600)), "not valid yet"),
    ("tampered", _tampered, "signature"),
    ("signed by a key outside the set", _foreign_key_same_kid, "signature"),
    ("wrong issuer", lambda key: key.sign(claims(iss="https://evil.example")), "issuer (iss)"),
    ("no issuer", lambda key: key.sign(claims(iss=None)), "no iss claim"),
    ("wrong audience", lambda key: key.sign(claims(aud="https://other.example")), "(aud)"),
    ("no audience", lambda key: key.sign(claims(aud=None)), "no aud claim"),
    ("unknown kid", lambda key: new_key("EdDSA").sign(claims()), "not in the issuer's key set"),
    ("no kid", lambda key: key.sign(claims(), kid=None), "does not name its signing key"),
    ("alg none", _unsigned, "algorithm is not accepted"),
    ("HS256 with the public key", _hmac_with_public_key, "algorithm is not accepted"),
    ("alg of another key", _algorithm_of_another_key, "does not match its key"),
    ("no exp", lambda key: key.sign(claims(exp=None)), "no exp claim"),
    ("no sub", lambda key: key.sign(claims(sub=None)), "no sub claim"),
    ("empty sub", lambda key: key.sign(claims(subject="")), "subject (sub) must be"),
    ("sub not a string", lambda key: key.sign(claims(sub=42)), "subject (sub)"),
    ("sub too long", lambda key: key.sign(claims(subject="x" * 256)), "1 to 255"),
]


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in REFUSALS],
)
async def test_refused_token_is_401_invalid_token(
    jwt_client: httpx.AsyncClient,
    issuer: JwksServer,
    signing_key: SigningKey,
    make_token: Callable[[SigningKey], str],
    reason: str,
) -> None:
    response = await jwt_client.get("/api/tasks", headers=bearer(make_token(signing_key)))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:todo:problem:invalid-token"
    assert reason in problem["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(INVALID_TOKEN_CHALLENGE)
    assert challenge.removeprefix(INVALID_TOKEN_CHALLENGE) == f'"{problem["detail"]}"'


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no credentials"),
        pytest.param({"X-User-ID": "123e4567-e89b-12d3-a456-426614174000"}, id="X-User-ID only"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="another scheme"),
    ],
)
async def test_missing_token_is_401_without_error_code(
    jwt_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await jwt_client.get("/api/tasks", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="todo"'
    assert response.json()["type"] == "urn:todo:problem:missing-token"


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer two words", "Bearer é"])
async def test_malformed_bearer_credentials_are_401(
    jwt_client: httpx.AsyncClient, authorization: str
) -> None:
    response = await jwt_client.get(
        "/api/tasks", headers={b"Authorization": authorization.encode()}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(INVALID_TOKEN_CHALLENGE)
    assert response.json()["detail"] == "The token is malformed."


async def test_valid_token_is_accepted_and_x_user_id_ignored(
    jwt_client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    headers = {**bearer(signing_key.sign(claims())), "X-User-ID": "not even a uuid"}

    response = await jwt_client.post("/api/tasks", json={"title": "Buy milk"}, headers=headers)

    assert response.status_code == 201
    assert response.json()["user_id"] != "not even a uuid"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b'{"title": ""}', "application/json", id="invalid field"),
        pytest.param(b'{"title": ', "application/json", id="malformed json"),
        pytest.param(b"title=x", "application/x-www-form-urlencoded", id="not json"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no token"), pytest.param(bearer("a.b.c"), id="bad token")],
)
async def test_token_is_checked_before_the_body(
    jwt_client: httpx.AsyncClient, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    response = await jwt_client.post(
        "/api/tasks", content=body, headers={**headers, "Content-Type": content_type}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="todo"')


async def test_invalid_body_with_valid_token_is_422(
    jwt_client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    response = await jwt_client.post(
        "/api/tasks", json={"title": ""}, headers=bearer(signing_key.sign(claims()))
    )

    assert response.status_code == 422


async def test_health_needs_no_token(jwt_client: httpx.AsyncClient) -> None:
    assert (await jwt_client.get("/health")).status_code == 200


async def test_tokens_are_never_logged(
    jwt_client: httpx.AsyncClient,
    signing_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [make(signing_key) for _, make, _ in REFUSALS]
    tokens.append(signing_key.sign(claims()))

    for token in tokens:
        await jwt_client.get("/api/tasks", headers=bearer(token))

    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    for token in tokens:
        for part in token.split("."):
            if len(part) > 8:
                assert part not in logged
