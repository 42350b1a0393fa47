import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from todo.config import Settings
from todo.db import Database
from todo.main import create_app


def _samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
async def metrics_client(
    database: Database, database_url: str, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    metered = create_app(Settings(database_url=database_url, metrics_enabled=True), database)
    transport = httpx.ASGITransport(app=metered)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_metrics_are_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert Settings().metrics_enabled is False
    assert response.status_code == 404


async def test_requests_are_counted_by_route_method_and_status(
    metrics_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await metrics_client.post("/api/tasks", json={"title": "a"}, headers=headers)
    task_id = created.json()["id"]
    for _ in range(2):
        await metrics_client.get(f"/api/tasks/{task_id}", headers=headers)
    await metrics_client.get(f"/api/tasks/{uuid4()}", headers=headers)
    await metrics_client.get("/no/such/page")

    response = await metrics_client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    by_id = "/api/tasks/{task_id}"
    assert (
        samples[_key("http_requests_total", method="POST", route="/api/tasks", status="201")] == 1
    )
    assert samples[_key("http_requests_total", method="GET", route=by_id, status="200")] == 2
    assert samples[_key("http_requests_total", method="GET", route=by_id, status="404")] == 1
    assert (
        samples[_key("http_requests_total", method="GET", route="<unmatched>", status="404")] == 1
    )
    count = _key("http_request_duration_seconds_count", method="GET", route=by_id, status="200")
    total = _key("http_request_duration_seconds_sum", method="GET", route=by_id, status="200")
    assert samples[count] == 2
    assert samples[total] > 0
    inf = _key(
        "http_request_duration_seconds_bucket", method="GET", route=by_id, status="200", le="+Inf"
    )
    assert samples[inf] == 2
    assert samples[_key("db_pool_connections_in_use")] == 0
    # No series per raw path.
    assert task_id not in response.text


async def test_the_pool_gauge_counts_connections_in_use(
    metrics_client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction():
        during = _samples((await metrics_client.get("/metrics")).text)
    after = _samples((await metrics_client.get("/metrics")).text)

    assert during[_key("db_pool_connections_in_use")] == 1
    assert after[_key("db_pool_connections_in_use")] == 0


async def test_unknown_methods_share_one_label(metrics_client: httpx.AsyncClient) -> None:
    for method in ("BREW", "WHEN"):
        await metrics_client.request(method, "/health")

    samples = _samples((await metrics_client.get("/metrics")).text)

    assert samples[_key("http_requests_total", method="other", route="/health", status="405")] == 2


async def test_openmetrics_is_served_when_asked_for(metrics_client: httpx.AsyncClient) -> None:
    response = await metrics_client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_metrics_stay_out_of_the_openapi_schema(metrics_client: httpx.AsyncClient) -> None:
    schema = (await metrics_client.get("/openapi.json")).json()

    assert "/metrics" not in schema["paths"]


def test_a_multiprocess_dir_only_in_settings_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db'}",
        metrics_enabled=True,
        prometheus_multiproc_dir=tmp_path,
    )

    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR"):
        create_app(settings)


# Run with PROMETHEUS_MULTIPROC_DIR set, which prometheus_client reads on import:
# two forked workers answer requests and exit, then a third scrapes.
_WORKERS = textwrap.dedent(
    """
    import asyncio, os, sys
    import httpx
    from todo.main import create_app

    async def serve(requests: int) -> str:
        app = create_app()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
                for _ in range(requests):
                    await client.get("/health")
                return (await client.get("/metrics")).text

    for requests in (3, 4):
        pid = os.fork()
        if pid == 0:
            asyncio.run(serve(requests))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    sys.stdout.write(asyncio.run(serve(0)))
    """
)


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_ENABLED": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'todo.db'}",
        "LOG_LEVEL": "WARNING",
    }

    exposition = subprocess.run(
        [sys.executable, "-c", _WORKERS], env=env, capture_output=True, text=True, check=True
    ).stdout
    samples = _samples(exposition)

    key = _key("http_requests_total", method="GET", route="/health", status="200")
    # The two scrapes by the workers that left count too.
    assert samples[key] == 7
    assert samples[_key("http_requests_total", method="GET", route="/metrics", status="200")] == 2
    assert samples[_key("db_pool_connections_in_use")] == 0
    # Counters outlive their workers; a worker's gauge leaves with it.
    assert len(list(tmp_path.glob("counter_*.db"))) == 3
    assert list(tmp_path.glob("gauge_livesum_*.db")) == []
