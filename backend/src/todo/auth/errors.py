"""Refused credentials: 401 problems carrying RFC 6750 challenges."""

from todo.errors import ServiceUnavailableError, UnauthorizedError

REALM = "todo"
# RFC 6750 section 3: error_description is printable ASCII without '"' or '\'.
_DESCRIPTION_CHARS = frozenset(chr(code) for code in range(0x20, 0x7F)) - {'"', "\\"}


class MissingTokenError(UnauthorizedError):
    """No bearer credentials at all: the challenge carries no error code (RFC 6750 3.1)."""

    problem_type = "urn:todo:problem:missing-token"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


class InvalidTokenError(UnauthorizedError):
    problem_type = "urn:todo:problem:invalid-token"
    title = "Invalid bearer token"

    def __init__(self, detail: str) -> None:
        description = "".join(char for char in detail if char in _DESCRIPTION_CHARS)
        challenge = (
            f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
        )
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class KeysUnavailableError(ServiceUnavailableError):
    """No verification keys yet and the issuer's key set cannot be fetched."""

    problem_type = "urn:todo:problem:keys-unavailable"
    title = "Signing keys unavailable"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "The token issuer's key set (AUTH_JWKS_URL) could not be fetched; try again shortly.",
            headers={"Retry-After": str(retry_after_seconds)},
        )
