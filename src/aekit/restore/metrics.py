"""Image quality metrics, from scikit-image (a maintained implementation, not our own): extra 'metrics'."""

from __future__ import annotations

import numpy as np

from aekit.extras import require


def _pair(reference: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from aekit.errors import DataError

    a, b = np.asarray(reference), np.asarray(image)
    if a.shape != b.shape:
        raise DataError(f"cannot compare images of shapes {a.shape} and {b.shape}; they must match")
    data_range = 255.0 if a.dtype == np.uint8 else 1.0
    return a.astype(np.float64), b.astype(np.float64), data_range


def _skimage():
    return require("skimage.metrics", "metrics", "aekit.restore.psnr and ssim")


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (uint8: peak 255; float: peak 1)."""
    metrics, (a, b, data_range) = _skimage(), _pair(reference, image)
    if np.array_equal(a, b):  # skimage would divide by zero (and warn) on its way to the same answer
        return float("inf")
    return float(metrics.peak_signal_noise_ratio(a, b, data_range=data_range))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), Gaussian-weighted as in the paper; mean over channels."""
    metrics, (a, b, data_range) = _skimage(), _pair(reference, image)
    channel_axis = -1 if a.ndim == 3 else None
    return float(
        metrics.structural_similarity(
            a,
            b,
            data_range=data_range,
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
