"""Settings refuse a JWT mode that could not verify anything."""

import pytest
from pydantic import ValidationError

from todo.config import Settings

JWKS_URL = "https://app.example/api/auth/jwks"
SECRET = "a-shared-secret-of-at-least-32-bytes"


def test_header_mode_is_the_default() -> None:
    assert Settings(_env_file=None).auth_mode == "header"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "exactly one of AUTH_JWKS_URL and AUTH_JWT_SECRET"),
        ({"auth_jwks_url": JWKS_URL, "auth_jwt_secret": SECRET}, "exactly one of"),
        ({"auth_jwks_url": ""}, "exactly one of"),
        ({"auth_jwks_url": "file:///etc/jwks.json"}, "http:// or https://"),
        ({"auth_jwt_secret": "too short"}, "at least 32 bytes"),
        ({"auth_jwks_url": JWKS_URL, "auth_jwks_cooldown_seconds": 0}, "greater than 0"),
    ],
)
def test_jwt_mode_needs_one_usable_key_source(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(auth_mode="jwt", **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [{"auth_jwks_url": JWKS_URL}, {"auth_jwt_secret": SECRET}])
def test_jwt_mode_with_one_key_source(source: dict[str, str]) -> None:
    settings = Settings(auth_mode="jwt", auth_issuer="", **source)  # type: ignore[arg-type]

    assert settings.auth_issuer is None


def test_the_secret_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "jwt")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)

    assert SECRET not in repr(Settings())
