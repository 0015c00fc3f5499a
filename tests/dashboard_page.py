"""Driving the dashboard's page in headless Chromium: shared by tests/test_dashboard_browser.py and
bench/dashboard_screenshots.py (which puts this folder on sys.path)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright's own browser download needs the internet
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def draw(page, points: list[tuple[float, float]], steps: int = 8) -> None:
    """One stroke with the mouse through `points` given as fractions of the game canvas."""
    box = page.locator("#game-canvas").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def latent_xy(page, i: int) -> tuple[float, float]:
    """Where latent point i is drawn, in page coordinates (the canvas may be scaled by CSS)."""
    return tuple(
        page.evaluate(
            """(i) => {
                const c = document.querySelector('#latent-plot');
                const r = c.getBoundingClientRect();
                const [x, y] = toScreen(state.latent.points[i]);
                return [r.left + (x * r.width) / c.width, r.top + (y * r.height) / c.height];
            }""",
            i,
        )
    )


def farthest_from_first(page) -> int:
    """The latent point farthest from point 0: a pair of clicks that cannot land on the same point."""
    points = np.asarray(page.evaluate("state.latent.points"))
    return int(((points - points[0]) ** 2).sum(axis=1).argmax())
