"""/docs and /redoc load every file from the app itself, and run no inline script."""

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib.metadata import version
from typing import Any

import httpx
import pytest

from todo.config import Settings
from todo.http.docs import APP_FILES_PATH, REDOC_POLICY, SWAGGER_UI_POLICY, UI_FILES_PATH
from todo.main import create_app

PAGES = ["/docs", "/redoc"]
# What each file must be, by its name's ending, and the least it may weigh: the package's
# bundles are megabytes, so a stub or an error page in their place shows.
EXPECTED = {
    ".js": ("text/javascript", 100),
    ".css": ("text/css", 40),
    ".png": ("image/png", 100),
}
PACKAGE_MINIMUM = 100_000
ORIGIN = "http://localhost:3000"


class _Page(HTMLParser):
    """The URLs a page loads, its scripts' and styles' inline text, and its inline handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        for name in ("src", "href", "spec-url", "action", "formaction", "poster", "data"):
            value = attributes.get(name)
            if value is not None:
                self.urls.append(value)
        self._open = tag if tag in ("script", "style") else None

    def handle_data(self, data: str) -> None:
        if self._open is not None and data.strip():
            self.inline.append(f"<{self._open}>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    if app.state.limiter is not None:
        await app.state.limiter.close()


@pytest.fixture(
    params=[
        pytest.param({}, id="header"),
        pytest.param(
            {
                "auth_mode": "jwt",
                "auth_jwt_secret": "s" * 32,
                "rate_limit": "1/s burst 1",
                "cors_origins": ORIGIN,
            },
            id="jwt-rate-limited",
        ),
    ]
)
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The documentation needs no database: the app on an unused one, in both auth modes."""
    options: dict[str, Any] = request.param
    async for client in _client(Settings(database_url="sqlite:///:memory:", **options)):
        yield client


async def _page(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, _Page]:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response, _parse(response.text)


@pytest.mark.parametrize("path", PAGES)
async def test_every_url_on_the_page_is_relative_to_the_app(
    client: httpx.AsyncClient, path: str
) -> None:
    _, page = await _page(client, path)
    assert page.urls
    for url in page.urls:
        # No scheme (http:, https:, data:, javascript:), no host (//cdn...), no root.
        assert not re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|/)", url), url
    assert all(tag != "base" for tag, _ in page.tags)


@pytest.mark.parametrize("path", PAGES)
async def test_every_file_the_page_names_is_served_by_the_app(
    client: httpx.AsyncClient, path: str
) -> None:
    response, page = await _page(client, path)
    files = [url for url in page.urls if not url.endswith(".json")]
    assert len(files) >= 3
    for url in files:
        target = response.url.join(url)
        assert target.host == "testserver"
        served = await client.get(target)
        assert served.status_code == 200, target
        suffix = "." + target.path.rsplit(".", 1)[-1]
        content_type, minimum = EXPECTED[suffix]
        assert served.headers["content-type"].split(";")[0] == content_type, target
        if target.path.startswith(UI_FILES_PATH) and suffix != ".png":
            minimum = PACKAGE_MINIMUM
        assert len(served.content) >= minimum, target


@pytest.mark.parametrize("path", PAGES)
async def test_the_page_runs_no_inline_script_or_style(
    client: httpx.AsyncClient, path: str
) -> None:
    _, page = await _page(client, path)
    assert page.inline == []
    scripts = [attributes for tag, attributes in page.tags if tag == "script"]
    assert scripts
    assert all(attributes.get("src") for attributes in scripts)
    for tag, attributes in page.tags:
        assert tag != "style"
        assert "style" not in attributes, tag
        assert not any(name.startswith("on") for name in attributes), tag


async def test_swagger_ui_is_started_on_the_apps_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    response, page = await _page(client, "/docs")
    (initializer,) = [url for url in page.urls if url.endswith("swagger-init.js")]
    script = (await client.get(response.url.join(initializer))).text
    assert "SwaggerUIBundle(" in script
    (spec,) = re.findall(r'\burl: "([^"]+)"', script)
    # Swagger UI fetches it relative to the page.
    assert response.url.join(spec).path == "/openapi.json"
    (dom_id,) = re.findall(r'dom_id: "#([\w-]+)"', script)
    assert ("div", {"id": dom_id}) in page.tags
    document = (await client.get(response.url.join(spec))).json()
    assert document["paths"]["/api/tasks"]


async def test_redoc_reads_the_apps_openapi_document(client: httpx.AsyncClient) -> None:
    response, page = await _page(client, "/redoc")
    (spec,) = [attributes["spec-url"] for tag, attributes in page.tags if tag == "redoc"]
    assert spec is not None
    assert response.url.join(spec).path == "/openapi.json"


@pytest.mark.parametrize(
    ("path", "policy"),
    [("/docs", SWAGGER_UI_POLICY), ("/redoc", REDOC_POLICY)],
    ids=["docs", "redoc"],
)
async def test_the_page_is_sent_with_a_policy_that_allows_only_the_apps_scripts(
    client: httpx.AsyncClient, path: str, policy: str
) -> None:
    response, _ = await _page(client, path)
    assert response.headers["content-security-policy"] == policy
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    # Scripts and connections fall back to default-src: the app's own origin only.
    assert "script-src" not in directives
    assert "connect-src" not in directives
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert response.headers["cache-control"] == "no-cache"


async def test_swagger_ui_needs_nothing_beyond_the_apps_origin_but_data_images() -> None:
    assert SWAGGER_UI_POLICY == "default-src 'self'; img-src 'self' data:"


async def test_redoc_allows_only_the_inline_styles_of_its_pinned_version() -> None:
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert f"'sha256-{empty}'" in REDOC_POLICY
    # The other hash is of the scrollbar stylesheet ReDoc 2.5.3 injects: a new package
    # version needs it checked in a browser's console again (docs/api.md).
    assert version("fastapi-offline") == "1.7.7"


async def test_the_packages_files_are_cached_for_good_under_their_version(
    client: httpx.AsyncClient,
) -> None:
    assert f"/docs/ui/{version('fastapi-offline')}" == UI_FILES_PATH
    response = await client.get(f"{UI_FILES_PATH}/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = await client.get(
        f"{UI_FILES_PATH}/swagger-ui-bundle.js",
        headers={"If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_the_apps_own_files_are_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{APP_FILES_PATH}/swagger-init.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]


async def test_a_head_request_for_a_file_has_its_length_and_no_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.head(f"{UI_FILES_PATH}/swagger-ui.css")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) > PACKAGE_MINIMUM
    assert response.content == b""


@pytest.mark.parametrize(
    "path",
    [
        f"{UI_FILES_PATH}/missing.js",
        f"{APP_FILES_PATH}/missing.js",
        "/docs/ui/0.0.1/swagger-ui-bundle.js",
        f"{UI_FILES_PATH}/",
        f"{APP_FILES_PATH}/../docs.py",
        f"{APP_FILES_PATH}/%2E%2E/docs.py",
        f"{APP_FILES_PATH}/..%2Fdocs.py",
        f"{UI_FILES_PATH}//etc/passwd",
        "/docs/",
    ],
)
async def test_a_file_that_is_not_there_is_a_404_problem(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_write_to_a_file_is_a_405_that_names_get_and_head(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(f"{UI_FILES_PATH}/swagger-ui.css", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_file_answers_a_cross_origin_request_and_carries_its_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{APP_FILES_PATH}/redoc.css", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    assert "Origin" in response.headers["vary"]


async def test_the_documentation_is_not_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
