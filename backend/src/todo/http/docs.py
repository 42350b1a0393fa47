"""The documentation pages, /docs (Swagger UI) and /redoc, with every file they load.

Swagger UI's and ReDoc's files come from the fastapi-offline wheel, so the pages fetch nothing
from a CDN and work on a closed network. FastAPI's own pages start Swagger UI with an inline
script and style ReDoc's page inline; these do neither, and are sent with a policy that forbids
inline scripts. Every URL in them is relative, so they work under a proxy's path prefix too.
"""

from collections.abc import Awaitable, Callable
from html import escape
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

# Only the app's own files; `data:` for the icons Swagger UI's stylesheet embeds (without it
# the page renders all the same, less the icons).
SWAGGER_UI_POLICY = "default-src 'self'; img-src 'self' data:"
# ReDoc 2.5 cannot start under `style-src 'self'`: styled-components writes its rules into empty
# <style> elements, and its scrollbar's stylesheet is a <style> element too. The hashes allow
# exactly those two contents (the first is the empty string's) and no other inline style;
# search runs in a worker made from a blob. Its side menu's Redocly logo, an image on its CDN,
# stays blocked (the image then hides itself).
REDOC_POLICY = (
    f"{SWAGGER_UI_POLICY}; style-src 'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' "
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='; worker-src blob:"
)
# The package's files change only with its version, which is in their path.
UI_FILES_PATH = f"/docs/ui/{version('fastapi-offline')}"
# The app's own two files change with any deployment.
APP_FILES_PATH = "/docs/app"

Endpoint = Callable[[Request], Awaitable[Response]]

_UI_FILES = UI_FILES_PATH.lstrip("/")
_APP_FILES = APP_FILES_PATH.lstrip("/")
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{ui}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""


def _files(files: StaticFiles, cache_control: str) -> Endpoint:
    # A route rather than a mount, so that each file's answer is logged and counted under
    # its route, and a 405 names the methods, as the API's own routes do.
    async def serve(request: Request) -> Response:
        # StaticFiles answers 404 to a path that leads out of its directory.
        response = await files.get_response(request.path_params["path"], request.scope)
        response.headers["Cache-Control"] = cache_control
        return response

    return serve


def _page(title: str, policy: str, head: str, body: str) -> Endpoint:
    html = _PAGE.format(title=escape(title), ui=_UI_FILES, head=head, body=body)
    # Revalidated, so that a new version's page names the new files at once.
    headers = {"Content-Security-Policy": policy, "Cache-Control": "no-cache"}

    async def page(request: Request) -> Response:
        # A response of its own each time: CORS adds its headers to a response's list in place.
        return HTMLResponse(html, headers=headers)

    return page


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc; the app must be created with `docs_url=None, redoc_url=None`."""
    swagger_ui = _page(
        f"{app.title} - Swagger UI",
        SWAGGER_UI_POLICY,
        head=f'<link rel="stylesheet" href="{_UI_FILES}/swagger-ui.css">',
        body=(
            '<div id="swagger-ui"></div>\n'
            f'<script src="{_UI_FILES}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{_APP_FILES}/swagger-init.js"></script>'
        ),
    )
    redoc = _page(
        f"{app.title} - ReDoc",
        REDOC_POLICY,
        head=f'<link rel="stylesheet" href="{_APP_FILES}/redoc.css">',
        body=(
            '<redoc spec-url="openapi.json"></redoc>\n'
            f'<script src="{_UI_FILES}/redoc.standalone.js"></script>'
        ),
    )

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
    package_files = StaticFiles(packages=[("fastapi_offline", "static")])
    app.add_route(
        f"{UI_FILES_PATH}/{{path:path}}",
        _files(package_files, "public, max-age=31536000, immutable"),
        include_in_schema=False,
    )
    own_files = StaticFiles(directory=Path(__file__).with_name("docs_files"))
    app.add_route(
        f"{APP_FILES_PATH}/{{path:path}}",
        _files(own_files, "no-cache"),
        include_in_schema=False,
    )
