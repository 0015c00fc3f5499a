"""The dashboard's own errors, and the HTTP status each of aekit's errors becomes.

Every expected failure is an ``AekitError`` whose message says what was wrong and what to do; the app
turns it into ``{"detail": message}`` with the status below (the first match along the class's MRO).
"""

from __future__ import annotations

from aekit.errors import AekitError, DataError


class NotFound(AekitError):
    """A request named a run, model, item or file the server did not list."""


class TooLarge(DataError):
    """An upload over the size or pixel limits."""


STATUS: dict[type[AekitError], int] = {NotFound: 404, TooLarge: 413, AekitError: 400}


def status_of(exc: AekitError) -> int:
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
