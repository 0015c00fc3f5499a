"""Clusters of codes: k-means with a fixed seed, and the number of clusters chosen by silhouette.

``cluster_codes(codes, k)`` gives each row a cluster label; ``k="auto"`` first picks k from K_RANGE by the
mean silhouette (Rousseeuw, J. Comput. Appl. Math. 1987) on a capped subsample. The codes are clustered
as they are: k-means ignores one overall scale, and whitening each dimension would lift a code's
low-variance (mostly noise) units to the weight of its leading ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.errors import ConfigError, DataError

K_RANGE = (2, 15)  # k="auto" tries every k from 2 to 15
# Silhouettes cost O(n^2): k="auto" scores each k on this many rows (a seeded random subset), about a
# second per k for 64-unit codes on one core.
SILHOUETTE_ROWS = 3000
# k-means is fitted on at most this many rows (a seeded random subset) and then labels every row:
# plenty to place the centres, and a large file's codes cluster in seconds.
FIT_ROWS = 100_000
N_INIT = 4  # k-means++ restarts; the best by inertia is kept


def cluster_codes(
    codes: Any,
    k: int | str = "auto",
    random_state: int = 0,
    k_range: tuple[int, int] = K_RANGE,
) -> np.ndarray:
    """A cluster label (0..k-1, int64) for each row of ``codes`` (N, K): k-means with ``k`` clusters,
    or with the k that ``choose_k`` picks from ``k_range`` when ``k="auto"``. The same seed, the same labels.
    """
    z = _check_codes(codes)
    if isinstance(k, str) and k == "auto":
        k, _ = choose_k(z, k_range, random_state)
    k = _check_k(k, len(z))
    return _kmeans(_subset(z, FIT_ROWS, random_state), k, random_state).predict(z).astype(np.int64)


def choose_k(
    codes: Any, k_range: tuple[int, int] = K_RANGE, random_state: int = 0
) -> tuple[int, dict[int, float]]:
    """The k in ``k_range`` (inclusive) whose k-means clustering has the highest mean silhouette, and the
    silhouette of each k tried; on at most SILHOUETTE_ROWS rows of ``codes``."""
    from sklearn.metrics import silhouette_score

    z = _subset(_check_codes(codes), SILHOUETTE_ROWS, random_state)
    low, high = (_check_k(k) for k in k_range)
    if high < low:
        raise ConfigError(f"k_range must run from low to high, such as (2, 15); got {k_range!r}.")
    high = min(high, len(z) - 1)  # a silhouette needs at least one cluster of two rows
    if high < low:
        raise DataError(
            f"choosing the number of clusters needs at least {low + 1} rows of codes; got {len(z)}."
        )
    scores = {}
    with _threads():
        for k in range(low, high + 1):
            found = _kmeans(z, k, random_state).labels_
            scores[k] = float(silhouette_score(z, found)) if len(np.unique(found)) > 1 else -1.0
    return max(scores, key=scores.get), scores


def _kmeans(z: np.ndarray, k: int, random_state: int):
    from sklearn.cluster import KMeans

    with _threads():
        return KMeans(n_clusters=k, n_init=N_INIT, random_state=random_state).fit(z)


def _subset(z: np.ndarray, rows: int, random_state: int) -> np.ndarray:
    if len(z) <= rows:
        return z
    pick = np.random.default_rng(random_state).choice(len(z), rows, replace=False)
    return z[np.sort(pick)]


def _check_codes(codes: Any) -> np.ndarray:
    z = np.asarray(codes)
    if z.ndim != 2 or not len(z) or not np.issubdtype(z.dtype, np.number):
        raise DataError(f"codes must be a numeric array (N, code size) with rows; got shape {z.shape}.")
    z = z.astype(np.float64)
    if not np.isfinite(z).all():
        raise DataError("codes contain NaN or inf; cluster finite codes.")
    return z


def _check_k(k: Any, n: int | None = None) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(f"the number of clusters must be a whole number >= 2 or 'auto'; got {k!r}.")
    if n is not None and k > n:
        raise DataError(f"cannot make {k} clusters of {n} rows of codes; ask for at most {n}.")
    return int(k)


def _threads():
    """scikit-learn's BLAS and OpenMP pools at torch's thread count: one budget for the whole process
    (k-means' OpenMP threads otherwise spin on cores other jobs are using)."""
    import torch
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=torch.get_num_threads())
