"""``AnomalyDetector``: autoencoder anomaly scores behind PyOD's conventions.

A small ensemble of autoencoders (one per seed) is trained on the data as it is, outliers included. Each
member scores a sample by three parts: its reconstruction error (or, for a VAE, its negative ELBO); with
weight ``code_weight``, the Mahalanobis distance of its code from the training codes; and with weight
``neighbor_weight``, the mean distance of its code to the ``neighbors`` nearest training codes. Points
that the decoder can rebuild but that sit far from the bulk, or alone, in code space are caught too. Each
part is put on a common scale by the median and MAD of its training values, so members and parts average
without one dominating; errors and distances are taken on a log scale first (see ``_robust_centre``).

Training data holds the outliers, and an autoencoder learns to rebuild what it sees. So after the first
ensemble, ``refits`` more are trained, each without the ``trim`` share of rows whose codes the members so
far place farthest from the bulk; all members score every sample and their scores are averaged. With
the neighbour part this lifted the mean AUROC on the ODDS sets from 0.890 to over 0.91 (docs/anomaly.md).
A round's dense members train together in one batched pass (``members.py``), and each round's length is
set by the data size (``epochs="auto"``), so a fit costs about what one PyOD AutoEncoder does.

``fit(X, y)`` takes known anomalies (y = 1): they train no member, and a sample whose code lies near
theirs scores higher. ``explain(X)`` says which columns, pixels or time steps carry each score
(``explain.py``).

PyOD's names and meanings: ``decision_function`` (higher = more anomalous), ``predict`` (1 = anomaly),
``decision_scores_`` (the training scores), ``threshold_`` (their 1 - contamination quantile unless a
percentile is given) and ``labels_``. ``score_samples`` is scikit-learn's: higher = more normal.
Tables (N, D), images (N, H, W[, C]) and, with ``window``, time series (T,) or (T, D): sliding windows
are scored and each time step gets the mean score of the windows that cover it. A dense model sees each
window flattened into a table row; ``kind="conv1d"`` sees it as a series (window, D) and convolves along time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from aekit import threads
from aekit.data.scaling import check_array
from aekit.errors import ConfigError, DataError
from aekit.estimators.autoencoder import AutoEncoder
from aekit.estimators.explain import element_baseline
from aekit.estimators.members import train_round
from aekit.estimators.windows import check_series, sliding_windows, spread_scores

TABLE_SCALING = "standard"  # see docs/anomaly.md: robust scaling measured worse on the ODDS sets
IMAGE_HIDDEN = (
    16,
    32,
)  # conv channels: small and fast; one digit of MNIST needs no more (bench/mnist_oneclass.py)
# A wide image code: the Mahalanobis distance in it carries most of the image score (docs/anomaly.md).
IMAGE_CODE = 64
# Table codes of D // 4 (at least 2): D // 8 did worse on mnist (0.853 vs 0.866), satellite (docs/anomaly.md).
TABLE_CODE_DIVISOR = 4
# Widths are capped: past ~64 hidden units and 32 code units the ODDS sets gained nothing and fits slowed
# with the square of the width (docs/anomaly.md, fifth round).
TABLE_MAX_HIDDEN = 64
TABLE_MAX_CODE = 32
# epochs='auto': each round trains at most this many steps (at least 2 epochs, at most 20): large data
# needs fewer passes, and fit time grows no faster than the rows (docs/anomaly.md, fifth round).
ROUND_STEPS = 400
MAX_EPOCHS, MIN_EPOCHS = 20, 2
# refit_epochs='auto': refits train this many times longer than the first ensemble (docs/anomaly.md: 20 -> 40
# epochs for the refits lifted the ODDS mean from 0.9098 to 0.9104; 30 epochs for every round did not help)
REFIT_EPOCHS_FACTOR = 1
# Floor before the log of an error or distance (an exact 0 would give -inf).
LOG_FLOOR = 1e-12
# Each member keeps its training codes for the neighbour distance; above this many values (rows x code
# size) it keeps a random subset of rows instead, so model files stay a few MB on large data sets.
MAX_REFERENCE_VALUES = 2**20
# decision_function scores arrays in chunks of this many rows (a multiple of the prediction batch, so every
# row gets the bits it would get in one pass): memory bounded by the chunk.
SCORE_CHUNK_ROWS = 2**16
# Rows whose per-element errors set each element's typical error (element_baseline_, for explanations).
BASELINE_ROWS = 4096


def _reconstruction(model, out, batch):
    from aekit.losses import per_sample_error

    return per_sample_error(model.config.loss, out, batch)  # (B,)


def _negative_elbo(model, out, batch):
    """-ELBO at the posterior mean: the likelihood's NLL summed over elements plus KL(q || prior)."""
    from aekit.losses import RECONSTRUCTION

    if out.posterior is None:
        raise ConfigError("scoring='elbo' needs kind='vae'; use scoring='reconstruction' for other families.")
    nll = RECONSTRUCTION[model.config.loss](out.logits, out.recon, batch, getattr(model, "log_scale", None))
    return nll.flatten(1).sum(dim=1) + out.posterior.kl()  # (B,)


# score name -> (model, its output, the batch) -> (B,) raw score, higher = more anomalous
SCORES: dict[str, Callable] = {"reconstruction": _reconstruction, "elbo": _negative_elbo}


class AnomalyDetector(BaseEstimator):
    """Outlier scores from an ensemble of ``n_estimators`` autoencoders of family ``kind``.

    ``kind="auto"`` is a dense autoencoder for tables and series, a convolutional one for images.
    ``code_size``/``hidden`` "auto" size the network from the data: code max(2, D // 4) (at most 32) and
    one hidden layer of h = max(8, D // 2) units (at most 64) for tables, h for even-numbered members and
    2h for odd ones (members that differ in width disagree where seeds alone do not); code 64 and conv
    channels (16, 32) for images.
    ``kind="conv1d"`` with ``window`` convolves along each window of the series instead of flattening it:
    the code is the tables' (window * D // 4, at least 2) and the channels are the images' (16, 32).
    Training is short on purpose (no early stopping): an autoencoder trained to convergence on
    contaminated data learns to rebuild its outliers too. ``epochs="auto"`` trains each round of a table
    detector for as many epochs as fit in 400 steps (2 to 20: the full 20 on small data, fewer passes
    where there are many rows), and images and series models for 20. ``autoencoder_params`` passes any other
    ``AutoEncoder`` parameter (``beta``, ``noise``, ``loss``, ...). ``scoring`` is "reconstruction" or
    "elbo" (VAEs only); "auto" picks the ELBO for ``kind="vae"``. ``code_weight`` (1.0) weighs the code
    distance against the reconstruction error (0: no code distance), ``neighbor_weight`` (1.0) the mean
    distance to the ``neighbors`` (10) nearest training codes (0: none). ``refits`` (3) further ensembles
    are trained in turn, each without the ``trim`` (0.3) share of rows whose codes lie farthest from the
    bulk (Mahalanobis distance, averaged over the members so far), for ``refit_epochs`` ("auto": as many
    as the first round); set ``refits=0`` when the training data is known to be clean (one ensemble, a
    quarter of the time). ``label_weight`` (1.0) weighs, after ``fit(X, y)`` with known anomalies, the
    distance of a sample's code to the nearest known anomaly's (nearer = more anomalous; 0: none).
    After ``fit``, ``rounds_`` lists each round's members, rows, epochs and mean final training losses.
    ``n_jobs`` sets torch's CPU threads for training and scoring, as ``AutoEncoder``'s does (None: chosen
    from each member's work per batch).
    """

    def __init__(
        self,
        kind: str = "auto",
        contamination: float = 0.1,
        percentile: float | None = None,
        scoring: str = "auto",
        code_weight: float = 1.0,
        neighbor_weight: float = 1.0,
        neighbors: int = 10,
        label_weight: float = 1.0,
        n_estimators: int = 3,
        refits: int = 3,
        trim: float = 0.3,
        code_size: int | str = "auto",
        hidden: tuple[int, ...] | str | None = "auto",
        epochs: int | str = "auto",
        refit_epochs: int | str = "auto",
        batch_size: int = 128,
        lr: float = 6e-3,
        scaling: str = "auto",
        window: int | None = None,
        stride: int = 1,
        autoencoder_params: dict[str, Any] | None = None,
        device: str = "auto",
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: int = 0,
    ):
        self.kind = kind
        self.contamination = contamination
        self.percentile = percentile
        self.scoring = scoring
        self.code_weight = code_weight
        self.neighbor_weight = neighbor_weight
        self.neighbors = neighbors
        self.label_weight = label_weight
        self.n_estimators = n_estimators
        self.refits = refits
        self.trim = trim
        self.code_size = code_size
        self.hidden = hidden
        self.epochs = epochs
        self.refit_epochs = refit_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.scaling = scaling
        self.window = window
        self.stride = stride
        self.autoencoder_params = autoencoder_params
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> AnomalyDetector:
        """Train the ensemble on ``X`` (outliers may be in it) and set the threshold.

        ``y`` (optional): known anomalies, 1 for each sample (or time step of a series) known to be one and
        0 for the rest, which may hold unknown anomalies too. Known anomalies are kept out of every
        member's training, and a sample scores higher the nearer its code lies to theirs (weight
        ``label_weight``); see docs/anomaly.md for what a few labels gain."""
        with threads.requested(self.n_jobs):  # members have no n_jobs of their own: they follow this
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any = None) -> AnomalyDetector:
        self._check_params()
        rows, n_steps = self._rows(X, fitting=True)
        known = _known_anomalies(y, len(rows), n_steps, self.window, self.stride)  # (rows,) bool
        series = self._series_model()  # rows are series (N, T, D): coded and scaled as tables are
        is_image = rows.ndim >= 3 and not series
        conv = is_image or series  # members that get conv channels
        self._convolutional = conv
        kind = self.kind if self.kind != "auto" else ("conv" if is_image else "dense")
        self.scoring_ = (
            self.scoring if self.scoring != "auto" else ("elbo" if kind == "vae" else "reconstruction")
        )
        if self.scoring_ not in SCORES:
            raise ConfigError(
                f"scoring={self.scoring!r} is not one of 'auto', {', '.join(map(repr, SCORES))}."
            )
        n_features = int(np.prod(rows.shape[1:]))
        settings = {
            "kind": kind,
            "code_size": self.code_size
            if self.code_size != "auto"
            # narrower than the rows, so no member can learn to copy them (two-column tables: one unit)
            else (
                IMAGE_CODE
                if is_image
                else min(max(2, n_features // TABLE_CODE_DIVISOR), max(1, n_features - 1), TABLE_MAX_CODE)
            ),
            "scaling": self.scaling if self.scaling != "auto" else ("auto" if is_image else TABLE_SCALING),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "validation_fraction": 0.0,  # every sample counts; stopping is by the epoch budget instead
            "patience": None,
            "device": self.device,
            "verbose": self.verbose,
            # The scores and their defaults were chosen on squared error; AutoEncoder's loss="auto" would
            # switch image members to cross-entropy.
            "loss": "mse",
            **(self.autoencoder_params or {}),
        }
        extra = self.autoencoder_params or {}
        if {"encoder", "decoder"} & set(extra):
            raise ConfigError(
                "autoencoder_params cannot give encoder= or decoder=: a detector's members use aekit's "
                "built-in networks. Train an AutoEncoder with your own networks and score with its "
                "score_samples instead."
            )
        unknown = sorted(
            set(extra) - set(AutoEncoder().get_params()) | set(extra) & {"random_state", "run_dir", "n_jobs"}
        )
        if unknown:
            raise ConfigError(
                f"autoencoder_params has {', '.join(map(repr, unknown))}, which AutoEncoder does not take "
                "here; pass only AutoEncoder settings (beta, noise, loss, ...); the detector sets the "
                "seeds, and the threads by its own n_jobs."
            )
        seed = AutoEncoder(random_state=self.random_state)._seed()
        self.estimators_, self.stats_, self.references_ = [], [], []
        self._neighbor_index = []
        self.anomaly_codes_ = []  # per member, the codes of the known anomalies (none without y)
        total = np.zeros(len(rows))  # the sum of every member's score of every row
        remoteness = np.zeros(len(rows))  # the sum of every member's standardised Mahalanobis distance
        train = np.flatnonzero(~known)  # the rows the next ensemble trains on: no known anomaly
        self.rounds_ = []
        for round_ in range(self.refits + 1):
            self._say_round(round_, len(train), len(rows))
            ks = range(len(self.estimators_), len(self.estimators_) + self.n_estimators)
            hiddens = [
                extra["hidden"] if "hidden" in extra else self._hidden(conv, n_features, k) for k in ks
            ]
            seeds = [(seed + k) % (2**31 - 1) for k in ks]
            round_settings = {**settings, "epochs": self._round_epochs(round_, len(train))}
            # Members with the detector's own settings train together (members.py); others one by one.
            members = train_round(round_settings, hiddens, seeds, rows[train], together=not extra)
            for k, member_seed, member in zip(ks, seeds, members, strict=True):
                raw, codes = self._raw_scores(member, rows)
                reference = _reference(codes[train], member_seed)
                self.estimators_.append(member)
                self.references_.append(reference)
                self.stats_.append(
                    _fit_stats(raw[train], codes[train], reference, self.neighbors, self.scoring_ != "elbo")
                )
                if known.any():
                    self.anomaly_codes_.append(codes[known].astype(np.float32))
                    self.stats_[k]["anomalies"] = _robust_centre(
                        _nearest(codes[train], codes[known]), log=True
                    )
                total += self._member_score(k, raw, codes)
                remoteness += _standardised(_mahalanobis(codes, self.stats_[k]), self.stats_[k]["distance"])
            self.rounds_.append(_round_summary(self.estimators_[-self.n_estimators :], len(train)))
            if round_ < self.refits:
                # Leave out the rows whose codes lie farthest from the bulk: most outliers are among them.
                # Not by the full score: a left-out row's neighbour distance is measured to codes that no
                # longer include it, which would keep the same rows out round after round; and the
                # reconstruction error picks worse (docs/anomaly.md: cardio .92 / .95, satellite .74 / .78).
                cut = np.quantile(remoteness[~known], 1.0 - self.trim)
                train = np.flatnonzero((remoteness <= cut) & ~known)
        self.n_features_in_ = n_features
        self.sample_shape_ = tuple(rows.shape[1:])
        # The first member's epochs, for progress reports; rounds_ describes every round's training.
        self.history_ = self.estimators_[0].history_
        total /= len(self.estimators_)
        # Each element's typical error, for explain(): over (a sample of) the last round's training rows.
        typical = (
            train
            if len(train) <= BASELINE_ROWS
            else np.random.default_rng(seed).choice(train, BASELINE_ROWS, replace=False)
        )
        self.element_baseline_ = element_baseline(self, rows[np.sort(typical)])
        self.decision_scores_ = (
            total if n_steps is None else spread_scores(total, n_steps, self.window, self.stride)
        )
        self._set_threshold()
        return self

    def _say_round(self, round_: int, n_train: int, n_rows: int) -> None:
        """With ``verbose``, a line before each round's members train: which round, on which rows."""
        if not self.verbose:
            return
        import sys

        what = (
            f"on all {n_rows} rows"
            if n_train == n_rows
            else f"on {n_train} of {n_rows} rows (known anomalies left out)"
        )
        if round_ > 0:
            what = f"(refit) on {n_train} of {n_rows} rows, without the {self.trim:.0%} farthest out"
        print(
            f"round {round_ + 1}/{self.refits + 1} {what}: {self.n_estimators} member(s) of "
            f"{self._round_epochs(round_, n_train)} epoch(s)",
            file=sys.stderr,
        )

    def _round_epochs(self, round_: int, n_train: int) -> int:
        """Epochs for a member of ``round_`` (0 = the first ensemble, trained on every row) on ``n_train``
        rows: ``epochs``, or for "auto" as many as fit in ROUND_STEPS steps (between 2 and 20) for tables
        and 20 for images and series models, whose defaults were chosen on MNIST at 20 (docs/anomaly.md)."""
        epochs = self.epochs
        if epochs == "auto" and self._convolutional:
            epochs = MAX_EPOCHS
        elif epochs == "auto":
            steps_per_epoch = -(-n_train // int(self.batch_size))
            epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, ROUND_STEPS // steps_per_epoch))
        if round_ == 0:
            return epochs
        return REFIT_EPOCHS_FACTOR * epochs if self.refit_epochs == "auto" else self.refit_epochs

    def _check_params(self) -> None:
        if self.percentile is None and not 0.0 < self.contamination <= 0.5:
            raise ConfigError(
                f"contamination must lie in (0, 0.5]: the expected share of anomalies; "
                f"got {self.contamination!r}."
            )
        if self.percentile is not None and not 0.0 <= self.percentile <= 100.0:
            raise ConfigError(f"percentile must lie in [0, 100]; got {self.percentile!r}. Try 95.")
        if not isinstance(self.n_estimators, int | np.integer) or self.n_estimators < 1:
            raise ConfigError(f"n_estimators must be a whole number >= 1; got {self.n_estimators!r}.")
        for name in ("code_weight", "neighbor_weight", "label_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(
                    f"{name} must be >= 0 (0 leaves that part out); got {getattr(self, name)!r}."
                )
        if not isinstance(self.neighbors, int | np.integer) or self.neighbors < 1:
            raise ConfigError(f"neighbors must be a whole number >= 1; got {self.neighbors!r}. Try 10.")
        if self.epochs != "auto" and (not isinstance(self.epochs, int | np.integer) or self.epochs < 1):
            raise ConfigError(
                f"epochs must be 'auto' (set by the data size) or a whole number >= 1; got {self.epochs!r}."
            )
        if self.refit_epochs != "auto" and (
            not isinstance(self.refit_epochs, int | np.integer) or self.refit_epochs < 1
        ):
            raise ConfigError(
                f"refit_epochs must be 'auto' (as many as epochs) or a whole number >= 1; "
                f"got {self.refit_epochs!r}."
            )
        if not isinstance(self.refits, int | np.integer) or self.refits < 0:
            raise ConfigError(f"refits must be a whole number >= 0 (0 = one ensemble); got {self.refits!r}.")
        if not 0.0 < self.trim < 1.0:
            raise ConfigError(
                f"trim must lie in (0, 1): the share of rows each refit leaves out; got {self.trim!r}."
            )

    def _hidden(self, convolutional: bool, n_features: int, member: int):
        if self.hidden != "auto":
            return self.hidden
        # Alternating widths: on shuttle, h-only members gave 0.994 AUROC, 2h-only 0.996 but cardio 0.92
        # instead of 0.94; the mix kept both (0.995, 0.934; docs/anomaly.md).
        return (
            IMAGE_HIDDEN
            if convolutional
            else (min(max(8, n_features // 2), TABLE_MAX_HIDDEN) * (1 + member % 2),)
        )

    def set_threshold(
        self, contamination: float | None = None, percentile: float | None = None
    ) -> AnomalyDetector:
        """Move the threshold without retraining: to the (1 - contamination) quantile or a percentile of
        the training scores (``decision_scores_``). Updates the parameter, ``threshold_`` and ``labels_``."""
        check_is_fitted(self)
        if (contamination is None) == (percentile is None):
            raise ConfigError("set_threshold takes exactly one of contamination= or percentile=.")
        if contamination is not None:
            self.set_params(contamination=contamination, percentile=None)
        else:
            self.set_params(percentile=percentile)
        self._check_params()
        self._set_threshold()
        return self

    def _set_threshold(self) -> None:
        scores = self.decision_scores_
        q = self.percentile if self.percentile is not None else 100.0 * (1.0 - self.contamination)
        self.threshold_ = float(np.percentile(scores, q))
        self.labels_ = (scores > self.threshold_).astype(np.int64)

    # -- data layout ----------------------------------------------------------------------------------------
    def _series_model(self) -> bool:
        """Whether the members take series (kind="conv1d"): windows then stay (window, D), not flattened."""
        from aekit.models import FAMILIES
        from aekit.models.registry import input_layout

        backbone = (self.autoencoder_params or {}).get("backbone")
        return self.kind in FAMILIES and input_layout(self.kind, backbone) == "series"

    def _rows(self, X: Any, fitting: bool = False) -> tuple[np.ndarray, int | None]:
        """The model's rows: the samples themselves, or a series' sliding windows (and the series length):
        (n, window * D) table rows, or (n, window, D) series for a series model."""
        if self.window is None:
            return check_array(X), None
        series = check_series(X, "the series")
        if not fitting and series.shape[1] * self.window != self.n_features_in_:
            dims = self.n_features_in_ // self.window
            raise DataError(
                f"the series has {series.shape[1]} column(s), but the detector was trained on a series with "
                f"{dims}. Pass the same columns as in training."
            )
        windows = sliding_windows(series, self.window, self.stride)  # (n, window * D), step-major
        if self._series_model():
            windows = windows.reshape(len(windows), self.window, series.shape[1])  # (n, window, D)
        return windows, len(series)

    # -- scoring --------------------------------------------------------------------------------------------
    def _raw_scores(self, member: AutoEncoder, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One member's raw score (N,) and code (N, K) for each row, from one forward pass."""
        import torch

        score = SCORES[self.scoring_]
        model = member.model_

        def both(batch):
            out = model(batch)
            code = out.posterior.mean if out.posterior is not None else out.code  # (B, K)
            return torch.cat([score(model, out, batch)[:, None], code.flatten(1)], dim=1)  # (B, 1 + K)

        # anomalies are values far outside the training range: no DataRangeWarning for them
        result = member._apply(both, member._scaled(rows, outliers_expected=True)).astype(np.float64)
        return result[:, 0], result[:, 1:]

    def _member_score(self, k: int, raw: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Member k's score (N,) from its raw scores and codes: the weighted sum of its standardised parts."""
        stats = self.stats_[k]
        score = _standardised(raw, stats["score"])
        if self.code_weight > 0:
            score += self.code_weight * _standardised(_mahalanobis(codes, stats), stats["distance"])
        if self.neighbor_weight > 0 and "neighbors" in stats:  # files from before the neighbour part lack it
            distance = self._neighbor_distance(k, codes, stats["neighbors"]["k"])
            score += self.neighbor_weight * _standardised(distance, stats["neighbors"])
        if self.label_weight > 0 and "anomalies" in stats:  # fitted with known anomalies: near them = high
            score -= self.label_weight * _standardised(
                _nearest(codes, self.anomaly_codes_[k]), stats["anomalies"]
            )
        return score

    def _neighbor_distance(self, k: int, codes: np.ndarray, n_neighbors: int) -> np.ndarray:
        """Mean distance of each code to its ``n_neighbors`` nearest codes in member k's reference (N,)."""
        from sklearn.neighbors import NearestNeighbors

        index = getattr(self, "_neighbor_index", [])
        while len(index) <= k:
            index.append(None)
        if index[k] is None:  # built once per member, on first use (also after loading)
            index[k] = NearestNeighbors(n_neighbors=n_neighbors).fit(self.references_[k])
        self._neighbor_index = index
        distances = index[k].kneighbors(codes, n_neighbors=n_neighbors + 1)[0]  # (N, n + 1), ascending
        # A code found in the reference at distance 0 is that training row itself: it is not its own
        # neighbour, as in the reference's centre (_fit_stats). Training rows then score as new rows do,
        # and the threshold set on the training scores flags the intended share of new data.
        itself = distances[:, :1] == 0
        return np.where(itself, distances[:, 1:], distances[:, :-1]).mean(axis=1)

    def _combine(self, rows: np.ndarray, n_steps: int | None) -> np.ndarray:
        total = np.zeros(len(rows))
        for k, member in enumerate(self.estimators_):
            total += self._member_score(k, *self._raw_scores(member, rows))
        total /= len(self.estimators_)
        return total if n_steps is None else spread_scores(total, n_steps, self.window, self.stride)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each sample (or time step): higher = more anomalous.

        An array of samples (a memory-mapped ``np.load(path, mmap_mode="r")`` too) is scored in chunks of
        ``SCORE_CHUNK_ROWS``: memory stays bounded by the chunk, whatever the number of rows."""
        check_is_fitted(self)
        if self.window is None and isinstance(X, np.ndarray) and len(X) > SCORE_CHUNK_ROWS:
            chunks = range(0, len(X), SCORE_CHUNK_ROWS)
            return np.concatenate([self.decision_function(X[i : i + SCORE_CHUNK_ROWS]) for i in chunks])
        rows, n_steps = self._rows(X)
        if self.window is None:
            rows = self._check_shape(rows)
        with threads.requested(self.n_jobs):
            return self._combine(rows, n_steps)

    def _check_shape(self, rows: np.ndarray) -> np.ndarray:
        if tuple(rows.shape[1:]) == self.sample_shape_:
            return rows
        if rows.ndim == 2 and len(self.sample_shape_) == 1:
            raise DataError(
                f"X has {rows.shape[1]} features, but AnomalyDetector is expecting {self.n_features_in_} "
                "features as input. Pass data with the same columns as in training."
            )
        channels = lambda shape: shape[2] if len(shape) == 3 else 1  # noqa: E731
        got, want = tuple(rows.shape[1:]), self.sample_shape_
        hint = (
            f" ({channels(got)} channel(s) where the model takes {channels(want)}; convert the images, e.g. "
            "to grayscale or RGB)"
            if len(want) >= 2 and len(got) >= 2 and channels(got) != channels(want)
            else ""
        )
        raise DataError(
            f"samples of shape {got} do not match the detector's training samples of shape {want}{hint}."
        )

    def predict(self, X: Any) -> np.ndarray:
        """1 for an anomaly (score above ``threshold_``), 0 for a normal sample, as PyOD does."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's sign: higher = more normal (the negated decision_function)."""
        return -self.decision_function(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, 2): [P(normal), P(anomaly)], scores min-max scaled as PyOD's 'linear'."""
        scores = self.decision_function(X)
        lo, hi = float(self.decision_scores_.min()), float(self.decision_scores_.max())
        p = np.clip((scores - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    # -- files (detector_file.py) ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted detector (every member, its score statistics and the threshold) to one file."""
        from aekit.estimators import detector_file

        check_is_fitted(self)
        detector_file.write(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> AnomalyDetector:
        """Read a detector saved by ``save``; nothing in the file can run code, and its whole header is
        checked (each member's shapes against its weights) before a member is built."""
        from aekit.estimators import detector_file

        return detector_file.read(cls, path, device)

    # -- explanations (aekit.estimators.explain) ------------------------------------------------------------
    def explain(self, X: Any, top: int = 3, reference: Any = None):
        """Which columns (tables), pixels (images) or time steps (series) carry each sample's score: an
        ``Explanation`` with ``scores``, ``flagged``, ``contributions`` (shares of each sample's error) and
        ``top_features(k)``. ``reference`` (e.g. the training data) sets each element's typical error;
        without it the median over ``X`` does (see aekit/estimators/explain.py)."""
        from aekit.estimators.explain import explain

        return explain(self, X, top=top, reference=reference)

    def _element_errors(self, rows: np.ndarray) -> np.ndarray:
        """(N, *row shape): per element, the mean over members of the squared reconstruction error in each
        member's scaled space (rows as ``_rows`` makes them: samples, or windows)."""
        total = None
        for member in self.estimators_:
            model, shape = member.model_, member.spec_.sample_shape

            def squared(batch, model=model, shape=shape):
                err = (model(batch).recon - batch).pow(2)  # (B, *input_shape): channels first
                # back to the sample's layout: (B, C, H, W) -> (B, H, W, C), (B, C, T) -> (B, T, C)
                return (err.movedim(1, -1) if err.ndim > 2 else err).reshape(len(batch), *shape)

            errors = member._apply(squared, member._scaled(rows, outliers_expected=True)).astype(np.float64)
            total = errors if total is None else total + errors
        return total / len(self.estimators_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def _round_summary(members: list[AutoEncoder], n_train: int) -> dict[str, Any]:
    """One round of training: its members, the rows they trained on, their epochs, and the mean over the
    members of each part of their last epoch's training loss (on those rows: no validation split)."""
    last = [m.history_[-1] for m in members]
    parts = [k for k in last[0] if k not in ("epoch", "lr", "seconds")]
    return {
        "members": len(members),
        "rows": n_train,
        "epochs": max(len(m.history_) for m in members),
        "final": {k: float(np.mean([r[k] for r in last])) for k in parts},
    }


def _robust_centre(values: np.ndarray, log: bool = False) -> dict[str, Any]:
    """Median and MAD (as a standard deviation) of training values: what puts scores on one scale.

    With ``log`` (errors and distances, which are >= 0) the centre is of log values: their tails are long
    (an outlier's error can be 1000x the median), and on the linear scale one member's or one part's
    extreme values swamped the average; on the log scale the mean is a geometric mean, and on shuttle it
    lifted three-member ensembles from 0.976 to 0.994 AUROC (docs/anomaly.md). The negative ELBO can be
    < 0: it stays linear.
    """
    values = _transformed(values, log)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    spread = mad if mad > 1e-12 else float(np.std(values))
    return {"median": median, "spread": spread if spread > 1e-12 else 1.0, "log": log}


def _transformed(values: np.ndarray, log: bool) -> np.ndarray:
    return np.log(np.maximum(values, LOG_FLOOR)) if log else values


def _standardised(values: np.ndarray, centre: dict[str, Any]) -> np.ndarray:
    # Files written before the log scale have no "log" key: they keep the linear scale they were fitted on.
    return (_transformed(values, centre.get("log", False)) - centre["median"]) / centre["spread"]


def _reference(codes: np.ndarray, seed: int) -> np.ndarray:
    """The training codes a member keeps for the neighbour distance: all, or a random subset of rows."""
    cap = max(1, MAX_REFERENCE_VALUES // max(codes.shape[1], 1))
    if len(codes) <= cap:
        return codes.astype(np.float32)
    keep = np.sort(np.random.default_rng(seed).choice(len(codes), cap, replace=False))
    return codes[keep].astype(np.float32)


def _fit_stats(
    raw: np.ndarray, codes: np.ndarray, reference: np.ndarray, neighbors: int, log_score: bool = True
) -> dict[str, Any]:
    """Per member: the score's centre, the training codes' mean, precision and distance centre, and the
    centre of the reference codes' distances to their nearest other reference codes."""
    from sklearn.neighbors import NearestNeighbors

    mean = codes.mean(axis=0)
    centred = codes - mean  # (N, K)
    # A small ridge keeps the precision finite when codes are collinear (or there are fewer rows than K).
    cov = centred.T @ centred / max(len(codes) - 1, 1) + 1e-6 * np.eye(codes.shape[1])  # (K, K)
    stats = {
        "mean": mean.tolist(),
        "precision": np.linalg.pinv(cov).tolist(),
        "score": _robust_centre(raw, log=log_score),
    }
    stats["distance"] = _robust_centre(_mahalanobis(codes, stats), log=True)
    k = min(neighbors, len(reference) - 1)
    if k >= 1:
        # Each reference code's own distance 0 is left out: its k nearest *other* codes.
        distances = NearestNeighbors(n_neighbors=k + 1).fit(reference).kneighbors(reference)[0][:, 1:]
        stats["neighbors"] = {"k": k, **_robust_centre(distances.mean(axis=1), log=True)}
    return stats


def _mahalanobis(codes: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    centred = codes - np.asarray(stats["mean"])  # (N, K)
    return np.sqrt(np.einsum("ij,jk,ik->i", centred, np.asarray(stats["precision"]), centred))  # (N,)


def _nearest(codes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Distance of each code (N, K) to its nearest anchor code (M, K), leaving out an anchor at distance 0
    (the row itself, when a known anomaly is scored): (N,)."""
    from sklearn.neighbors import NearestNeighbors

    if len(anchors) == 1:
        return np.linalg.norm(codes - anchors[0], axis=1)
    distances = NearestNeighbors(n_neighbors=2).fit(anchors).kneighbors(codes)[0]  # (N, 2), ascending
    return np.where(distances[:, 0] == 0, distances[:, 1], distances[:, 0])


def _known_anomalies(y: Any, n_rows: int, n_steps: int | None, window: int | None, stride: int) -> np.ndarray:
    """The rows (samples, or windows of a series) known to be anomalies, from fit's ``y``: (rows,) bool."""
    if y is None:
        return np.zeros(n_rows, dtype=bool)
    labels = np.asarray(y)
    expected = n_rows if n_steps is None else n_steps
    what = "sample" if n_steps is None else "time step of the series"
    if labels.shape != (expected,):
        raise DataError(
            f"y has shape {labels.shape}; it must hold one label per {what} ({expected}): 1 for a known "
            "anomaly, 0 for the rest."
        )
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.isin(labels, (0, 1)).all():
        bad = labels[~np.isin(labels, (0, 1))][0]
        raise DataError(
            f"y holds {bad!r}; its labels must be 1 (a known anomaly) or 0 (not known to be one)."
        )
    known = labels.astype(bool)
    if n_steps is not None:  # a window is a known anomaly when it covers a labelled time step
        steps = np.concatenate([[0], np.cumsum(known)])
        starts = np.arange(n_rows) * stride
        known = steps[starts + window] - steps[starts] > 0
    if known.all():
        raise DataError("y marks every sample as an anomaly; give 1 only for the known anomalies.")
    return known
