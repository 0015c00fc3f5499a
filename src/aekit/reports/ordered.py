"""``compare_with_pca(..., ordered=True)``: every code size from one training and one PCA fit.

One ordered autoencoder (``AutoEncoder(ordered=True)``, nested dropout) with the largest code size gives
the codes of every smaller size as prefixes of its own; one PCA fit with as many components gives PCA's,
as principal components are nested. Both are scored on the test data at every prefix length 1..K, so the
report draws two whole curves where the per-size comparison draws a point per trained model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aekit.reports import pieces


class OrderedRun:
    """One ordered autoencoder and one PCA, fitted once, scored on ``target`` at any code size."""

    def __init__(
        self,
        x_train: np.ndarray,
        x_test: np.ndarray,
        spec: Any,
        code_size: int,
        kind: str,
        random_state: int,
        say: Callable[[str], Any],
        **params: Any,
    ):
        from aekit import AutoEncoder
        from aekit.reports.compare import fit_pca

        self.spec = spec
        self.target = spec.to_model(x_test)  # (M, *input_shape), the values the model sees
        self.flat_target = self.target.reshape(len(self.target), -1)  # (M, D)
        say(f"training one ordered {kind} autoencoder with code size {code_size} on {len(x_train)} samples")
        started = time.perf_counter()
        self.ae = AutoEncoder(
            kind=kind, code_size=code_size, ordered=True, random_state=random_state, **params
        )
        self.ae.fit(x_train)
        self.seconds = time.perf_counter() - started
        self.ae_codes = self.ae.transform(x_test)  # (M, K): every smaller code is a prefix of these

        say(f"fitting one PCA with {code_size} components")
        started = time.perf_counter()
        flat_train = spec.to_model(x_train).reshape(len(x_train), -1)  # (N, D)
        self.pca = fit_pca(flat_train, code_size, random_state)
        self.pca_codes = self.pca.transform(self.flat_target).astype(np.float32)  # (M, K)
        self.pca_seconds = time.perf_counter() - started
        # PCA's training error from its explained variance alone: total variance less the first j
        # components' share, per value. The test curve below is the same idea measured on the test data.
        total = float(flat_train.var(axis=0, ddof=1).sum())
        explained = np.cumsum(self.pca.explained_variance_)  # (K,)
        self.pca_train_curve = [float(v) for v in (total - explained) / flat_train.shape[1]]

        say(f"scoring both at every code size from 1 to {code_size} on {len(self.target)} test samples")
        self.sizes = list(range(1, code_size + 1))
        self.ae_curve = [pieces.mse(self.ae_recon(j), self.flat_target) for j in self.sizes]
        self.pca_curve = [pieces.mse(recon, self.flat_target) for recon in self._pca_prefixes()]

    def ae_recon(self, width: int) -> np.ndarray:
        """The autoencoder's reconstruction of the test data from its first ``width`` code units: (M, D),
        through the data's dtype as ``reconstruct`` returns it."""
        out = self.ae.inverse_transform(self.ae_codes[:, :width])  # the rest of the code is zero
        return self.spec.to_model(out).reshape(len(self.target), -1)

    def pca_recon(self, width: int) -> np.ndarray:
        """PCA's reconstruction from its first ``width`` components: (M, D), clipped and through the data's
        dtype as the autoencoder's output is."""
        flat = self.pca_codes[:, :width] @ self.pca.components_[:width] + self.pca.mean_  # (M, D)
        return self._as_output(flat)

    def _pca_prefixes(self):
        """``pca_recon(j)`` for j = 1..K, each from the last by one rank-one update."""
        flat = np.broadcast_to(self.pca.mean_, self.flat_target.shape).astype(np.float64)  # (M, D)
        for j in range(len(self.pca.components_)):
            flat = flat + np.outer(self.pca_codes[:, j], self.pca.components_[j])  # (M, D)
            yield self._as_output(flat)

    def _as_output(self, flat: np.ndarray) -> np.ndarray:
        if self.spec.value_range == (0.0, 1.0):
            flat = np.clip(flat, 0.0, 1.0)  # the autoencoder's sigmoid output is bounded the same way
        out = self.spec.from_model(flat.reshape(self.target.shape).astype(np.float32))
        return self.spec.to_model(out).reshape(len(self.target), -1)

    def curves(self) -> dict[str, Any]:
        """Both test-error curves, every code size from 1 to K, for comparison.json and the figure."""
        return {
            "code_sizes": self.sizes,
            "autoencoder": self.ae_curve,
            "pca": self.pca_curve,
            "pca_train_from_explained_variance": self.pca_train_curve,
            "ae_train_seconds": self.seconds,
            "pca_fit_seconds": self.pca_seconds,
        }


def curve_figure(
    path: str | Path,
    curves: dict[str, Any],
    kind: str,
    marked: Sequence[int],
    baseline: float | None = None,
    ylabel: str = "test MSE",
) -> Path:
    """Both whole curves against code size (log scales), the compared sizes marked on them."""
    sizes = curves["code_sizes"]
    fig = pieces.figure(5.5, 3.8)
    ax = fig.subplots()
    names = {"autoencoder": f"{kind} autoencoder, one ordered model", "pca": "PCA, one fit"}
    for (key, name), marker in zip(names.items(), "os", strict=True):
        errors = curves[key]
        line = ax.plot(sizes, errors, label=name)[0]
        ax.plot(marked, [errors[k - 1] for k in marked], marker, color=line.get_color(), linestyle="none")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle=":", label="mean image")
    ax.set_xscale("log", base=2)
    ticks = sorted({1, *marked, sizes[-1]})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("code size (prefix length)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} at every code size, from one training", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return pieces.save_figure(fig, path)
