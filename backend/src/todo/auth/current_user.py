"""Who is calling, as this service's user id.

Only this module turns credentials into a user: routers depend on
`CurrentOwner`, and which mode checks the credentials (`AUTH_MODE`) is decided
once, by `build_authenticator`.
"""

import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NamedTuple
from uuid import UUID

from fastapi import Depends, Request

from todo.auth.base import Authenticator, Caller, get_authenticator, requires_caller
from todo.auth.header import USER_ID_HEADER, HeaderAuthenticator, parse_user_id
from todo.config import Settings
from todo.db import Database
from todo.deps import database_of
from todo.users.service import Users

__all__ = [
    "USER_ID_HEADER",
    "CurrentOwner",
    "Owner",
    "build_authenticator",
    "check_caller",
    "describe_callers",
    "document_callers",
    "identify_caller",
    "parse_user_id",
    "warn_if_exposed",
]

logger = logging.getLogger(__name__)

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def build_authenticator(
    settings: Settings, *, clock: Callable[[], float] = time.monotonic
) -> Authenticator:
    if settings.auth_mode == "header":
        return HeaderAuthenticator()
    # Imported for JWT mode only: the JWT, crypto and HTTP clients cost each
    # worker about 13 MiB that header mode has no use for.
    from todo.auth.bearer import BearerAuthenticator  # noqa: PLC0415
    from todo.auth.keys import JwksKeys, SecretKey  # noqa: PLC0415
    from todo.auth.tokens import TokenVerifier  # noqa: PLC0415

    keys: JwksKeys | SecretKey
    if settings.auth_jwks_url is not None:
        keys = JwksKeys(
            settings.auth_jwks_url,
            cache_seconds=settings.auth_jwks_cache_seconds,
            cooldown_seconds=settings.auth_jwks_cooldown_seconds,
            clock=clock,
        )
    else:
        assert settings.auth_jwt_secret is not None, "Settings requires a key source"
        keys = SecretKey(settings.auth_jwt_secret.get_secret_value().encode())
    verifier = TokenVerifier(keys, issuer=settings.auth_issuer, audience=settings.auth_audience)
    return BearerAuthenticator(verifier)


async def identify_caller(request: Request) -> Caller:
    return await get_authenticator(request).identify(request)


async def check_caller(request: Request) -> None:
    """Refuse the request's credentials if its route acts for a user and they are bad."""
    route = request.scope.get("route")
    if requires_caller(str(getattr(route, "path", ""))):
        await identify_caller(request)


def users_of(request: Request) -> Users:
    users: Users = request.app.state.users
    return users


class Owner(NamedTuple):
    """Whom a request acts for, and the database that user's tasks are in."""

    user_id: UUID
    database: Database


async def get_owner(request: Request) -> Owner:
    # One dependency for both: each one FastAPI resolves costs every request.
    return Owner(await _current_user(request), database_of(request))


async def _current_user(request: Request) -> UUID:
    caller = await identify_caller(request)
    users = users_of(request)
    if isinstance(caller, UUID):
        # For the request's log line, even if making sure of the user fails.
        request.state.user_id = caller
        await users.ensure(caller)
        return caller
    user_id = await users.for_identity(caller.issuer, caller.subject)
    request.state.user_id = user_id
    return user_id


CurrentOwner = Annotated[Owner, Depends(get_owner)]


def describe_callers(authenticators: Sequence[Authenticator]) -> str:
    """The API description's sentence on callers: one mode's, or each of several."""
    if len(authenticators) == 1:
        return authenticators[0].description
    modes = " ".join(f"`AUTH_MODE={each.mode}`: {each.description}" for each in authenticators)
    return f"What a task operation carries depends on the server's `AUTH_MODE`. {modes}"


def document_callers(schema: dict[str, Any], authenticators: Sequence[Authenticator]) -> None:
    """Show, on each operation that acts for a user, the credentials these modes read.

    One mode is what a server documents; several (the committed contract) are
    alternatives, so that one client serves a server in any of them.
    """
    operations = [
        operation
        for path, path_item in schema.get("paths", {}).items()
        if requires_caller(path)
        for method, operation in path_item.items()
        if method in _HTTP_METHODS
    ]
    for authenticator in authenticators:
        authenticator.document(schema, operations, only_mode=len(authenticators) == 1)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(settings: Settings) -> None:
    if settings.auth_mode == "header" and not _is_loopback(settings.host):
        logger.warning(
            "AUTH_MODE=header believes any %s header, and HOST=%s lets other machines "
            "connect: anyone who reaches this API can act as any user. Use AUTH_MODE=jwt.",
            USER_ID_HEADER,
            settings.host,
        )
