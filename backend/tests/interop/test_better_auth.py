"""The real issuer: Better Auth (npm `better-auth`, JWT plugin) signs, this API verifies.

`better-auth/server.mjs` runs Better Auth on a loopback port with a throwaway
SQLite database; `make test` installs its locked npm packages first.
"""

import json
import select
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.auth.issuer import bearer, new_key
from todo.config import Settings
from todo.db import Database
from todo.main import create_app

SERVER_DIR = Path(__file__).parent / "better-auth"
START_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def better_auth_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert (SERVER_DIR / "node_modules").is_dir(), (
        f"run `npm ci` in {SERVER_DIR} (make test does) to install Better Auth"
    )
    log = (tmp_path_factory.mktemp("better-auth") / "stderr.log").open("w+")
    server = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=SERVER_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    try:
        ready, _, _ = select.select([server.stdout], [], [], START_TIMEOUT_SECONDS)
        line = server.stdout.readline() if ready else ""
        if not line:
            log.seek(0)
            pytest.fail(f"Better Auth did not start:\n{log.read()}")
        yield str(json.loads(line)["baseURL"])
    finally:
        # The server exits when its standard input closes.
        server.stdin.close()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def interop_app(
    app: FastAPI, database: Database, database_url: str, better_auth_url: str
) -> FastAPI:
    # Depends on `app` for its teardown, which empties the tables.
    settings = Settings(
        database_url=database_url,
        auth_mode="jwt",
        auth_jwks_url=f"{better_auth_url}/api/auth/jwks",
        # Better Auth signs with its base URL as both issuer and audience.
        auth_issuer=better_auth_url,
        auth_audience=better_auth_url,
    )
    return create_app(settings, database=database)


@pytest.fixture
async def api(interop_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=interop_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class BetterAuthUser:
    """A browser's view of Better Auth: a cookie jar holding one signed-in session."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def token(self) -> str:
        """What `authClient.token()` fetches."""
        response = await self.client.get("/api/auth/token")
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def session_jwt(self) -> str:
        """The JWT Better Auth sends in the `set-auth-jwt` header of a session read."""
        response = await self.client.get("/api/auth/get-session")
        assert response.status_code == 200, response.text
        return response.headers["set-auth-jwt"]


@pytest.fixture
async def sign_up(better_auth_url: str) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    async def sign_up(name: str) -> BetterAuthUser:
        client = httpx.AsyncClient(base_url=better_auth_url, timeout=30)
        clients.append(client)
        response = await client.post(
            "/api/auth/sign-up/email",
            json={
                "name": name,
                "email": f"{name}-{uuid4().hex[:8]}@example.com",
                "password": "correct horse battery staple",
            },
        )
        assert response.status_code == 200, response.text
        return BetterAuthUser(client)

    yield sign_up
    for client in clients:
        await client.aclose()


async def test_better_auth_tokens_reach_their_own_tasks_only(
    api: httpx.AsyncClient, sign_up: Any
) -> None:
    alice = await sign_up("alice")
    bob = await sign_up("bob")
    alice_token = await alice.token()
    bob_token = await bob.token()
    assert jwt.get_unverified_header(alice_token)["alg"] == "EdDSA"

    created = await api.post("/api/tasks", json={"title": "Buy milk"}, headers=bearer(alice_token))
    assert created.status_code == 201, created.text
    task = created.json()
    task_url = f"/api/tasks/{task['id']}"

    # The session's set-auth-jwt token names the same user.
    own = await api.get(task_url, headers=bearer(await alice.session_jwt()))
    assert own.status_code == 200
    assert own.json()["user_id"] == task["user_id"]

    assert (await api.get("/api/tasks", headers=bearer(bob_token))).json() == []
    assert (await api.get(task_url, headers=bearer(bob_token))).status_code == 404
    edit = await api.put(task_url, json={"title": "Mine now"}, headers=bearer(bob_token))
    assert edit.status_code == 404
    assert (await api.delete(task_url, headers=bearer(bob_token))).status_code == 404

    bobs = await api.post("/api/tasks", json={"title": "Walk dog"}, headers=bearer(bob_token))
    assert bobs.status_code == 201
    assert bobs.json()["user_id"] != task["user_id"]
    alices = (await api.get("/api/tasks", headers=bearer(alice_token))).json()
    assert [listed["title"] for listed in alices] == ["Buy milk"]


async def test_tokens_not_signed_by_the_issuers_keys_are_refused(
    api: httpx.AsyncClient, sign_up: Any
) -> None:
    alice = await sign_up("alice")
    bob = await sign_up("bob")
    genuine = await alice.token()
    claims = jwt.decode(genuine, options={"verify_signature": False})
    real_kid = jwt.get_unverified_header(genuine)["kid"]
    assert (await api.get("/api/tasks", headers=bearer(genuine))).status_code == 200

    outsider = new_key("EdDSA")
    unknown_kid = outsider.sign(claims)
    outsider.kid = real_kid
    same_kid = outsider.sign(claims)
    header, _, signature = genuine.split(".")
    bob_claims = jwt.decode(await bob.token(), options={"verify_signature": False})
    swapped_payload = jwt.utils.base64url_encode(json.dumps(bob_claims).encode()).decode()
    tampered = f"{header}.{swapped_payload}.{signature}"

    for token, reason in [
        (unknown_kid, "not in the issuer's key set"),
        (same_kid, "signature"),
        (tampered, "signature"),
    ]:
        response = await api.get("/api/tasks", headers=bearer(token))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert reason in response.json()["detail"]
