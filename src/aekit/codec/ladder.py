"""The quality ladder of a codec for small images: which (latent level, near-lossless bin width) each
quality codes, picked by really coding held-out images.

On small, mostly flat images (MNIST digits) a cheap latent plus the pixels coded in bins of width D (the
pixel head's distribution summed per bin, so every pixel is within D - 1 of the original) beats a richer
latent alone at almost every PSNR (bench/results/codec_mnist.md). Which combinations win depends on the
data, so ``ImageCodec.fit`` codes a few held-out images under every candidate and keeps ``QUALITIES``
points of their Pareto front (bytes, PSNR), spread evenly over ``PSNR_RANGE``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

QUALITIES = 8
PSNR_RANGE = (25.0, 50.0)  # dB the ladder spans, from a rough sketch to near-transparent
BIN_WIDTHS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 128)  # near-lossless candidates
TRAIN_BINS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # the pixel head learns the context of each
PSNR_CAP = 100.0  # an image reconstructed exactly counts as 100 dB in means (its PSNR is infinite)
IMAGES = 100  # held-out images coded under every candidate


def candidates(levels: int) -> list[tuple[int, int]]:
    """Every latent level alone, and the lower half of the levels with the pixels in bins of each width
    (near-lossless pays on top of a cheap latent)."""
    return [(level, 0) for level in range(levels)] + [
        (level, d) for level in range(max(1, levels // 2)) for d in BIN_WIDTHS
    ]


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-image PSNR (dB) of two stacks (N, H, W[, C]) uint8, each image capped at PSNR_CAP."""
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = err.reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        psnrs = 10 * np.log10(255.0**2 / mse)
    return float(np.mean(np.minimum(psnrs, PSNR_CAP)))


def measure(levels: int, code: Callable[[int, int], tuple[float, float]]) -> list[dict[str, float | int]]:
    """{level, bins, payload_bytes, psnr} of every candidate; ``code(level, bins)`` gives its mean payload
    bytes and mean PSNR on the held-out images."""
    rows = []
    for level, bins in candidates(levels):
        size, psnr = code(level, bins)
        rows.append({"level": level, "bins": bins, "payload_bytes": size, "psnr": psnr})
    return rows


def choose(rows: list[dict], n: int = QUALITIES) -> list[dict]:
    """n points of the Pareto front of (bytes, PSNR), spread evenly in PSNR over PSNR_RANGE, by size."""
    front = []
    for r in sorted(rows, key=lambda r: (r["payload_bytes"], -r["psnr"])):
        if not front or r["psnr"] > front[-1]["psnr"]:  # Pareto front: more bytes must buy more PSNR
            front.append(r)
    lo, hi = PSNR_RANGE
    usable = [r for r in front if lo - 1.5 <= r["psnr"]] or front
    chosen: list[dict] = []
    for target in np.linspace(lo, hi, n):
        # the cheapest front point at or above the target PSNR (the best one if none reaches it)
        above = [r for r in usable if r["psnr"] >= target]
        pick = min(above, key=lambda r: r["payload_bytes"]) if above else usable[-1]
        if pick not in chosen:
            chosen.append(pick)
    for r in usable:  # fill up to n with front points not yet chosen, if some targets coincided
        if len(chosen) >= n:
            break
        if r not in chosen:
            chosen.append(r)
    return sorted(chosen, key=lambda r: r["payload_bytes"])[:n]
