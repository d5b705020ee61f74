"""The web trading screen: the built UI (``web/dist``) served by the Python app.

Why here: one process, one origin. The page, the REST API and ``/ws`` share a host and
port, so the browser needs no CORS and the UI no configuration (DESIGN §8:
``gateways/web/``). ``make ui`` (``npm ci`` + ``vite build``) makes the build; without
one nothing is mounted and the app is the API alone.

Invariants:
- only the UI's own paths are served: ``/assets/*`` (hashed file names: cached for a
  year), the client routes in :data:`CLIENT_ROUTES` (``index.html``, so a deep link or
  a reload of ``/trade/ETH-USDT`` works) and ``/config.json``; every other path keeps
  the API's answers (an unknown ``/api/...`` path is still ``404 not_found`` JSON, a
  wrong method still ``405``);
- ``index.html`` is read at each request and sent with ``no-cache``, so a rebuild is
  picked up without a restart and a browser never runs an old page against new assets;
- ``/config.json`` tells the page what the server is (demo mode or not); it holds no
  secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

WEB_DIR_VAR = "TRADEWIND_WEB_DIR"
CLIENT_ROUTES: tuple[str, ...] = (
    "/",
    "/login",
    "/register",
    "/verify-email",
    "/trade/{symbol}",
    "/account/{rest:path}",
    "/admin/{rest:path}",
)
"""Paths the single-page app routes itself; each answers ``index.html``."""
IMMUTABLE = "public, max-age=31536000, immutable"


def default_web_dir() -> Path:
    """``$TRADEWIND_WEB_DIR``, else ``web/dist`` of the source tree this package is in."""
    configured = os.environ.get(WEB_DIR_VAR)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "web" / "dist"


class _ImmutableFiles(StaticFiles):
    """Static files whose names change with their content: cache them for good."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        if response.status_code == 200:
            response.headers["Cache-Control"] = IMMUTABLE
        return response


def install_web(app: FastAPI, *, demo: bool, web_dir: Path | None = None) -> bool:
    """Serve the built UI from ``web_dir`` (default :func:`default_web_dir`) if it has an
    ``index.html``; returns whether it was mounted."""
    root = (web_dir or default_web_dir()).resolve()
    index = root / "index.html"
    if not index.is_file():
        return False

    async def page() -> Response:
        if not index.is_file():  # removed by a rebuild in progress
            return JSONResponse(
                {"code": "ui_unavailable", "message": "the web UI is being rebuilt"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    async def config() -> Response:
        return JSONResponse({"demo": demo}, headers={"Cache-Control": "no-cache"})

    for path in CLIENT_ROUTES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/config.json", config, methods=["GET"], include_in_schema=False)
    assets = root / "assets"
    if assets.is_dir():
        app.mount("/assets", _ImmutableFiles(directory=assets), name="web-assets")
    return True
