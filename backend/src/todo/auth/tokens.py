"""Verifying a bearer token: algorithm, key, signature, then claims."""

from datetime import timedelta
from typing import Any, Protocol

import jwt
from jwt.exceptions import InvalidSubjectError

from todo.auth.base import Subject
from todo.auth.errors import InvalidTokenError
from todo.users.models import ISSUER_MAX_LENGTH, SUBJECT_MAX_LENGTH

# The issuer's clock and this server's may disagree by a few seconds.
LEEWAY = timedelta(seconds=30)


class KeySource(Protocol):
    algorithms: frozenset[str]

    async def key_for(self, header: dict[str, Any]) -> jwt.PyJWK | bytes: ...


# Most specific first: several of PyJWT's errors subclass others.
_REFUSALS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The token has expired (exp)."),
    (jwt.ImmatureSignatureError, "The token is not valid yet (nbf or iat)."),
    (jwt.InvalidSignatureError, "The token's signature does not match its key."),
    (jwt.InvalidAudienceError, "The token is not meant for this API (aud)."),
    (jwt.InvalidIssuerError, "The token comes from another issuer (iss)."),
    (jwt.InvalidAlgorithmError, "The token's algorithm does not match its key."),
    (InvalidSubjectError, "The token's subject (sub) is not a string."),
    (jwt.DecodeError, "The token is malformed."),
]


def _refusal(error: jwt.PyJWTError) -> str:
    # Fixed wording, never the library's message: nothing of the token leaks.
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"The token has no {error.claim} claim."
    for error_type, detail in _REFUSALS:
        if isinstance(error, error_type):
            return detail
    return "The token is invalid."


class TokenVerifier:
    def __init__(
        self, keys: KeySource, *, issuer: str | None = None, audience: str | None = None
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> Subject:
        subject, _ = await self.verify_with_expiry(token)
        return subject

    async def verify_with_expiry(self, token: str) -> tuple[Subject, float]:
        """The token's subject, and when it expires (its `exp`, seconds since the epoch)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("The token is malformed.") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._keys.algorithms:
            accepted = ", ".join(sorted(self._keys.algorithms))
            raise InvalidTokenError(f"The token's algorithm is not accepted (only {accepted}).")
        key = await self._keys.key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY,
                options={
                    "require": ["exp", "sub"],
                    # Without AUTH_AUDIENCE, any `aud` is accepted.
                    "verify_aud": self._audience is not None,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(_refusal(error)) from None
        return _subject(claims), float(claims["exp"])


def _subject(claims: dict[str, Any]) -> Subject:
    subject = claims["sub"]
    issuer = claims.get("iss", "")
    if not subject or len(subject) > SUBJECT_MAX_LENGTH:
        raise InvalidTokenError(
            f"The token's subject (sub) must be 1 to {SUBJECT_MAX_LENGTH} characters."
        )
    if not isinstance(issuer, str) or len(issuer) > ISSUER_MAX_LENGTH:
        raise InvalidTokenError(
            f"The token's issuer (iss) must be a string of at most {ISSUER_MAX_LENGTH} characters."
        )
    return Subject(issuer=issuer, subject=subject)
