import httpx

from todo.config import Settings
from todo.db import Database
from todo.main import create_app


async def test_health_needs_no_user(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_runs_a_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_readiness_is_a_503_problem_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 9 of the loopback interface.
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:9/none", database_connect_timeout=1
    )
    database = Database(settings.database_url, settings)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/health/ready")
        liveness = await client.get("/health")
    await database.dispose()

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json()["type"] == "urn:todo:problem:database-unavailable"
    assert liveness.status_code == 200
