import httpx

ORIGIN = "http://localhost:3000"


async def test_preflight_allows_the_api_headers(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/tasks",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-User-ID, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-user-id" in allowed
    assert "content-type" in allowed


async def test_preflight_from_an_unknown_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/tasks",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_responses_expose_location_and_link(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "x"}, headers={**headers, "Origin": ORIGIN}
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "location" in exposed
    assert "link" in exposed


async def test_problem_responses_carry_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tasks", headers={"Origin": ORIGIN})
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_a_same_origin_answer_varies_on_origin_only(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-expose-headers" not in response.headers
