"""JWT mode: `Authorization: Bearer <token>`, a JWT from the Better Auth server."""

import re
from typing import Any

from fastapi import Request

from todo.auth.base import Subject
from todo.auth.errors import InvalidTokenError, MissingTokenError
from todo.auth.tokens import TokenVerifier
from todo.http.openapi import add_operation_field
from todo.http.problems import problem_docs

SECURITY_SCHEME = "bearerAuth"
# RFC 6750 section 2.1: the b64token syntax.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise MissingTokenError("Send the caller's token in an `Authorization: Bearer` header.")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingTokenError("Only `Authorization: Bearer <token>` is accepted here.")
    token = credentials.strip()
    if not _TOKEN.fullmatch(token):
        raise InvalidTokenError("The token is malformed.")
    return token


class BearerAuthenticator:
    credential_header = "Authorization"
    mode = "jwt"
    description = (
        "Every task operation carries a JWT from the Better Auth server in "
        "`Authorization: Bearer <token>`."
    )

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def identify(self, request: Request) -> Subject:
        # X-User-ID, if sent, is ignored: only a verified token names the caller.
        token = bearer_token(request.headers.get("Authorization"))
        subject, expires_at = await self._verifier.verify_with_expiry(token)
        # For whatever outlives the request's start: a stream ends when the token does.
        request.state.credentials_expire_at = expires_at
        return subject

    def document(
        self, schema: dict[str, Any], operations: list[dict[str, Any]], *, only_mode: bool
    ) -> None:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A JWT from Better Auth's `/api/auth/token` (or its `set-auth-jwt` header), "
                "verified with the issuer's JWKS."
            ),
        }
        for operation in operations:
            security = [*operation.get("security", []), {SECURITY_SCHEME: []}]
            add_operation_field(operation, "security", security)
            responses = {**operation.get("responses", {}), "401": problem_docs(401)[401]}
            operation["responses"] = dict(sorted(responses.items()))
