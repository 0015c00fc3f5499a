"""Sliding windows over a time series, and per-window scores spread back to one score per time step.

A series is (T,) or (T, D). Windows are strided views (no copy, no per-window Python): window i covers
steps ``i * stride`` to ``i * stride + size - 1``, and becomes one table row of ``size * D`` values, so
every tabular model (and its scaling) applies to series unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.errors import ConfigError, DataError


def check_series(series: Any, what: str = "series") -> np.ndarray:
    """A finite numeric (T, D) float array from a (T,) or (T, D) input, or one clear DataError."""
    arr = np.asarray(series)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(
            f"{what} must be numeric; got dtype {arr.dtype}. Convert or drop non-numeric columns."
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(
            f"{what} must be 1-D (T,) or 2-D (T, D) with time along the first axis; got shape {arr.shape}."
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(f"{what} contains NaN or inf ({bad} values); fill or interpolate them first.")
    return arr.astype(np.float32, copy=False)


def sliding_windows(series: Any, size: int, stride: int = 1) -> np.ndarray:
    """(T,) or (T, D) -> (n_windows, size * D), n_windows = (T - size) // stride + 1."""
    if not isinstance(size, int | np.integer) or size < 1:
        raise ConfigError(f"window must be a whole number >= 1; got {size!r}.")
    if not isinstance(stride, int | np.integer) or stride < 1:
        raise ConfigError(f"stride must be a whole number >= 1; got {stride!r}.")
    x = check_series(series)
    t, d = x.shape
    if t < size:
        raise DataError(
            f"the series has {t} time steps, fewer than the window of {size}; "
            f"give a longer series or a window of at most {t}."
        )
    x = np.ascontiguousarray(x)
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=0)[::stride]  # (n, D, size)
    return view.transpose(0, 2, 1).reshape(len(view), size * d)  # (n, size * D), step-major rows


def spread_scores(window_scores: np.ndarray, n_steps: int, size: int, stride: int = 1) -> np.ndarray:
    """Per-window scores -> one score per time step: the mean over the windows that cover the step.

    Steps no window covers (the tail left over by a stride > 1) take the last window's score.
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = np.arange(len(scores)) * stride  # (n,)
    # A difference array: +s at each window's start, -s one past its end; a cumulative sum adds them up.
    total = np.zeros(n_steps + 1)
    count = np.zeros(n_steps + 1)
    np.add.at(total, starts, scores)
    np.add.at(total, starts + size, -scores)
    np.add.at(count, starts, 1.0)
    np.add.at(count, starts + size, -1.0)
    total, count = np.cumsum(total)[:n_steps], np.cumsum(count)[:n_steps]
    out = np.full(n_steps, scores[-1] if len(scores) else np.nan)
    covered = count > 0.5
    out[covered] = total[covered] / count[covered]
    return out
