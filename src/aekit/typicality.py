"""Typicality: how much like its training data an input is, for every model that stores it.

A model only works on data like what it learned. At the end of training each model measures one or more
statistics on (up to ``MAX_ROWS`` of) its training samples (an autoencoder: the reconstruction error and
the Mahalanobis distance of the code from the training codes) and keeps a few hundred quantiles of each
(``Reference``) in its file's header. A new input's percentile is the share of training samples whose
statistic is at most its own; an input whose percentile exceeds ``LIMIT`` in any statistic is less typical
than 99.9% of the training data, and ``check`` warns (``TypicalityWarning``) or, in strict mode, refuses
it (``AtypicalInputError``). Only numpy here: the estimators compute the statistics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aekit.errors import AtypicalInputError, ModelFileError, NoTypicalityError, TypicalityWarning

LIMIT = 99.9  # percentile above which an input is called atypical ("less typical than 99.9% of ...")
# Training samples summarised at the end of fit: their statistics cost one forward pass, which for 20k
# rows is a small share of a training run (docs/typicality.md), and 20k rows put about 20 samples above
# the 99.9% quantile, enough for a steady estimate of it.
MAX_ROWS = 20_000
# Quantile levels stored: every 0.5% to 99%, then every 0.05% to the maximum, so the tail where the
# warning is decided is resolved finely (about 220 numbers per statistic).
LEVELS = np.unique(np.concatenate([np.linspace(0.0, 0.99, 199), np.linspace(0.99, 1.0, 21)]))
MAX_LEVELS = 4096  # a header claiming more is damaged or hostile
MAX_WHITEN = 256  # code dimensions the Mahalanobis distance whitens (more: the leading principal ones)
HEADER_KEY = "typicality"
SHOWN_ROWS = 8  # atypical rows a message lists
NOT_STORED = (
    "no typicality stored: the file predates it; retrain the model, or refit its typicality on its "
    "training data (fit_typicality(X_train), then save) to add it"
)


@dataclass
class Typicality:
    """Per-input percentiles (0-100) of each statistic among the training samples' values, e.g.
    ``{"reconstruction": (N,), "code": (N,)}``. ``percentile`` is the highest of them per input; an input
    is ``atypical`` when that exceeds ``limit`` (99.9: less typical than 99.9% of the training data)."""

    percentiles: dict[str, np.ndarray]
    limit: float = LIMIT

    @property
    def percentile(self) -> np.ndarray:
        return np.max(np.stack(list(self.percentiles.values())), axis=0)  # (N,)

    @property
    def atypical(self) -> np.ndarray:
        return self.percentile > self.limit  # (N,) bool

    @property
    def rows(self) -> np.ndarray:
        """Indices of the atypical inputs."""
        return np.flatnonzero(self.atypical)

    def __len__(self) -> int:
        return len(next(iter(self.percentiles.values())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: each statistic's percentiles, their maximum, and which inputs are atypical."""
        return {
            "percentiles": {name: p.round(3).tolist() for name, p in self.percentiles.items()},
            "percentile": self.percentile.round(3).tolist(),
            "atypical": self.atypical.tolist(),
            "limit": self.limit,
        }


def summary(result: Typicality, what: str = "inputs") -> str:
    """One line for the user: how many inputs are atypical, which, and in which statistics."""
    rows = result.rows
    by = {name: int((p > result.limit).sum()) for name, p in result.percentiles.items()}
    top = float(result.percentile.max()) if len(result) else 0.0
    return describe(len(result), rows.tolist(), by, top, what, result.limit)


def describe(
    n: int,
    rows: list[int],
    by: dict[str, int],
    top: float,
    what: str = "inputs",
    limit: float = LIMIT,
    labels: list[str] | None = None,
) -> str:
    """``summary``'s line from its parts: ``n`` inputs, the ``rows`` that are atypical, how many are so
    in each statistic (``by``), and the highest percentile (``top``). ``labels`` (e.g. the atypical
    images' file names, one per row) are listed instead of the row numbers."""
    if not rows:
        return (
            f"typicality: all {n} {what} are as typical as {limit:g}% of the training data or more "
            f"(highest percentile {top:.1f})"
        )
    shown = rows if labels is None else labels
    listed = ", ".join(map(str, shown[:SHOWN_ROWS])) + (", ..." if len(rows) > SHOWN_ROWS else "")
    where = ", ".join(f"{count} by {name}" for name, count in by.items() if count)
    one = len(rows) == 1
    return (
        f"typicality: {len(rows)} of {n} {what} {'is' if one else 'are'} less typical than {limit:g}% of "
        f"the training data ({'' if labels is not None else 'row ' if one else 'rows '}{listed}; {where}): "
        "the model's outputs for "
        f"{'it' if one else 'them'} are unreliable"
    )


def check(result: Typicality, strict: bool = False, what: str = "inputs", stacklevel: int = 2) -> None:
    """Warn (TypicalityWarning) when some inputs are atypical; with ``strict``, refuse them
    (AtypicalInputError) instead."""
    if not result.atypical.any():
        return
    text = summary(result, what)
    if strict:
        raise AtypicalInputError(f"{text}; strict mode refuses them (turn it off to get outputs anyway).")
    warnings.warn(text, TypicalityWarning, stacklevel=stacklevel + 1)


@dataclass
class Reference:
    """Quantiles of each statistic over the training samples: ``quantiles[name][i]`` is the value below
    which a share ``levels[i]`` of the ``rows`` summarised samples lie."""

    quantiles: dict[str, np.ndarray]
    levels: np.ndarray = field(default_factory=lambda: LEVELS.copy())
    rows: int = 0

    @classmethod
    def of(cls, statistics: dict[str, np.ndarray]) -> Reference:
        """The reference of the training samples' statistics (each (N,), finite)."""
        quantiles = {}
        for name, values in statistics.items():
            values = np.asarray(values, dtype=np.float64)
            values = values[np.isfinite(values)]
            if not len(values):
                raise ValueError(f"no finite {name} values to summarise")
            quantiles[name] = np.quantile(values, LEVELS)
        return cls(quantiles, LEVELS.copy(), len(next(iter(statistics.values()))))

    def percentiles(self, statistics: dict[str, np.ndarray]) -> Typicality:
        """Each input's percentile (0-100) in each statistic: the share of training samples at most it."""
        return Typicality(
            {
                name: _percentile(values, self.quantiles[name], self.levels)
                for name, values in statistics.items()
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": int(self.rows),
            "levels": [float(v) for v in self.levels],
            "quantiles": {name: [float(v) for v in q] for name, q in self.quantiles.items()},
        }

    @classmethod
    def from_dict(cls, entry: Any, names: tuple[str, ...]) -> Reference:
        """Rebuild from ``to_dict``'s output, checking every size and value before use (ValueError/
        TypeError/KeyError for a damaged entry); ``names``: the statistics the model computes."""
        if not isinstance(entry, dict):
            raise TypeError(f"it is a JSON {type(entry).__name__}, not an object")
        rows = entry["rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"its row count {rows!r} is not a whole number >= 1")
        levels = _vector(entry["levels"], "levels")
        if not 2 <= len(levels) <= MAX_LEVELS or levels[0] != 0.0 or levels[-1] != 1.0:
            raise ValueError(f"its {len(levels)} levels do not run from 0 to 1 (2 to {MAX_LEVELS} of them)")
        if np.any(np.diff(levels) <= 0):
            raise ValueError("its levels do not increase")
        stored = entry["quantiles"]
        if not isinstance(stored, dict) or set(stored) != set(names):
            found = sorted(stored) if isinstance(stored, dict) else stored
            raise ValueError(f"it holds quantiles of {found!r}, not of {sorted(names)!r}")
        quantiles = {}
        for name in names:
            q = _vector(stored[name], name)
            if q.shape != levels.shape or np.any(np.diff(q) < 0):
                raise ValueError(f"its {name} quantiles are not {len(levels)} non-decreasing numbers")
            quantiles[name] = q
        return cls(quantiles, levels, rows)


@dataclass
class CodeGaussian:
    """The training codes' mean and a whitening matrix W (K, R): the Mahalanobis distance of a code z is
    ||(z - mean) W||. R = K up to MAX_WHITEN dimensions, else the leading principal directions."""

    mean: np.ndarray  # (K,)
    whiten: np.ndarray  # (K, R)

    @classmethod
    def fit(cls, codes: np.ndarray) -> CodeGaussian:
        codes = np.asarray(codes, dtype=np.float64)  # (N, K)
        mean = codes.mean(axis=0)
        centred = codes - mean
        cov = centred.T @ centred / max(1, len(codes) - 1)  # (K, K)
        values, vectors = np.linalg.eigh(cov)  # ascending
        keep = min(len(values), MAX_WHITEN)
        values, vectors = values[::-1][:keep], vectors[:, ::-1][:, :keep]
        # A floor on the variances: a code unit that (nearly) never varies in training would otherwise
        # make any rounding-size change in it an enormous distance.
        floor = 1e-3 * max(float(values.mean()), 1e-12)
        return cls(mean, vectors / np.sqrt(np.maximum(values, floor)))

    def distance(self, codes: np.ndarray) -> np.ndarray:
        return np.linalg.norm((np.asarray(codes, np.float64) - self.mean) @ self.whiten, axis=1)  # (N,)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "whiten": self.whiten.tolist()}

    @classmethod
    def from_dict(cls, entry: Any, code_size: int) -> CodeGaussian:
        if not isinstance(entry, dict):
            raise TypeError(f"its code Gaussian is a JSON {type(entry).__name__}, not an object")
        mean = _vector(entry["mean"], "code mean")
        if mean.shape != (code_size,):
            raise ValueError(f"its code mean has {len(mean)} numbers, not {code_size}")
        rows = entry["whiten"]
        if not isinstance(rows, list) or len(rows) != code_size:
            raise ValueError(f"its whitening matrix does not have {code_size} rows")
        whiten = np.asarray([_vector(r, "whitening row") for r in rows], dtype=np.float64)
        if whiten.ndim != 2 or not 1 <= whiten.shape[1] <= min(code_size, MAX_WHITEN):
            raise ValueError(f"its whitening matrix has shape {whiten.shape}")
        return cls(mean, whiten)


def from_header(doc: dict[str, Any], path: Any, read) -> Any:
    """``read(entry)`` of the header's typicality entry: None when the file has none (it predates
    typicality), one ModelFileError naming the file when the entry is damaged."""
    entry = doc.get(HEADER_KEY)
    if entry is None:
        return None
    try:
        return read(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path} has a damaged typicality entry ({type(exc).__name__}: {exc}); the model itself is "
            "usable: refit its typicality (fit_typicality) and save it again to repair it."
        ) from None


def not_stored(where: Any) -> NoTypicalityError:
    return NoTypicalityError(f"{where}: {NOT_STORED}.")


def _percentile(values: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """100 x the interpolated share of training samples below each value. Equal quantiles (many equal
    training values, e.g. an error of 0) count at their lowest level: a value equal to them is as typical
    as they are, and only one beyond them all is above the limit."""
    first = np.r_[True, quantiles[1:] != quantiles[:-1]]  # the first of each run of equal quantiles
    values = np.asarray(values, dtype=np.float64)
    share = np.interp(values, quantiles[first], levels[first], left=0.0, right=1.0)
    share[np.isnan(values)] = 1.0  # no value at all is as unlike the training data as it gets
    return 100.0 * share


def _vector(values: Any, name: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) > MAX_LEVELS * MAX_WHITEN:
        raise TypeError(f"its {name} is not a list of numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise TypeError(f"its {name} holds values that are not numbers")
    out = np.asarray(values, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"its {name} holds values that are not finite")
    return out
