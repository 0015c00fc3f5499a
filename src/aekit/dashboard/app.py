"""``create_app``: the dashboard's FastAPI application (the page, its assets, and the JSON API).

Errors: every AekitError becomes ``{"detail": message}`` with 400, 404 (NotFound) or 413 (TooLarge);
FastAPI's own request validation errors become a one-line 400 too. Only files in the package's static
folder (the page) and, through the API, in the runs folder and the model files the workspace lists (the
runs' own, --model) are ever read on a request's behalf. Before
any of it, ``guard.Guard`` refuses other sites' pages, other Host names, oversized bodies and image
requests beyond ``MAX_HEAVY_REQUESTS`` at once.
"""

from __future__ import annotations

import json
import math
import mimetypes
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aekit._version import __version__
from aekit.dashboard import (
    endpoints_apply,
    endpoints_explain,
    endpoints_game,
    endpoints_models,
    endpoints_runs,
    images,
)
from aekit.dashboard.errors import NotFound, json_error, status_of
from aekit.dashboard.guard import Guard
from aekit.dashboard.workspace import Workspace
from aekit.errors import AekitError

STATIC_DIR = Path(__file__).resolve().parent / "static"
# a request body over this is refused before it is read: the largest upload, base64-encoded, plus forms
MAX_BODY_BYTES = images.MAX_UPLOAD_BYTES * 4 // 3 + 64 * 1024
# compress, restore and the game at once: the page sends one drawing and one upload at a time, and each
# of these can take a second or more and hundreds of MB (see images.MAX_APPLY_PIXELS)
MAX_HEAVY_REQUESTS = 2


def _finite(value: Any) -> Any:
    """NaN and infinities (a diverged loss, a perfect PSNR) as null: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class FiniteJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def create_app(
    runs_dir: str | Path = "runs",
    data: str = "digits",
    models: Sequence[str | Path] = (),
    allowed_hosts: Sequence[str] | None = None,
    device: str = "auto",
) -> FastAPI:
    """The dashboard over ``runs_dir`` with example data ``data`` (a name or path) and extra model files.

    ``allowed_hosts`` (e.g. 127.0.0.1 and localhost for a local server) refuses requests whose Host header
    names another host, which stops a web page elsewhere from reaching the server by DNS rebinding.
    """
    app = FastAPI(
        title="aekit dashboard",
        version=__version__,
        default_response_class=FiniteJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.workspace = Workspace(runs_dir, data, models, device=device)
    app.state.heavy_slots = threading.BoundedSemaphore(MAX_HEAVY_REQUESTS)
    app.add_middleware(
        Guard, max_body=MAX_BODY_BYTES, slots=app.state.heavy_slots, allowed_hosts=allowed_hosts
    )

    @app.exception_handler(AekitError)
    async def aekit_error(request: Request, exc: AekitError) -> JSONResponse:
        return json_error(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return json_error(400, "; ".join(_explain(e) for e in exc.errors()[:3]) or "the request is malformed")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return json_error(
                404, f"nothing at {request.url.path}; the API lives under /api (see /api/health)."
            )
        return json_error(exc.status_code, str(exc.detail))

    for module in (endpoints_runs, endpoints_models, endpoints_game, endpoints_apply, endpoints_explain):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return _static_file("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        return _static_file(name)

    return app


def _explain(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"


def static_files() -> dict[str, Path]:
    """The page's assets by file name: the only files the server hands out as they are."""
    if not STATIC_DIR.is_dir():
        return {}
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and not p.name.startswith(".")}


def _static_file(name: str) -> FileResponse:
    files = static_files()
    if name not in files:
        raise NotFound(f"no file {name!r} among the dashboard's assets; reinstall aekit if the page is gone.")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(files[name], media_type=media_type, headers={"Cache-Control": "no-cache"})
