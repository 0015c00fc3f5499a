"""Pictures of an image explanation: a heat-map of where a sample's anomaly score sits, and the strip
input | reconstruction | heat-map that ``aekit detect --explain`` writes and the dashboard shows.

Pure numpy to uint8 arrays; writing them (atomically) is the caller's business.
"""

from __future__ import annotations

import numpy as np

# Small images are drawn this many pixels on their longer side at least (nearest-neighbour): an 8x8
# digit drawn 8 px wide cannot be seen.
MIN_SIDE = 96
GAP = 4  # pixels of white between the three pictures of a strip

# "hot": black -> red -> yellow -> white as the share grows; reads at a glance and in grayscale print.
HOT = np.array([[0, 0, 0], [230, 30, 0], [255, 220, 0], [255, 255, 255]], np.float64)


def colour(heat: np.ndarray) -> np.ndarray:
    """(H, W) non-negative values -> (H, W, 3) uint8, the largest value white, 0 black."""
    h = np.asarray(heat, np.float64)
    top = float(h.max()) if h.size else 0.0
    t = np.clip(h / top, 0.0, 1.0) if top > 0 else np.zeros_like(h)
    pos = t * (len(HOT) - 1)  # (H, W) position along the colour ramp
    i = np.minimum(pos.astype(np.int64), len(HOT) - 2)
    frac = (pos - i)[..., None]
    return np.rint(HOT[i] * (1 - frac) + HOT[i + 1] * frac).astype(np.uint8)


def to_rgb(image: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """One image (H, W), (H, W, 1) or (H, W, 3) in ``value_range`` -> (H, W, 3) uint8."""
    x = np.asarray(image, np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    lo, hi = value_range
    x = np.clip(np.rint((x - lo) / max(hi - lo, 1e-12) * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(x[..., None], 3, axis=-1) if x.ndim == 2 else x


def display_range(*images: np.ndarray) -> tuple[float, float]:
    """0..255 for uint8 images, else the images' own smallest and largest value (one scale for all)."""
    if all(np.asarray(im).dtype == np.uint8 for im in images):
        return 0.0, 255.0
    lo = min(float(np.min(im)) for im in images)
    hi = max(float(np.max(im)) for im in images)
    return lo, hi if hi > lo else lo + 1.0


def strip(image: np.ndarray, recon: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """input | reconstruction | heat-map side by side: (H * z, 3 * W * z + 2 * GAP, 3) uint8, each
    picture zoomed by a whole factor z so that small images can be seen."""
    rng = display_range(image, recon)
    parts = [to_rgb(image, rng), to_rgb(recon, rng), colour(heat)]
    h, w = parts[0].shape[:2]
    z = max(1, -(-MIN_SIDE // max(h, w, 1)))
    parts = [p.repeat(z, axis=0).repeat(z, axis=1) for p in parts]
    gap = np.full((h * z, GAP, 3), 255, np.uint8)
    return np.concatenate([parts[0], gap, parts[1], gap, parts[2]], axis=1)
