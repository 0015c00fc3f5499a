"""The pieces of a report folder: image grids, loss curves, a code-size curve, summary.json and index.html.

Each function takes arrays, histories or figures, never a caller's state, so ``aekit demo`` and a report
on one saved model share them. Every file is written atomically. Figures are drawn on matplotlib's
``Figure`` with its Agg canvas, not through pyplot: no display is needed, and a user's pyplot backend
and open figures are left alone (pyplot's global state is the thing that bites in notebooks and servers).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aekit.atomic import atomic_path, write_text_atomic
from aekit.extras import require

CELL_INCHES = 0.55  # one small image in a grid
DPI = 110


# -- figures of merit -----------------------------------------------------------------------------------
def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every value, in float64 (uint8 inputs do not wrap around)."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(mse_value: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error, for data whose range is ``peak``."""
    return math.inf if mse_value <= 0 else 10.0 * math.log10(peak**2 / mse_value)


def n_parameters(estimator: Any) -> int:
    """Number of trained values in a fitted estimator's model."""
    return int(sum(p.numel() for p in estimator.model_.parameters()))


def vae_samples(estimator: Any, n: int, seed: int = 0) -> np.ndarray:
    """Decode ``n`` codes drawn from the prior N(0, I): what a fitted VAE generates."""
    code_size = estimator.model_.config.code_size
    return estimator.inverse_transform(np.random.default_rng(seed).standard_normal((n, code_size)))


# -- images ---------------------------------------------------------------------------------------------
def save_figure(fig: Any, path: str | Path | io.BytesIO) -> Path | io.BytesIO:
    """Write a matplotlib ``Figure`` as PNG, atomically; or into a buffer (``png_bytes`` uses that)."""
    if isinstance(path, io.BytesIO):
        fig.savefig(path, format="png", dpi=DPI)
        return path
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)  # format given: the temporary name ends in .tmp
    return path


def png_bytes(draw: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """The PNG that a figure function writes, in memory: ``png_bytes(loss_curves, histories)``.

    Every figure function here takes its output path first and ends in ``save_figure``, which also
    accepts a buffer: a page with inlined images then draws with the same code as a report folder.
    """
    buffer = io.BytesIO()
    draw(buffer, *args, **kwargs)
    return buffer.getvalue()


def image_png(image: np.ndarray) -> bytes:
    """One (H, W) or (H, W, 1 or 3) image (uint8, or floats in [0, 1]) as PNG bytes, pixel for pixel."""
    from PIL import Image

    pixels = np.round(_as_images(np.asarray(image)[None])[0] * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a ``data:`` URL, for an image that lives inside its HTML page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(width: float, height: float):
    """A matplotlib ``Figure`` (the Agg canvas is attached on savefig; no backend is chosen)."""
    mpl = require("matplotlib.figure", "plots", "drawing figures")
    return mpl.Figure(figsize=(width, height), layout="constrained")


def _as_images(x: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) -> (N, H, W) gray or (N, H, W, 3) RGB, in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 1 or 3); got {x.shape}.")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return np.clip(x.astype(np.float32) / scale, 0.0, 1.0)


def mosaic(grid: Sequence[np.ndarray], gap: int = 1) -> np.ndarray:
    """Rows of equally sized images (each (N, H, W) or (N, H, W, 3) in [0, 1]) tiled into one array.

    Rows may be shorter than the longest; ``gap`` pixels of white separate the tiles.
    """
    n_cols = max(len(row) for row in grid)
    h, w = grid[0].shape[1:3]
    shape = (len(grid) * (h + gap) - gap, n_cols * (w + gap) - gap, *grid[0].shape[3:])
    out = np.ones(shape, np.float32)
    for r, row in enumerate(grid):
        for c, image in enumerate(row):
            out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return out


def _show(fig: Any, tiles: np.ndarray, row_labels: Sequence[str] = (), tile_height: int = 0) -> None:
    # One imshow of the whole mosaic: a subplot per tile costs ~0.05 s each to lay out and draw.
    ax = fig.subplots()
    ax.imshow(tiles, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(r + 0.5) * tile_height - 0.5 for r in range(len(row_labels))], list(row_labels))
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def image_rows(path: str | Path, rows: Sequence[tuple[str, np.ndarray]], title: str | None = None) -> Path:
    """One labelled row of images per entry, e.g. [("input", x), ("dense", recon)].

    Images are (N, H, W) or (N, H, W, 1 or 3) with values in [0, 1] (uint8 in [0, 255]), the same H and W
    in every row; a row may hold fewer images than the others.
    """
    grid = [_as_images(images) for _, images in rows]
    tiles = mosaic(grid)
    width = max(len(images) for images in grid) * CELL_INCHES
    fig = figure(1.3 + width, 0.2 + width * tiles.shape[0] / tiles.shape[1] + (0.3 if title else 0))
    _show(fig, tiles, [label for label, _ in rows], grid[0].shape[1] + 1)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def image_grid(path: str | Path, images: np.ndarray, n_cols: int = 16, title: str | None = None) -> Path:
    """Images in a grid of ``n_cols`` columns, filled row by row."""
    images = _as_images(images)
    grid = [images[i : i + n_cols] for i in range(0, len(images), n_cols)]
    tiles = mosaic(grid)
    width = min(n_cols, len(images)) * CELL_INCHES
    fig = figure(0.2 + width, 0.2 + width * tiles.shape[0] / tiles.shape[1] + (0.3 if title else 0))
    _show(fig, tiles)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


# -- curves ---------------------------------------------------------------------------------------------
def loss_label(estimator: Any) -> str:
    """What a fitted autoencoder's training loss is, for the y axis of its curve: "MSE", "BCE + sparsity",
    "negative ELBO per value" (a VAE: likelihood and KL, each a mean over the input's values)."""
    if hasattr(estimator.model_, "posterior"):
        return "negative ELBO per value"
    first = estimator.history_[0] if estimator.history_ else {}
    skip = ("epoch", "lr", "seconds", "recon", "loss")
    extra = [k for k in first if k not in skip and not k.startswith("val_")]  # the regularisers
    return " + ".join([estimator.model_.config.loss.upper(), *extra])


def loss_curves(
    path: str | Path,
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    ylabels: Mapping[str, str] | None = None,
) -> Path:
    """One panel per model: training loss and, where there is one, validation loss per epoch.

    ``histories`` maps a model's name to its ``history_`` (a list of per-epoch dicts), ``ylabels`` a name
    to what its loss is (``loss_label``; "loss" when not given). Panels, not one shared axis, because the
    losses differ in kind (MSE, BCE, ELBO) and in scale.
    """
    n = len(histories)
    n_cols = min(n, 3)
    n_rows = math.ceil(n / n_cols)
    fig = figure(3.3 * n_cols, 2.5 * n_rows)
    from matplotlib.ticker import MaxNLocator  # after figure(), which says which extra is missing

    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax, (name, history) in zip(axes.flat, histories.items(), strict=False):
        epochs = [h["epoch"] for h in history]
        values = []
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if any(key in h for h in history):
                ys = [h.get(key, math.nan) for h in history]
                values += [y for y in ys if math.isfinite(y)]
                ax.plot(
                    epochs,
                    ys,
                    style,
                    marker="." if len(epochs) < 3 else None,
                    label="validation" if key == "val_loss" else "train",
                )
        if values and min(values) > 0:
            ax.set_yscale(
                "log"
            )  # losses fall by orders of magnitude; a Gaussian NLL can be < 0, so only then
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel((ylabels or {}).get(name, "loss"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:  # one point: the locator would spread fractional epochs around it
            ax.set_xticks(epochs)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return save_figure(fig, path)


def code_size_curve(
    path: str | Path,
    code_sizes: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    baseline: float | None = None,
    ylabel: str = "test MSE",
) -> Path:
    """Error against code size, one line per method (e.g. autoencoder and PCA), log-scale error axis.

    ``baseline`` draws a horizontal line, e.g. the error of predicting the training mean for every sample.
    """
    fig = figure(5.5, 3.8)
    ax = fig.subplots()
    for (name, errors), marker in zip(curves.items(), "osd^v<>", strict=False):
        ax.plot(code_sizes, errors, marker=marker, label=name)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle=":", label="mean image")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(code_sizes), [str(k) for k in code_sizes])
    ax.set_yscale("log")
    ax.set_xlabel("code size")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} against code size", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path)


# -- documents ------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays become Python, non-finite floats become null (JSON has no inf)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    path = Path(path)
    write_text_atomic(path, json.dumps(_plain(data), indent=2, allow_nan=False) + "\n")
    return path


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 64em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 2em 0; } img { max-width: 100%; image-rendering: pixelated; }
figcaption, .note { color: #555; }
"""


def write_index(
    path: str | Path,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    images: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
) -> Path:
    """A self-contained HTML page: a table, notes, and images by relative link (no scripts, no network).

    ``images`` are (file name relative to the page, caption); numbers in ``rows`` are right-aligned.
    """
    esc = html.escape

    def cell(value: Any, tag: str = "td") -> str:
        numeric = isinstance(value, int | float) or _is_number(value)
        return f"<{tag}{' class=num' if numeric and tag == 'td' else ''}>{esc(str(value))}</{tag}>"

    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<table><thead><tr>" + "".join(cell(h, "th") for h in header) + "</tr></thead><tbody>",
        *("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows),
        "</tbody></table>",
        *(f'<p class="note">{esc(note)}</p>' for note in notes),
    ]
    for src, caption in images:
        parts.append(
            f'<figure><img src="{esc(src, quote=True)}" alt="{esc(caption, quote=True)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    path = Path(path)
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path


def _is_number(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
    except ValueError:
        return False
    return True
