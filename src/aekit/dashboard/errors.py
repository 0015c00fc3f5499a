"""The dashboard's own errors, the HTTP status each of aekit's errors becomes, and the JSON that carries one.

Every expected failure is an ``AekitError`` whose message says what was wrong and what to do; the app
turns it into ``{"detail": message}`` with the status below (the first match along the class's MRO).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

from aekit.errors import AekitError, DataError


class NotFound(AekitError):
    """A request named a run, model, item or file the server did not list."""


class TooLarge(DataError):
    """An upload over the size or pixel limits."""


STATUS: dict[type[AekitError], int] = {NotFound: 404, TooLarge: 413, AekitError: 400}


def status_of(exc: AekitError) -> int:
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"detail": message}`` on one line, which the page shows in red as it is."""
    return JSONResponse({"detail": " ".join(message.split())}, status_code=status, headers=headers)
