"""What each layer of an autoencoder knows about labels it never saw: a linear probe and k-means per layer,
beside PCA of the same width.

For every layer (``AutoEncoder.layer_outputs``) of held-out labelled samples: the accuracy of a logistic
regression fitted on half of them and scored on the other half, a linear probe (Alain & Bengio,
"Understanding intermediate layers using linear classifier probes", 2016); and the NMI
and ARI of k-means with one cluster per class against the labels (``compare.cluster_quality``). PCA fitted
on training samples, with as many components as the layer is wide (at most as many as the data has
features), gets the same scores on the same samples, and so does the input itself, as the model sees it.
Rows are capped (``max_rows``) and every draw is seeded, so a probe takes seconds and repeats exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aekit.errors import DataError
from aekit.reports import pieces
from aekit.reports.compare import _torch_threads, cluster_quality, fit_pca

MAX_ROWS = 5000  # held-out samples probed, and training samples PCA is fitted on, at most
FIT_SHARE = 0.5  # of the held-out samples, the share the probe is fitted on; it is scored on the rest
PROBE_MAX_ITER = 1000  # L-BFGS steps; MNIST's layers converge in 50 to 150
FILES = {"json": "probe.json", "png": "probe.png"}


@dataclass
class ProbeRow:
    """One set of features: the input, a layer, or PCA of one width."""

    name: str  # "input", a layer name, or "pca-<width>"
    source: str  # "input", "layer" or "pca"
    shape: tuple[int, ...]  # one sample's features before flattening
    width: int  # features after flattening
    probe_accuracy: float
    kmeans_nmi: float
    kmeans_ari: float
    pca: str | None = None  # a layer's row of PCA with its width


@dataclass
class Probe:
    rows: list[ProbeRow]
    n_classes: int
    n_pca_train: int  # training samples PCA was fitted on
    n_probe_fit: int  # held-out samples the probes were fitted on ...
    n_probe_score: int  # ... and scored on; k-means ran on both together
    settings: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> ProbeRow:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_classes": self.n_classes,
            "n_pca_train": self.n_pca_train,
            "n_probe_fit": self.n_probe_fit,
            "n_probe_score": self.n_probe_score,
            "settings": self.settings,
            "rows": [vars(r) for r in self.rows],
        }


def probe_layers(
    est: Any,
    x_train: Any,
    x_test: Any,
    y_test: Any,
    layers: Sequence[str] | None = None,
    max_rows: int = MAX_ROWS,
    random_state: int = 0,
    progress: Callable[[str], Any] | None = None,
) -> Probe:
    """Probe the layers ``layers`` (default: all) of the fitted ``est`` on held-out ``x_test`` with labels
    ``y_test``, beside PCA fitted on ``x_train``; at most ``max_rows`` samples of each, drawn with
    ``random_state``."""
    from aekit.data.scaling import check_like
    from aekit.estimators.layer_outputs import check_layer, layer_names

    say = progress or (lambda _: None)
    names = layer_names(est) if layers is None else list(layers)
    for name in names:
        check_layer(est, name)
    labels = np.asarray(y_test).ravel()
    if len(labels) != len(x_test):
        raise DataError(f"got {len(labels)} labels for {len(x_test)} samples; give one label per sample")
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise DataError(f"the labels hold {n_classes} class; probing needs at least two")
    rng = np.random.default_rng(random_state)
    held = np.sort(rng.permutation(len(x_test))[:max_rows])
    train = np.sort(rng.permutation(len(x_train))[:max_rows])
    x_held = check_like(np.asarray(x_test)[held], est.spec_, "the model", what="the probed samples")
    x_fit = check_like(np.asarray(x_train)[train], est.spec_, "the model", what="PCA's training samples")
    labels = labels[held]
    order = rng.permutation(len(held))
    n_fit = max(1, int(round(len(held) * FIT_SHARE)))
    if len(held) - n_fit < 1:
        raise DataError(f"{len(held)} labelled sample(s) are too few to fit a probe and score it")
    fit, score = order[:n_fit], order[n_fit:]

    def scored(name: str, source: str, features: np.ndarray, pca: str | None = None) -> ProbeRow:
        flat = features.reshape(len(features), -1)
        say(f"{name}: linear probe and k-means on {flat.shape[1]} features")
        nmi, ari = cluster_quality(flat, labels, n_classes, random_state)
        accuracy = linear_probe(flat, labels, fit, score, random_state)
        return ProbeRow(name, source, tuple(features.shape[1:]), flat.shape[1], accuracy, nmi, ari, pca)

    seen = est.spec_.to_model(x_held)  # (N, *input_shape): what the model sees
    rows = [scored("input", "input", seen)]
    say(f"layer outputs of {len(held)} samples")
    outputs = est.layer_outputs(x_held)
    flat_train = est.spec_.to_model(x_fit).reshape(len(x_fit), -1)
    limit = min(flat_train.shape)  # PCA has at most this many components
    pcas: dict[int, ProbeRow] = {}
    for name in names:
        width = math.prod(outputs[name].shape[1:])
        k = min(width, limit)
        if k not in pcas:
            say(f"PCA with {k} components, fitted on {len(x_fit)} training samples")
            pca = fit_pca(flat_train, k, random_state)
            codes = pca.transform(seen.reshape(len(seen), -1)).astype(np.float32)
            pcas[k] = scored(f"pca-{k}", "pca", codes)
        rows.append(scored(name, "layer", outputs[name], pca=f"pca-{k}"))
    rows += [pcas[k] for k in sorted(pcas)]
    return Probe(
        rows=rows,
        n_classes=n_classes,
        n_pca_train=len(x_fit),
        n_probe_fit=len(fit),
        n_probe_score=len(score),
        settings={"max_rows": max_rows, "random_state": random_state, "fit_share": FIT_SHARE},
    )


def linear_probe(
    features: np.ndarray, labels: np.ndarray, fit: np.ndarray, score: np.ndarray, random_state: int = 0
) -> float:
    """Accuracy on the rows ``score`` of a logistic regression (L2, scikit-learn's default strength) fitted
    on the rows ``fit``. The features are centred and divided by one number, their RMS on the ``fit`` rows,
    not standardised one by one: that would lift low-variance directions (mostly noise, such as PCA's last
    components) to the weight of the leading ones. So every layer is read at the same overall scale, and a
    rotation of the input (PCA at full width) scores as the input does. Not converging within
    PROBE_MAX_ITER steps is a result too (a layer hard to read linearly), so that warning is not passed on."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(labels[fit])) < 2:
        return float(np.mean(labels[score] == labels[fit][0]))  # one class to learn: it predicts that
    x = np.asarray(features, np.float64)
    mean = x[fit].mean(axis=0)
    rms = float(np.sqrt(np.mean((x[fit] - mean) ** 2)))
    x = (x - mean) / (rms if rms > 0 else 1.0)
    model = LogisticRegression(max_iter=PROBE_MAX_ITER, random_state=random_state)
    with _torch_threads(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[fit], labels[fit])
        return float(model.score(x[score], labels[score]))


# -- writing -------------------------------------------------------------------------------------------------
def write_probe(result: Probe, out_dir: str | Path, about: dict[str, Any] | None = None) -> list[Path]:
    """probe.json (``about``, e.g. the model and data, then the result) and probe.png in ``out_dir``,
    each written atomically; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        pieces.write_json(out / FILES["json"], {**(about or {}), **result.to_dict()}),
        probe_chart(out / FILES["png"], result),
    ]


def probe_chart(path: Any, result: Probe) -> Any:
    """Two panels, linear-probe accuracy and k-means NMI: a bar per layer in the order data flows, beside
    the bar of PCA with its width; the input's score as a dotted line."""
    layers = [r for r in result.rows if r.source == "layer"]
    x = np.arange(len(layers))
    fig = pieces.figure(max(6.0, 1.1 * len(layers) + 2.0), 3.6)
    for ax, metric, title in zip(
        fig.subplots(1, 2),
        ("probe_accuracy", "kmeans_nmi"),
        ("linear-probe accuracy", f"k-means NMI (k = {result.n_classes})"),
        strict=True,
    ):
        ax.bar(x - 0.2, [getattr(r, metric) for r in layers], 0.4, label="layer")
        ax.bar(x + 0.2, [getattr(result.row(r.pca), metric) for r in layers], 0.4, label="PCA, same width")
        ax.axhline(getattr(result.row("input"), metric), color="gray", linestyle=":", label="input")
        ax.set_xticks(x, [f"{r.name}\n{r.width}" for r in layers], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    return pieces.save_figure(fig, path)


def table(result: Probe) -> str:
    """The probe as text: one line per layer (after the input), with PCA of its width beside it."""
    head = f"{'layer':<12} {'shape':<14} {'width':>6}  {'probe acc':>9}  {'NMI':>6}  "
    head += f"{'PCA width':>9}  {'PCA acc':>7}  {'PCA NMI':>7}"
    lines = [head]
    for r in result.rows:
        if r.source == "pca":
            continue
        line = f"{r.name:<12} {_shape_text(r.shape):<14} {r.width:>6}  {r.probe_accuracy:>9.3f}  "
        line += f"{r.kmeans_nmi:>6.3f}"
        if r.pca is not None:
            p = result.row(r.pca)
            line += f"  {p.width:>9}  {p.probe_accuracy:>7.3f}  {p.kmeans_nmi:>7.3f}"
        lines.append(line)
    return "\n".join(lines)


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
