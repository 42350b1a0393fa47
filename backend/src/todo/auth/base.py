"""What every authentication mode provides, and where the app keeps its own."""

from typing import Any, NamedTuple, Protocol
from uuid import UUID

from fastapi import Request


class Subject(NamedTuple):
    """A user as a token issuer names them: its `iss` and its opaque `sub`."""

    issuer: str
    subject: str


# Header mode names this service's user id; JWT mode names an issuer's subject.
Caller = UUID | Subject


class Authenticator(Protocol):
    # The request header that carries the credentials (CORS must allow it).
    credential_header: str
    # The AUTH_MODE it serves.
    mode: str
    # One sentence for the API's description.
    description: str

    async def identify(self, request: Request) -> Caller:
        """The caller, or a `TodoError` saying why the credentials are refused."""
        ...

    def document(
        self, schema: dict[str, Any], operations: list[dict[str, Any]], *, only_mode: bool
    ) -> None:
        """Describe the credentials in the OpenAPI schema and these operations.

        `only_mode`: as the one way in, as a server documents itself; else as one mode
        of several, as the committed contract does for a client of every mode.
        """
        ...


def requires_caller(path: str) -> bool:
    """Every operation under /api/ acts for a user; /health and the docs do not."""
    return path.startswith("/api/")


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator
