"""``create_app``: the dashboard's FastAPI application (the page, its assets, and the JSON API).

Errors: every AekitError becomes ``{"detail": message}`` with 400, 404 (NotFound) or 413 (TooLarge);
FastAPI's own request validation errors become a one-line 400 too. Only files in the package's static
folder (the page) and, through the API, in the runs folder are ever read on a request's behalf.
"""

from __future__ import annotations

import json
import math
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aekit._version import __version__
from aekit.dashboard import endpoints_apply, endpoints_game, endpoints_models, endpoints_runs, images
from aekit.dashboard.errors import NotFound, status_of
from aekit.dashboard.workspace import Workspace
from aekit.errors import AekitError

STATIC_DIR = Path(__file__).resolve().parent / "static"
# a request body over this is refused before it is read: the largest upload, base64-encoded, plus forms
MAX_BODY_BYTES = images.MAX_UPLOAD_BYTES * 4 // 3 + 64 * 1024


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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": " ".join(message.split())}, status_code=status)


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
    hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if hosts is not None and host not in hosts:
            return _error(400, f"this dashboard answers to {', '.join(sorted(hosts))} only, not {host!r}.")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _error(413, f"the request is over {MAX_BODY_BYTES // 2**20} MB; send a smaller image.")
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.exception_handler(AekitError)
    async def aekit_error(request: Request, exc: AekitError) -> JSONResponse:
        return _error(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "; ".join(_explain(e) for e in exc.errors()[:3]) or "the request is malformed")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, f"nothing at {request.url.path}; the API lives under /api (see /api/health).")
        return _error(exc.status_code, str(exc.detail))

    for module in (endpoints_runs, endpoints_models, endpoints_game, endpoints_apply):
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
