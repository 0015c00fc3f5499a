"""``Guard``: what a request must pass before the app sees it (an ASGI middleware around the whole app).

Any web page the user visits can make the browser send requests to http://127.0.0.1:8765/: a form or a
multipart ``fetch`` needs no CORS permission, only the answer stays unreadable. So the guard refuses, as
``{"detail": message}``:

- 400: a Host header the server was not told to answer to (DNS rebinding: a page whose name now points
  at 127.0.0.1 would otherwise be same-origin with the dashboard);
- 403: an API call, or any request that is not a GET, sent by another site's page: ``Sec-Fetch-Site``
  cross-site or same-site (another port of the same host is same-site), or an ``Origin`` that is not the
  dashboard's own. Requests with neither header (curl, scripts, tests) are no browser's and pass;
- 413: a body over ``max_body`` bytes, by its Content-Length or, for a chunked body, counted as it arrives;
- 503 with Retry-After: an image request (compress, restore, the game) while all ``slots`` are taken, so
  that a burst of them queues in no one's memory.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aekit.dashboard.errors import json_error

# the endpoints whose work grows with the upload: endpoints_apply's routes and endpoints_game's
HEAVY = re.compile(r"/api/(apply/[^/]+|models/[^/]+/game)")
RETRY_AFTER_S = 5
FOREIGN_SITES = ("cross-site", "same-site")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit. FastAPI re-raises an HTTPException met while
    reading a body, so the app answers it as its other errors; the guard answers it if it gets here."""


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        slots: threading.BoundedSemaphore,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.slots = slots
        self.hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _nosniff(send)
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is not None:
            await json_error(*refusal)(scope, receive, send)
            return
        heavy = scope["method"] == "POST" and HEAVY.fullmatch(scope["path"]) is not None
        if heavy and not self.slots.acquire(blocking=False):  # never waits: the event loop runs this
            busy = (
                "the dashboard is already working on as many image requests (compress, restore, the game) "
                f"as it runs at once; try again in {RETRY_AFTER_S} seconds."
            )
            await json_error(503, busy, {"Retry-After": str(RETRY_AFTER_S)})(scope, receive, send)
            return
        try:
            await self._serve(scope, receive, send)
        finally:
            if heavy:
                self.slots.release()

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """(status, message) for a request refused before the app sees it; None for one that may pass."""
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0].lower()
        if self.hosts is not None and name not in self.hosts:
            return 400, f"this dashboard answers to {', '.join(sorted(self.hosts))} only, not {name!r}."
        own = f"{scope['scheme']}://{host}"
        foreign = _foreign(headers, own)
        if foreign and (scope["method"] not in ("GET", "HEAD") or scope["path"].startswith("/api/")):
            return 403, (
                f"refused: this request was sent by a page on another site ({foreign}), and the dashboard "
                f"only answers its own page, {own}/. Open that page and work there."
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, self._too_large()
        return None

    def _too_large(self) -> str:
        return f"the request is over {self.max_body // 2**20} MB; send a smaller image."

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with the body's bytes counted as they arrive: a chunked body has no Content-Length
        to check up front."""
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(413, self._too_large())
            return message

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await json_error(413, exc.detail)(scope, receive, send)


def _nosniff(send: Send) -> Send:
    """``send`` that adds X-Content-Type-Options: nosniff, so no answer is ever run as a script or page."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])  # optional in ASGI; MutableHeaders edits it in place
            MutableHeaders(scope=message).setdefault("X-Content-Type-Options", "nosniff")
        await send(message)

    return wrapped


def _foreign(headers: Headers, own: str) -> str | None:
    """The header that shows another site's page sent the request, or None."""
    site = headers.get("sec-fetch-site", "")
    if site in FOREIGN_SITES:
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is not None and origin.lower() != own.lower():
        return f"Origin: {origin}"
    return None
