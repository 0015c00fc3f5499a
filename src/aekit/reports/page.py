"""One HTML file about one trained autoencoder, with every image inside it: ``aekit report``.

The page holds the model's summary, its loss curves, test inputs beside their reconstructions with each
one's error, its error beside PCA's at a few code sizes around its own, a 2-D map of its codes coloured by
label, and samples (a VAE) or interpolations (any other family). Every picture is a PNG inlined as a
``data:`` URL and the styling is one inline ``<style>``: no scripts, fonts or links to fetch, so the file
can be mailed, archived or opened offline and looks the same. Figures come from ``reports.pieces`` and
``reports.compare``, drawn into memory; errors are measured as ``aekit eval`` measures them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.atomic import write_text_atomic
from aekit.errors import DataError
from aekit.reports import compare, pieces

N_EVAL = 10_000  # test samples scored at most (all of MNIST's test set): bounds the time on big sets
# test samples shown beside their reconstructions: the first ones and the worst ones. A table's sample is
# a whole plot of its features, so fewer of those.
SHOWN = {True: (16, 8), False: (8, 4)}  # is_image -> (first, worst)
N_LATENT = 2000  # points in the latent map: more only hide each other
N_SAMPLES = 32  # a VAE's samples
N_PAIRS = 4  # interpolation strips
STEPS = 8  # images per strip
PCA_FACTORS = (0.25, 0.5, 1, 2, 4)  # PCA's code sizes: these multiples of the model's
THUMB_PIXELS = 72  # an image in the reconstruction grid is shown at least this wide, pixels kept square


# -- what the page is made of ------------------------------------------------------------------------------
@dataclass
class Facts:
    """Everything measured once and shown by several sections."""

    name: str
    source: str | None
    est: Any
    data_name: str
    split: str  # "test", or "training" when the data has no test split
    x: np.ndarray  # the scored samples, in the data's own layout and dtype
    labels: np.ndarray | None
    outputs: np.ndarray  # their reconstructions, in the same layout and dtype (what a user gets)
    target: np.ndarray  # (N, *input_shape) the values the model sees
    recon: np.ndarray  # the reconstructions as the model sees them
    errors: np.ndarray  # (N,) MSE per sample
    n_train: int
    pca_sizes: list[int]
    pca_errors: list[float]
    mean_error: float  # predicting the mean training sample for every scored one

    @property
    def code_size(self) -> int:
        return int(self.est.model_.config.code_size)

    @property
    def is_image(self) -> bool:
        return bool(self.est.spec_.is_image)

    @property
    def is_vae(self) -> bool:
        return hasattr(self.est.model_, "posterior")  # variational: it has a prior to sample from

    @property
    def mse(self) -> float:
        return float(self.errors.mean())

    def pictures(self, images: np.ndarray) -> np.ndarray:
        """Images in the data's layout made drawable: uint8 and [0, 1] data as they are; other float
        images (e.g. standardised) mapped to [0, 1] by the scored samples' range, the same for every one."""
        if self.x.dtype == np.uint8 or (self.x.min() >= 0 and self.x.max() <= 1):
            return images
        low, high = float(self.x.min()), float(self.x.max())
        return (np.asarray(images, np.float32) - low) / max(high - low, 1e-12)


def measure(est: Any, data: Any, name: str, source: str | None = None) -> Facts:
    """Score ``est`` on ``data``'s test split (its training split when there is none) and fit PCA.

    Raises DataError when the data's samples do not have the shape the model was trained on.
    """
    from aekit.data.scaling import check_like

    spec = est.spec_
    has_test = data.x_test is not None and len(data.x_test) > 0
    x, labels = (data.x_test, data.y_test) if has_test else (data.x_train, data.y_train)
    got = tuple(np.shape(x)[1:])
    if got != tuple(spec.sample_shape):
        raise DataError(
            f"{source or name} was trained on samples of shape {tuple(spec.sample_shape)}, but "
            f"{data.name!r} has samples of shape {got}. Pass --data the data set the model was trained on "
            "(or one shaped like it)."
        )
    train = check_like(data.x_train, spec, "the model", what=f"{data.name} training data")
    x = check_like(
        x[:N_EVAL], spec, "the model", what=f"{data.name} {'test' if has_test else 'training'} data"
    )
    labels = None if labels is None else np.asarray(labels)[: len(x)]

    target = spec.to_model(x)  # (N, *input_shape)
    outputs = est.reconstruct(x)
    recon = spec.to_model(outputs)
    errors = np.mean((target.astype(np.float64) - recon).reshape(len(x), -1) ** 2, axis=1)  # (N,)
    sizes, pca_errors, mean_error = _pca_curve(spec, train, target, int(est.model_.config.code_size))
    return Facts(
        name=name,
        source=source,
        est=est,
        data_name=data.name,
        split="test" if has_test else "training",
        x=x,
        labels=labels,
        outputs=outputs,
        target=target,
        recon=recon,
        errors=errors,
        n_train=len(train),
        pca_sizes=sizes,
        pca_errors=pca_errors,
        mean_error=mean_error,
    )


def _pca_curve(
    spec: Any, train: np.ndarray, target: np.ndarray, k: int
) -> tuple[list[int], list[float], float]:
    """PCA's test MSE at the code sizes around ``k`` that PCA can have (``compare.pca_errors``: scored
    as ``aekit eval`` scores both methods), and the mean sample's MSE."""
    flat_train = spec.to_model(train).reshape(len(train), -1)  # (M, D)
    flat = target.reshape(len(target), -1)  # (N, D)
    mean_error = float(np.mean((flat - flat_train.mean(axis=0, dtype=np.float64)) ** 2))
    limit = min(flat_train.shape)
    sizes = sorted({max(1, round(k * f)) for f in PCA_FACTORS if round(k * f) <= limit} | {min(k, limit)})
    return sizes, compare.pca_errors(spec, flat_train, target, sizes), mean_error


# -- sections ------------------------------------------------------------------------------------------------
esc = html.escape


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="{pieces.data_url(png)}" alt="{esc(alt, quote=True)}"{size}>'


def _figure(png: bytes, caption: str) -> str:
    return f"<figure>{_img(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def _num(value: float) -> str:
    return f"{value:.4g}"


def _summary(f: Facts) -> str:
    from aekit.models import family_of

    est, spec = f.est, f.est.spec_
    model = est.model_
    history = list(est.history_)
    unit_range = spec.value_range == (0.0, 1.0)
    at_k = dict(zip(f.pca_sizes, f.pca_errors, strict=True)).get(f.code_size)
    if at_k is None:
        versus = f"PCA cannot have {f.code_size} components here (at most {max(f.pca_sizes)})"
    else:
        ratio = f" (the model's error is {f.mse / at_k:.3g} x PCA's)" if at_k > 0 else ""
        versus = _num(at_k) + ratio
    rows = [
        ("family", family_of(model) + (f" (denoising: {est.noise}, {est.noise_level})" if est.noise else "")),
        ("code size", str(f.code_size)),
        ("parameters", f"{pieces.n_parameters(est):,}"),
        ("loss", str(model.config.loss)),
        ("samples", f"shape {tuple(spec.sample_shape)}, {spec.dtype}, scaling {spec.scaling}"),
        ("training", _training(history, est)),
        ("data", f"{f.data_name}: {len(f.x):,} {f.split} samples scored; PCA fitted on {f.n_train:,} "
                 "training samples"),
        (f"{f.split} MSE", _num(f.mse) + (f" (PSNR {pieces.psnr(f.mse):.2f} dB)" if unit_range else "")),
        ("PCA, same code size", versus),
        ("mean sample", f"{_num(f.mean_error)} (predicting the mean training sample for every one)"),
    ]  # fmt: skip
    if f.source:
        rows.insert(0, ("file", f.source))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    unit = _UNITS.get(spec.scaling, "scaled values")
    return (
        f'<table class="facts">{body}</table><p class="note">Errors are mean squared errors on the values '
        f"the model sees ({esc(unit)}).</p>"
    )


_UNITS = {
    "divide255": "pixel values divided by 255",
    "minmax": "features min-max scaled to [0, 1] by the training data",
    "standard": "features standardised by the training data",
    "none": "the data's own values",
}


def _training(history: Sequence[Mapping[str, Any]], est: Any) -> str:
    if not history:
        return "no training history in the file"
    last = history[-1]
    losses = ", ".join(
        f"{k} {_num(v)}" for k, v in last.items() if k in ("loss", "val_loss") and v is not None
    )
    return f"{len(history)} epochs (asked for {est.epochs}); last epoch: {losses}"


def _losses(f: Facts) -> str:
    history = list(f.est.history_)
    if not history:
        return '<p class="note">The file holds no training history, so there are no curves to draw.</p>'
    png = pieces.png_bytes(pieces.loss_curves, {f.name: history}, {f.name: pieces.loss_label(f.est)})
    what = "validation loss (dashed)" if any("val_loss" in h for h in history) else "no validation split"
    return _figure(png, f"Training loss per epoch and {what}; log scale when every loss is positive.")


def _reconstructions(f: Facts) -> str:
    n_first, n_worst = SHOWN[f.is_image]
    shown = np.arange(min(n_first, len(f.x)))
    worst = np.argsort(-f.errors, kind="stable")[: min(n_worst, len(f.x))]
    parts = [f"<p>Mean MSE over the {len(f.x):,} {f.split} samples: <b>{_num(f.mse)}</b>.</p>"]
    for title, indices in ((f"The first {len(shown)}", shown), (f"The {len(worst)} worst", worst)):
        parts.append(f"<h3>{title}</h3>")
        parts.append(_DRAW_RECONSTRUCTIONS[f.is_image](f, indices))
    return "".join(parts)


def _image_cards(f: Facts, indices: np.ndarray) -> str:
    width = f.x.shape[2]  # (N, H, W) or (N, H, W, C)
    shown = width * max(1, math.ceil(THUMB_PIXELS / width))  # whole multiples keep pixels square
    inputs, outputs = f.pictures(f.x[indices]), f.pictures(f.outputs[indices])
    cards = []
    for i, x, out in zip(indices, inputs, outputs, strict=True):
        label = "" if f.labels is None else f" (label {esc(str(f.labels[i]))})"
        cards.append(
            f'<div class="card">{_img(pieces.image_png(x), f"input {i}", shown)}'
            f"{_img(pieces.image_png(out), f'reconstruction {i}', shown)}"
            f"<span>#{i}{label}<br>MSE {_num(f.errors[i])}</span></div>"
        )
    note = '<p class="note">Each card: the input above, its reconstruction below.</p>'
    return f'<div class="cards">{"".join(cards)}</div>{note}'


def _table_profiles(f: Facts, indices: np.ndarray) -> str:
    panels = [
        (f"#{i}: MSE {_num(f.errors[i])}", {"input": f.target[i], "reconstruction": f.recon[i]})
        for i in indices
    ]
    png = pieces.png_bytes(_profiles, panels)
    return _figure(png, "Each sample's features (as the model sees them): input and reconstruction.")


_DRAW_RECONSTRUCTIONS: dict[bool, Callable[[Facts, np.ndarray], str]] = {
    True: _image_cards,
    False: _table_profiles,
}


def _profiles(path: Any, panels: Sequence[tuple[str, Mapping[str, np.ndarray]]]) -> Any:
    """Tables have no picture: one small panel per sample, one line per series over the feature index."""
    n_cols = min(4, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig = pieces.figure(3.0 * n_cols, 2.0 * n_rows + 0.4)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax, (title, series) in zip(axes.flat, panels, strict=False):
        for label, values in series.items():
            ax.plot(np.ravel(values), label=label, linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize=8)
    return pieces.save_figure(fig, path)


def _versus_pca(f: Facts) -> str:
    sizes = f.pca_sizes
    own = [f.mse if k == f.code_size else math.nan for k in sizes]
    curves = {"PCA": [e if e > 0 else math.nan for e in f.pca_errors]}  # a log axis cannot show 0
    if f.code_size not in sizes:  # a code wider than the data: PCA stops at full rank, the model is beyond
        sizes, own = [*sizes, f.code_size], [math.nan] * len(sizes) + [f.mse]
        curves["PCA"].append(math.nan)
    curves = {f"this model ({f.est.kind}, code size {f.code_size})": own, **curves}
    png = pieces.png_bytes(pieces.code_size_curve, sizes, curves, baseline=f.mean_error)
    rows = "".join(
        f"<tr><td>{k}</td><td>{_num(e)}</td><td>{_num(f.mse) if k == f.code_size else ''}</td></tr>"
        for k, e in zip(f.pca_sizes, f.pca_errors, strict=True)
    )
    return (
        _figure(
            png,
            f"{f.split.capitalize()} MSE against code size: PCA fitted at code sizes around the model's, "
            "and the model's own point; dotted: predicting the mean training sample.",
        )
        + '<table class="numbers"><tr><th>code size</th><th>PCA MSE</th><th>this model</th></tr>'
        + f"{rows}</table>"
    )


def latent_points(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """2-D points for a map of ``codes`` (N, K) and how they were made: the code itself when K is 2,
    its first two principal components when K > 2, and for K = 1 the code against a small jitter."""
    codes = np.asarray(codes, np.float64)
    k = codes.shape[1]
    if k == 2:
        return codes, "code"
    if k == 1:
        jitter = np.random.default_rng(0).uniform(-0.5, 0.5, len(codes))
        return np.column_stack([codes[:, 0], jitter]), "jitter"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(codes), "pca"


# how the points were made -> (the plot's title, the caption's words)
_LATENT_WORDS = {
    "code": ("its 2-D code", "the 2-D code itself"),
    "pca": ("PCA of its {k}-D codes", "the first two principal components of the {k}-D codes"),
    "jitter": (
        "its 1-D code",
        "the 1-D code across; up and down only a random jitter that keeps points apart",
    ),
}


def _latent(f: Facts) -> str:
    n = min(N_LATENT, len(f.x))
    points, method = latent_points(f.est.transform(f.x[:n]))
    title, what = (words.format(k=f.code_size) for words in _LATENT_WORDS[method])
    labels = None if f.labels is None else f.labels[:n]
    png = pieces.png_bytes(compare.scatter_2d, {f"{f.name}: {title}": points}, labels)
    coloured = ", coloured by label" if labels is not None else " (the data has no labels to colour by)"
    code = " (a VAE's: its posterior means)" if f.is_vae else ""
    return _figure(png, f"Codes{code} of {n:,} {f.split} samples: {what}{coloured}.")


def _samples(f: Facts) -> str:
    samples = f.est.sample(N_SAMPLES, random_state=0)
    if f.is_image:
        png = pieces.png_bytes(pieces.image_grid, f.pictures(samples), n_cols=16)
    else:
        scaled = f.est.spec_.to_model(samples)
        png = pieces.png_bytes(
            _profiles, [(f"sample {i + 1}", {"sample": s}) for i, s in enumerate(scaled[:8])]
        )
    return _figure(
        png, f"{N_SAMPLES if f.is_image else 8} samples: codes drawn from the prior N(0, I), decoded."
    )


def _interpolations(f: Facts) -> str:
    pairs = _pairs(f.labels, len(f.x))
    if not pairs:
        return '<p class="note">Interpolation needs two samples; the data has one.</p>'
    paths = [(a, b, f.est.interpolate(f.x[a], f.x[b], steps=STEPS)) for a, b in pairs]
    name = (lambda i: f"#{i}") if f.labels is None else (lambda i: f"{f.labels[i]} (#{i})")
    if f.is_image:
        rows = [(f"{name(a)} to {name(b)}", f.pictures(path)) for a, b, path in paths]
        png = pieces.png_bytes(pieces.image_rows, rows)
    else:
        ts = np.linspace(0.0, 1.0, STEPS)
        panels = [
            (
                f"{name(a)} to {name(b)}",
                dict(zip((f"t={t:.2f}" for t in ts), f.est.spec_.to_model(p), strict=True)),
            )
            for a, b, p in paths
        ]
        png = pieces.png_bytes(_profiles, panels)
    return _figure(
        png,
        f"Decoded codes on the straight line between the codes of two {f.split} samples, {STEPS} steps; "
        "the first and last are the two samples' reconstructions.",
    )


def _pairs(labels: np.ndarray | None, n: int) -> list[tuple[int, int]]:
    """Index pairs to interpolate between: samples of different classes when there are labels."""
    if labels is None or len(np.unique(labels)) < 2:
        return [(i, i + 1) for i in range(0, min(2 * N_PAIRS, n - 1), 2)]
    classes = np.unique(labels)
    first = {c: int(np.flatnonzero(labels == c)[0]) for c in classes}
    return [
        (first[classes[i % len(classes)]], first[classes[(i + 1) % len(classes)]])
        for i in range(min(N_PAIRS, len(classes)))
    ]


# section id -> (title, what it draws). The generation section depends on the family: a VAE has a prior.
SECTIONS: tuple[tuple[str, str, Callable[[Facts], str]], ...] = (
    ("summary", "Summary", _summary),
    ("losses", "Loss curves", _losses),
    ("reconstructions", "Reconstructions", _reconstructions),
    ("pca", "Autoencoder vs PCA", _versus_pca),
    ("latent", "Latent space", _latent),
)
GENERATION: dict[bool, tuple[str, str, Callable[[Facts], str]]] = {
    True: ("samples", "Samples", _samples),
    False: ("interpolation", "Interpolation", _interpolations),
}


# -- the page ------------------------------------------------------------------------------------------------
_CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6474; --line: #dde1e8; --accent: #2f6fde; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: #f6f7f9; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 1.5rem 0 0.75rem; }
header, main, footer { padding-left: max(1rem, calc((100% - 62rem) / 2));
                       padding-right: max(1rem, calc((100% - 62rem) / 2)); }
h1 { margin: 0 0 0.25rem; font-size: 1.6rem; }
h2 { margin: 0 0 0.75rem; font-size: 1.25rem; }
h3 { margin: 1.2rem 0 0.5rem; font-size: 1rem; color: var(--muted); }
.lede { margin: 0 0 0.75rem; color: var(--muted); }
nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; font-size: 0.95rem; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem 1.5rem;
          margin: 1.25rem 0; }
table { border-collapse: collapse; }
th, td { padding: 0.3rem 0.9rem 0.3rem 0; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
table.numbers td { font-variant-numeric: tabular-nums; text-align: right; }
table.facts th { color: var(--muted); font-weight: 600; white-space: nowrap; }
figure { margin: 0.5rem 0; }
img { max-width: 100%; height: auto; image-rendering: pixelated; }
figcaption, .note { color: var(--muted); font-size: 0.9rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.card { display: flex; flex-direction: column; align-items: center; gap: 2px; padding: 0.35rem;
        border: 1px solid var(--line); border-radius: 6px; font-size: 0.75rem; text-align: center;
        font-variant-numeric: tabular-nums; }
footer { color: var(--muted); font-size: 0.85rem; padding-bottom: 2rem; }
"""


def build_report(est: Any, data: Any, name: str, source: str | None = None) -> str:
    """The report on a fitted ``AutoEncoder`` scored on ``data`` (an ``aekit.data.Dataset``), as HTML text.

    ``name`` titles the page; ``source`` (the model file, if any) is shown in the summary.
    """
    from aekit._version import __version__

    facts = measure(est, data, name, source)
    sections = [*SECTIONS, GENERATION[facts.is_vae]]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{draw(facts)}</section>' for sid, title, draw in sections
    )
    lede = (
        f"A {facts.est.kind} autoencoder with code size {facts.code_size}, scored on {len(facts.x):,} "
        f"{facts.split} samples of {facts.data_name}."
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>aekit report: {esc(name)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>aekit report: {esc(name)}</h1><p class="lede">{esc(lede)}</p><nav>{nav}</nav></header>'
        f"<main>{body}</main><footer>Written by aekit {esc(__version__)}. One self-contained file: every "
        "image is inside it.</footer></body></html>\n"
    )


def write_report(path: str | Path, est: Any, data: Any, name: str, source: str | None = None) -> Path:
    """Write ``build_report``'s page to ``path``, atomically; returns the path."""
    page = build_report(est, data, name, source)
    path = Path(path)
    write_text_atomic(path, page)
    return path
