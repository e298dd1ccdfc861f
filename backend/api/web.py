"""The built web app (``web/dist``) at ``/``, with the single-page app's fallback.

Registered after every API router, so it never shadows them: ``/api``, ``/ipfs``,
``/docs``, ``/redoc`` and ``/openapi.json`` keep their own routes, and an unknown path under
``/api`` or ``/ipfs`` is still the API's JSON 404. Any other ``GET`` is a file of the build
when one exists, else ``index.html`` (the app's router then picks the page).

Vite names the files under ``assets/`` by their content hash, so they are cached for a
year as immutable; everything else, ``index.html`` above all, is revalidated each time so
a new build shows at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from backend.errors import NotFoundError

__all__ = ["ASSET_CACHE_CONTROL", "INDEX_CACHE_CONTROL", "include_web_app"]

#: Cache-Control of content-hashed build assets.
ASSET_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
#: Cache-Control of index.html and the build's other, unhashed files.
INDEX_CACHE_CONTROL: Final = "no-cache"
#: Every method: a POST to an app path stays a 404, as it was before the app existed.
_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: Longest request path looked up on disk; longer ones get the app (and its own 404 page).
_MAX_PATH_CHARS: Final = 1024

_NOT_BUILT_HTML: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shotbank: web app not built</title></head>
<body><main><h1>The web app is not built yet</h1>
<p>Build it with <code>make web</code> (or <code>npm run build --prefix web</code>) and reload.
The API is up: see <a href="/docs">/docs</a>.</p></main></body></html>
"""


class _WebPathConvertor(Convertor[str]):
    """Any path except those the API and its documentation own."""

    regex = r"(?!(?:api|ipfs|docs|redoc|static/docs|openapi\.json)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("webpath", _WebPathConvertor())


def _file_in(root: Path, path: str) -> Path | None:
    """The regular file ``path`` names inside ``root``, or ``None`` (also for escapes)."""
    if not path or len(path) > _MAX_PATH_CHARS or "\x00" in path:
        return None
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _serve(root: Path, path: str) -> Response:
    """One response for a non-API ``GET``: a build file, else ``index.html``."""
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(
            _NOT_BUILT_HTML, status_code=503, headers={"Cache-Control": INDEX_CACHE_CONTROL}
        )
    found = _file_in(root, path)
    if found is None or found == index:
        return FileResponse(index, headers={"Cache-Control": INDEX_CACHE_CONTROL})
    hashed = found.parent == root / "assets"
    cache = ASSET_CACHE_CONTROL if hashed else INDEX_CACHE_CONTROL
    return FileResponse(found, headers={"Cache-Control": cache})


def include_web_app(app: FastAPI, web_dir: Path) -> None:
    """Serve the build in ``web_dir`` at ``/``; call after every other router is included."""
    root = web_dir.expanduser().resolve()
    router = APIRouter(include_in_schema=False)

    # The convertor never matches the API's paths, so for them routing is exactly as without
    # the app: the API's JSON 404, Starlette's trailing-slash redirects, its 405s.
    @router.api_route("/{path:webpath}", methods=list(_METHODS))
    def web_app(path: str, request: Request) -> Response:
        """The app's file or page for any path the API does not own."""
        if request.method not in ("GET", "HEAD"):
            raise NotFoundError(f"No route {request.method} {request.url.path}.")
        return _serve(root, path)

    app.include_router(router)
