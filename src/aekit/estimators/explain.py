"""Which columns, pixels or time steps carry an ``AnomalyDetector``'s score of each sample.

An explanation starts from the per-element reconstruction error (``AnomalyDetector._element_errors``: the
mean over members of the squared error, each in its member's scaled space). Raw errors would point at
whatever the members rebuild worst on every row, such as a column of pure noise, so each element's error
is divided by its typical error (its ``baseline``): an element is to blame when it is rebuilt far worse
than usual, not when it is always hard. The baseline is, first found first:

- ``"training"``: the median per-element error over the training rows, when the detector stores one
  (``element_baseline_``, from ``element_baseline`` at the end of ``fit``);
- ``"reference"``: the median over the rows passed as ``reference=`` (e.g. the training data);
- ``"batch"``: the median over the rows being explained, when there are ``MIN_BATCH_ROWS`` or more: a
  median is not moved by the anomalies as long as they are fewer than half;
- ``"none"``: too few rows to take a median from: raw errors (the scaled space still puts columns on one
  scale).

Each sample's ``contributions`` are its normalised errors as shares (they sum to 1). For a series
detector the windows' shares are spread back onto the time steps as ``decision_function`` spreads
scores: a step's error in column d is the mean over the windows that cover it. The code-distance parts
of the score belong to no element and are not attributed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aekit.errors import ConfigError, DataError

# The batch's own median is the baseline only with at least this many rows: fewer give a noisy median.
MIN_BATCH_ROWS = 20
# Added to every element's baseline, as a share of the mean baseline over the elements. Pixels that are
# black in every image are rebuilt almost exactly (error ~1e-6); any speck there would otherwise be
# blown up a million-fold and outrank the real anomaly.
BASELINE_FLOOR = 0.1
DEFAULT_TOP = 3


@dataclass
class Explanation:
    """Per sample (per time step for a series): its score, whether it is flagged, and what carries it.

    ``errors`` (N, *sample_shape) are the normalised per-element errors, ``contributions`` the same as
    shares of each sample's total (rows sum to 1). For a series, N is the number of time steps and the
    sample shape is (D,): one share per column at each step.
    """

    kind: Literal["table", "image", "series"]
    scores: np.ndarray  # (N,) decision_function: higher = more anomalous
    flagged: np.ndarray  # (N,) bool: score above the detector's threshold
    errors: np.ndarray  # (N, *sample_shape) float64
    contributions: np.ndarray  # (N, *sample_shape) float64, shares of each sample's error
    feature_names: list[str] | None  # the columns' names (tables and series), when the data had them
    baseline: Literal["training", "reference", "batch", "none"]
    top: int = DEFAULT_TOP

    def top_indices(self, k: int | None = None) -> np.ndarray:
        """(N, k) flat element indices (a column; a pixel as h * W + w, times C with channels), largest
        share first."""
        k = self._k(k)
        flat = self.contributions.reshape(len(self.contributions), -1)
        order = np.argsort(-flat, axis=1, kind="stable")
        return order[:, : min(k, flat.shape[1])]

    def top_features(self, k: int | None = None) -> list[list[tuple[str | int, float]]]:
        """Per sample (per step for a series), its ``k`` columns with the largest shares, as (name, share);
        the name is the column's index when the data had no names."""
        if self.kind == "image":
            raise ConfigError(
                "an image has pixels, not columns: use heatmaps() (or top_indices() for flat pixel indices)."
            )
        top = self.top_indices(k)
        shares = np.take_along_axis(self.contributions, top, axis=1)
        names = self.feature_names
        return [
            [(names[j] if names else int(j), float(s)) for j, s in zip(row, share, strict=True)]
            for row, share in zip(top, shares, strict=True)
        ]

    def top_steps(self, k: int | None = None) -> np.ndarray:
        """Series only: the ``k`` time steps whose (normalised) error is largest, largest first."""
        if self.kind != "series":
            raise ConfigError(f"top_steps() is for series detectors (window=...); this is a {self.kind}.")
        return np.argsort(-self.step_errors(), kind="stable")[: self._k(k)]

    def step_errors(self) -> np.ndarray:
        """(N,) each sample's (or time step's) total normalised error: how much it stands out."""
        return self.errors.reshape(len(self.errors), -1).sum(axis=1)

    def heatmaps(self) -> np.ndarray:
        """Images only: (N, H, W) shares per pixel, channels summed."""
        if self.kind != "image":
            raise ConfigError(f"heatmaps() is for image detectors; this one explains a {self.kind}.")
        c = self.contributions
        return c.sum(axis=-1) if c.ndim == 4 else c

    def _k(self, k: int | None) -> int:
        k = self.top if k is None else k
        if not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k must be a whole number >= 1; got {k!r}.")
        return int(k)


def explain(det: Any, X: Any, top: int = DEFAULT_TOP, reference: Any = None) -> Explanation:
    """``det.explain``: see the module docstring for how errors are normalised."""
    from sklearn.utils.validation import check_is_fitted

    from aekit import threads

    check_is_fitted(det)
    if not isinstance(top, int | np.integer) or top < 1:
        raise ConfigError(f"top must be a whole number >= 1 (columns shown per sample); got {top!r}.")
    names = _column_names(X)
    rows, n_steps = _model_rows(det, X)
    scores = det.decision_function(X)
    with threads.requested(det.n_jobs):
        errors = det._element_errors(rows)  # (n, *row shape)
        baseline, source = _baseline(det, errors, reference)
    if baseline is not None:
        errors = errors / (baseline + BASELINE_FLOOR * float(baseline.mean()) + 1e-12)
    if n_steps is not None:
        errors = spread_errors(errors, n_steps, det.window, det.stride)  # (T, D)
    kind = "series" if n_steps is not None else ("image" if errors.ndim >= 3 else "table")
    if names is not None and len(names) != errors.shape[-1]:
        names = None
    return Explanation(
        kind=kind,
        scores=np.asarray(scores, np.float64),
        flagged=np.asarray(scores) > det.threshold_,
        errors=errors,
        contributions=_shares(errors),
        feature_names=names,
        baseline=source,
        top=int(top),
    )


def element_baseline(det: Any, rows: np.ndarray) -> np.ndarray:
    """The median per-element error over ``rows`` (the model's rows, as ``_rows`` makes them): the
    statistic ``fit`` can store as ``element_baseline_`` so explanations of a few rows need no reference."""
    return np.median(det._element_errors(rows), axis=0)


def _model_rows(det: Any, X: Any) -> tuple[np.ndarray, int | None]:
    rows, n_steps = det._rows(X)
    if det.window is None:
        rows = det._check_shape(rows)
    return rows, n_steps


def _baseline(det: Any, errors: np.ndarray, reference: Any) -> tuple[np.ndarray | None, str]:
    stored = getattr(det, "element_baseline_", None)
    if stored is not None:
        stored = np.asarray(stored, np.float64)
        if stored.shape == errors.shape[1:]:
            return stored, "training"
    if reference is not None:
        rows, _ = _model_rows(det, reference)
        return element_baseline(det, rows), "reference"
    if len(errors) >= MIN_BATCH_ROWS:
        return np.median(errors, axis=0), "batch"
    return None, "none"


def _shares(errors: np.ndarray) -> np.ndarray:
    flat = errors.reshape(len(errors), -1)
    total = flat.sum(axis=1, keepdims=True)
    # A sample rebuilt exactly has no error to share: its shares stay 0 rather than NaN.
    shares = np.divide(flat, total, out=np.zeros_like(flat), where=total > 0)
    return shares.reshape(errors.shape)


def spread_errors(window_errors: np.ndarray, n_steps: int, size: int, stride: int = 1) -> np.ndarray:
    """Per-window element errors (n, size * D) or (n, size, D) -> (T, D): at each step and column, the
    mean over the windows that cover the step (``windows.spread_scores``, per element). Steps no window
    covers (the tail a stride > 1 leaves) get 0."""
    n = len(window_errors)
    e = np.asarray(window_errors, np.float64).reshape(n, size, -1)  # (n, size, D): rows are step-major
    total = np.zeros((n_steps, e.shape[2]))
    count = np.zeros(n_steps)
    starts = np.arange(n) * stride
    for p in range(size):  # within one position the windows' steps are distinct: no np.add.at needed
        total[starts + p] += e[:, p]
        count[starts + p] += 1.0
    return np.divide(total, count[:, None], out=np.zeros_like(total), where=count[:, None] > 0)


def _column_names(X: Any) -> list[str] | None:
    columns = getattr(X, "columns", None)
    return None if columns is None else [str(c) for c in columns]


def reconstruction(det: Any, X: Any) -> np.ndarray:
    """The members' mean reconstruction of each sample, in the data's layout and dtype (for pictures of
    what the detector expected to see)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(det)
    if det.window is not None:
        raise DataError("a series detector rebuilds windows, not samples; explain() gives its time steps.")
    rows = det._check_shape(det._rows(X)[0])
    total = 0.0
    for member in det.estimators_:
        model = member.model_
        # anomalies lie outside the training range by nature: no DataRangeWarning for them
        out = member._apply(
            lambda b, model=model: model(b).recon, member._scaled(rows, outliers_expected=True)
        )
        total = total + member.spec_.from_model(out).astype(np.float64)
    mean = total / len(det.estimators_)
    if rows.dtype == np.uint8:
        return np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    return mean.astype(np.float32)
