"""The keys that verify tokens: a shared secret, or an issuer's JWKS kept in a cache."""

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK, PyJWTError

from todo.auth.errors import InvalidTokenError, KeysUnavailableError

# The explicit allow-lists. Asymmetric algorithms only for a JWKS, HMAC only
# for a secret: a token can never make a public key act as an HMAC secret.
JWKS_ALGORITHMS = frozenset({"EdDSA", "ES256", "RS256"})
SECRET_ALGORITHMS = frozenset({"HS256"})
FETCH_TIMEOUT_SECONDS = 5.0

logger = logging.getLogger(__name__)


class SecretKey:
    algorithms = SECRET_ALGORITHMS

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    async def key_for(self, header: dict[str, Any]) -> bytes:
        return self._secret


class KeySetFetchError(Exception):
    pass


def usable_keys(entries: list[Any]) -> dict[str, PyJWK]:
    """The set's signing keys by `kid`, for the accepted algorithms only."""
    keys: dict[str, PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        try:
            # The key's algorithm is fixed here, from its `alg` or its type and
            # curve; PyJWT refuses a token whose header names another.
            key = PyJWK.from_dict(entry)
        except PyJWTError as error:
            logger.warning("ignoring key %r of the key set: %s", entry["kid"], error)
            continue
        if key.algorithm_name in JWKS_ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


class JwksKeys:
    """An issuer's public keys, fetched from its JWKS URL and cached.

    The set is fetched again once it is `cache_seconds` old, or when a token
    names a `kid` it lacks (a rotation), but never more than once per
    `cooldown_seconds`, however many bogus `kid`s arrive. A failed fetch
    keeps the keys already held: an issuer outage does not stop the API.
    """

    algorithms = JWKS_ALGORITHMS

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()

    async def key_for(self, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("The token does not name its signing key (kid).")
        key = await self._find(kid)
        if key is None:
            raise InvalidTokenError("The token's signing key (kid) is not in the issuer's key set.")
        return key

    async def _find(self, kid: str) -> PyJWK | None:
        keys = self._keys
        stale = self._clock() - self._fetched_at >= self._cache_seconds
        if keys is None or stale or kid not in keys:
            await self._refresh()
        if self._keys is None:
            raise KeysUnavailableError(math.ceil(self._cooldown_seconds))
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            # Also true when another request fetched while this one waited.
            if now - self._attempted_at < self._cooldown_seconds:
                return
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except KeySetFetchError as error:
                logger.warning(
                    "could not fetch the key set from %s (%s); %s",
                    self._url,
                    error,
                    "keeping the keys fetched before" if self._keys is not None else "no keys yet",
                )
                return
            self._keys = keys
            self._fetched_at = now

    async def _fetch(self) -> dict[str, PyJWK]:
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client:
                response = await client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise KeySetFetchError(str(error) or type(error).__name__) from error
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise KeySetFetchError("the response is not a JWK set")
        return usable_keys(entries)
