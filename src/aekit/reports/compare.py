"""Autoencoder against PCA as a dimensionality reduction: error by code size, 2-D maps, k-means on the codes.

``compare_with_pca`` trains one ``AutoEncoder`` and fits one PCA per code size on the same training data
and scores both on the same test data: reconstruction MSE (and PSNR for data in [0, 1]) in the model's
scaled space, and, when labels are given, how well k-means with one cluster per label class recovers the
classes from each method's codes (NMI and ARI). ``write_comparison`` turns the result into a report
folder: the error curve, the 2-D scatter of both methods, the clustering curve, comparison.json and
index.html.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.scaling import fit_spec
from aekit.errors import ConfigError, DataError
from aekit.reports import pieces

CODE_SIZES = (2, 4, 8, 16, 32, 64)
SCATTER_SIZE = 2  # the code size whose codes are drawn as a map
SCATTER_POINTS = 5000  # at most this many test points in the scatter: more only hides each other
PCA_RANDOMIZED_ABOVE = 1_000_000  # values in the training matrix; above it a full SVD gets slow
KMEANS_INIT = 4  # k-means restarts per clustering; the best by inertia is kept

FILES = {
    "curve": "error_vs_code_size.png",
    "scatter": "latent_2d.png",
    "codes": "codes_2d.npz",  # the scatter's points, for tools that draw their own (hover, zoom)
    "clustering": "clustering_vs_code_size.png",
    "json": "comparison.json",
    "index": "index.html",
    "examples": "examples.npz",  # a few test images and both methods' reconstructions at every size (images)
}
N_EXAMPLES = 8  # test images kept, with their reconstructions, for 'aekit dashboard' to show

# kind="auto": what suits each layout. Images keep their neighbourhoods in a conv net; tables have none.
AUTO_KIND = {True: "conv", False: "dense"}


@dataclass
class SizeResult:
    """Both methods at one code size. NMI/ARI are None when no labels were given."""

    code_size: int
    ae_mse: float
    pca_mse: float
    ae_psnr_db: float | None
    pca_psnr_db: float | None
    ae_train_seconds: float
    pca_fit_seconds: float
    epochs: int
    parameters: int
    ae_nmi: float | None = None
    ae_ari: float | None = None
    pca_nmi: float | None = None
    pca_ari: float | None = None


@dataclass
class Comparison:
    """What ``compare_with_pca`` measured, plus the 2-D codes for the scatter (not written to JSON)."""

    kind: str
    n_train: int
    n_test: int
    n_features: int
    unit: str  # what the MSE is measured on, e.g. "pixel values in [0, 1]"
    mean_mse: float  # error of predicting the mean training sample for every test sample
    rows: list[SizeResult]
    n_clusters: int | None  # k of k-means: the number of label classes; None without labels
    skipped: list[str] = field(default_factory=list)  # parts left out, and why
    settings: dict[str, Any] = field(default_factory=dict)
    codes_2d: dict[str, np.ndarray] = field(default_factory=dict)  # "autoencoder"/"pca" -> (N, 2)
    labels: np.ndarray | None = None  # the test labels, for colouring the scatter
    # uint8 pictures for image data: "inputs" (n, H, W[, C]) and "ae_<k>"/"pca_<k>" for each code size k
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    # ordered=True: both methods' test MSE at every code size 1..K from one training and one PCA fit
    # (``aekit.reports.ordered.OrderedRun.curves``); empty for a model per size
    curves: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the 2-D codes stay out: they are the scatter's, and large)."""
        return {
            "kind": self.kind,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_features": self.n_features,
            "unit": self.unit,
            "mean_mse": self.mean_mse,
            "n_clusters": self.n_clusters,
            "skipped": self.skipped,
            "settings": self.settings,
            "rows": [vars(row) for row in self.rows],
            **({"ordered": True, "curves": self.curves} if self.curves else {}),
        }


# -- checking ------------------------------------------------------------------------------------------------
def check_code_sizes(code_sizes: Sequence[Any], n_features: int, n_train: int) -> tuple[int, ...]:
    """Sorted, distinct code sizes; each a whole number >= 1 that PCA can have as many components of."""
    sizes = []
    for k in code_sizes:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"code sizes must be whole numbers >= 1, such as 2,4,8; got {k!r}.")
        sizes.append(int(k))
    if not sizes:
        raise ConfigError("give at least one code size, such as 2,4,8,16.")
    limit = min(n_features, n_train)
    too_big = [k for k in sizes if k > limit]
    if too_big:
        why = f"{n_features} features" if n_features <= n_train else f"{n_train} training samples"
        raise ConfigError(
            f"code size(s) {', '.join(map(str, too_big))} exceed the data's {why}: PCA has at most "
            f"{limit} components. Use code sizes up to {limit}."
        )
    return tuple(sorted(set(sizes)))


def _check_labels(y: Any, n: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(
            f"labels must be one per test sample, shape ({n},); got shape {labels.shape}. "
            "Pass the test set's labels."
        )
    return labels


def what_is_skipped(y_test: Any, code_sizes: Sequence[int]) -> list[str]:
    """The parts of a comparison that these labels and code sizes leave out, each with the reason."""
    skipped = []
    n_classes = None if y_test is None else len(np.unique(np.asarray(y_test)))
    if n_classes is None:
        skipped.append("k-means clustering quality (NMI/ARI): the data has no labels")
    elif n_classes < 2:
        skipped.append(f"k-means clustering quality (NMI/ARI): the labels hold {n_classes} class only")
    if SCATTER_SIZE not in code_sizes:
        skipped.append(
            f"2-D scatter: code size {SCATTER_SIZE} is not among the code sizes {sorted(code_sizes)}; add it"
        )
    elif n_classes is None:
        skipped.append("colours in the 2-D scatter: the data has no labels")
    return skipped


# -- measuring -----------------------------------------------------------------------------------------------
def compare_with_pca(
    x_train: Any,
    x_test: Any,
    y_test: Any = None,
    code_sizes: Sequence[int] = CODE_SIZES,
    kind: str = "auto",
    epochs: int | str = "auto",
    random_state: int = 0,
    device: str = "auto",
    progress: Callable[[str], Any] | None = None,
    ordered: bool = False,
    **params: Any,
) -> Comparison:
    """Train an autoencoder and fit PCA at each code size on ``x_train``; score both on ``x_test``.

    ``kind="auto"`` picks a conv autoencoder for images and a dense one for tables; ``params`` go to
    every ``AutoEncoder`` (e.g. ``hidden``, ``batch_size``). With ``y_test``, k-means with one cluster per
    class runs on each method's test codes and is scored by NMI and ARI against the labels. MSE is measured
    on the values the model sees (uint8 images divided by 255, tables standardised unless in [0, 1]), and
    PCA's reconstruction goes through the same clipping and dtype as the autoencoder's output.
    ``progress`` receives one line per step. ``ordered=True`` trains one ordered autoencoder with the
    largest code size instead of one per size (every smaller code is a prefix of its code), fits one PCA,
    and records both methods' test MSE at every code size up to the largest (``Comparison.curves``).
    """
    from aekit import AutoEncoder
    from aekit.data.scaling import check_array, check_like
    from aekit.models import FAMILIES

    say = progress or (lambda _: None)
    if kind != "auto" and kind not in FAMILIES:
        raise ConfigError(
            f"kind={kind!r} is not a model family; choose auto or one of {', '.join(FAMILIES)}."
        )
    x_train = check_array(x_train, "x_train")
    spec = fit_spec(x_train, params.get("scaling", "auto"), params.get("loss", "mse"))
    x_test = check_like(x_test, spec, "compare_with_pca", what="x_test")
    sizes = check_code_sizes(code_sizes, spec.n_features, len(x_train))
    labels = None if y_test is None else _check_labels(y_test, len(x_test))
    kind = AUTO_KIND[spec.is_image] if kind == "auto" else kind

    flat_train = spec.to_model(x_train).reshape(len(x_train), -1)  # (N, D) as the model sees it
    target = spec.to_model(x_test)  # (M, *input_shape)
    flat_target = target.reshape(len(target), -1)  # (M, D)
    mean_mse = float(np.mean((flat_target - flat_train.mean(axis=0, dtype=np.float64)) ** 2))
    unit_range = spec.value_range == (0.0, 1.0)

    skipped = what_is_skipped(labels, sizes)
    n_clusters = None if labels is None or len(np.unique(labels)) < 2 else len(np.unique(labels))

    rows: list[SizeResult] = []
    codes_2d: dict[str, np.ndarray] = {}
    shown = min(N_EXAMPLES, len(target)) if spec.is_image else 0
    pictures = _Pictures(target[:shown], spec)
    examples = {"inputs": pictures(target[:shown])} if shown else {}
    run = None
    if ordered:
        from aekit.reports.ordered import OrderedRun

        fit = {"epochs": epochs, "device": device, **params}
        run = OrderedRun(x_train, x_test, spec, max(sizes), kind, random_state, say, **fit)
    for k in sizes:
        if run is None:
            say(f"code size {k}: training a {kind} autoencoder on {len(x_train)} samples")
            started = time.perf_counter()
            ae = AutoEncoder(
                kind=kind, code_size=k, epochs=epochs, random_state=random_state, device=device, **params
            )
            ae.fit(x_train)
            ae_seconds = time.perf_counter() - started
            ae_codes = ae.transform(x_test)  # (M, k); a VAE's posterior means
            ae_recon = spec.to_model(ae.reconstruct(x_test)).reshape(len(target), -1)  # (M, D)
        else:  # the first k units of the one ordered model's codes
            ae, ae_seconds = run.ae, run.seconds
            ae_codes, ae_recon = run.ae_codes[:, :k], run.ae_recon(k)

        if run is None:
            say(f"code size {k}: fitting PCA with {k} components")
            started = time.perf_counter()
            pca = fit_pca(flat_train, k, random_state)
            pca_codes = pca.transform(flat_target).astype(np.float32)  # (M, k)
            pca_flat = pca.inverse_transform(pca_codes)  # (M, D)
            pca_seconds = time.perf_counter() - started
            # through the same output range and the user's dtype, as the autoencoder's reconstruction went
            if unit_range:
                pca_flat = np.clip(pca_flat, 0.0, 1.0)
            pca_recon = spec.to_model(spec.from_model(pca_flat.reshape(target.shape).astype(np.float32)))
            pca_recon = pca_recon.reshape(len(target), -1)  # (M, D)
        else:  # the first k components of the one PCA fit
            pca_codes, pca_recon, pca_seconds = run.pca_codes[:, :k], run.pca_recon(k), run.pca_seconds

        ae_mse, pca_mse = pieces.mse(ae_recon, flat_target), pieces.mse(pca_recon, flat_target)
        row = SizeResult(
            code_size=k,
            ae_mse=ae_mse,
            pca_mse=pca_mse,
            ae_psnr_db=pieces.psnr(ae_mse) if unit_range else None,
            pca_psnr_db=pieces.psnr(pca_mse) if unit_range else None,
            ae_train_seconds=ae_seconds,
            pca_fit_seconds=pca_seconds,
            epochs=len(ae.history_),
            parameters=pieces.n_parameters(ae),
        )
        if n_clusters is not None:
            say(f"code size {k}: k-means with {n_clusters} clusters on both sets of codes")
            row.ae_nmi, row.ae_ari = cluster_quality(ae_codes, labels, n_clusters, random_state)
            row.pca_nmi, row.pca_ari = cluster_quality(pca_codes, labels, n_clusters, random_state)
        rows.append(row)
        if shown:
            examples[f"ae_{k}"] = pictures(ae_recon[:shown].reshape(target[:shown].shape))
            examples[f"pca_{k}"] = pictures(pca_recon[:shown].reshape(target[:shown].shape))
        if k == SCATTER_SIZE:
            codes_2d = {"autoencoder": ae_codes, "pca": pca_codes}
        say(
            f"code size {k}: test MSE autoencoder {ae_mse:.5g}, PCA {pca_mse:.5g} "
            f"({ae_mse / pca_mse if pca_mse > 0 else math.inf:.3g} x PCA's); trained in {ae_seconds:.1f} s"
        )

    return Comparison(
        kind=kind,
        n_train=len(x_train),
        n_test=len(x_test),
        n_features=spec.n_features,
        unit=_UNITS.get(spec.scaling, "scaled values") if not spec.unit_range else "values in [0, 1]",
        mean_mse=mean_mse,
        rows=rows,
        n_clusters=n_clusters,
        skipped=skipped,
        settings={
            "epochs": epochs,
            "random_state": random_state,
            **params,
            **({"ordered": True} if run else {}),
        },
        codes_2d=codes_2d,
        labels=labels,
        examples=examples,
        curves=run.curves() if run else {},
    )


class _Pictures:
    """Model-space images (n, C, H, W) -> uint8 (n, H, W[, C]), all on one brightness scale: [0, 1] for
    data the model sees in that range, else the range of the test images the scale is set by."""

    def __init__(self, reference: np.ndarray, spec):
        low, high = spec.value_range
        if low is None:
            low, high = (float(reference.min()), float(reference.max())) if reference.size else (0.0, 1.0)
        self.low, self.span = low, max(high - low, 1e-12)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        scaled = np.clip(np.rint((x - self.low) / self.span * 255.0), 0, 255).astype(np.uint8)
        scaled = scaled.transpose(0, 2, 3, 1)  # (n, H, W, C)
        return scaled[..., 0] if scaled.shape[-1] == 1 else scaled


_UNITS = {
    "divide255": "pixel values divided by 255",
    "minmax": "values min-max scaled to [0, 1]",
    "standard": "standardised values (per feature: mean 0, variance 1)",
    "none": "values as given",
}


def fit_pca(flat_train: np.ndarray, k: int, random_state: int):
    """scikit-learn's PCA with k components fitted on (N, D) rows, under torch's thread budget.

    Randomized SVD for big inputs. Shared with the HTML report, which draws the same PCA curve.
    """
    from sklearn.decomposition import PCA

    big = flat_train.size > PCA_RANDOMIZED_ABOVE and k < min(flat_train.shape)
    pca = PCA(n_components=k, svd_solver="randomized" if big else "full", random_state=random_state)
    with _torch_threads():
        return pca.fit(flat_train)


def pca_errors(spec: Any, flat_train: np.ndarray, target: np.ndarray, sizes: Sequence[int]) -> list[float]:
    """PCA's MSE on ``target`` (N, *input_shape: the values the model sees) at each of ``sizes``
    components, fitted on ``flat_train`` (M, D), also the values the model sees.

    One PCA with the most components serves every size: principal components are nested, so its first
    j components are PCA with j components. Reconstructions go through the autoencoder's clipping and the
    data's dtype, as ``aekit eval`` and ``compare_with_pca`` do: the HTML report and ``aekit demo`` show
    this one figure.
    """
    pca = fit_pca(flat_train, max(sizes), random_state=0)
    centred = target.reshape(len(target), -1) - pca.mean_  # (N, D)
    low, high = spec.value_range
    errors = []
    for j in sizes:
        basis = pca.components_[:j]  # (j, D)
        out = (centred @ basis.T) @ basis + pca.mean_  # (N, D)
        if low is not None:
            out = np.clip(out, low, high)  # the autoencoder's output is bounded the same way
        out = spec.to_model(spec.from_model(out.reshape(target.shape).astype(np.float32)))
        errors.append(pieces.mse(out, target))
    return errors


def _torch_threads():
    """Let scikit-learn's BLAS and OpenMP pools use as many threads as torch has been given.

    One thread budget for the whole comparison: a caller that set torch to 1 thread on a shared machine
    means it for k-means too, whose OpenMP threads otherwise spin on busy cores (measured: 40x slower
    with 2 threads on 2 cores that other jobs were using).
    """
    import torch
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=torch.get_num_threads())


def cluster_quality(
    codes: np.ndarray, labels: np.ndarray, n_clusters: int, random_state: int = 0
) -> tuple[float, float]:
    """(NMI, ARI) of k-means with ``n_clusters`` clusters on ``codes`` against ``labels``.

    The codes are clustered as they are: k-means ignores one overall scale, and whitening each dimension
    would lift PCA's low-variance components (mostly noise) to the weight of its leading ones.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    z = np.asarray(codes, np.float64)  # (M, k)
    with _torch_threads():
        found = KMeans(n_clusters=n_clusters, n_init=KMEANS_INIT, random_state=random_state).fit_predict(z)
    return float(normalized_mutual_info_score(labels, found)), float(adjusted_rand_score(labels, found))


# -- writing -------------------------------------------------------------------------------------------------
def write_comparison(
    result: Comparison, out_dir: str | Path, title: str = "Autoencoder vs PCA", data: str | None = None
) -> list[Path]:
    """Write the report folder: the curves, the scatter (when there are 2-D codes), example images (for
    image data), JSON and HTML. ``data`` names the data set in comparison.json.

    Returns the files written, each atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [row.code_size for row in result.rows]
    if result.curves:
        from aekit.reports.ordered import curve_figure

        curve = curve_figure(out / FILES["curve"], result.curves, result.kind, sizes, result.mean_mse)
        how = " at every code size, from one ordered autoencoder and one PCA fit (points: the table's sizes)"
    else:
        curves = {
            f"{result.kind} autoencoder": [row.ae_mse for row in result.rows],
            "PCA": [row.pca_mse for row in result.rows],
        }
        curve = pieces.code_size_curve(out / FILES["curve"], sizes, curves, baseline=result.mean_mse)
        how = " against code size"
    written = [curve]
    images = [(FILES["curve"], f"Test MSE ({result.unit}){how}; dotted: the mean training sample.")]
    if result.codes_2d:
        titles = {
            "autoencoder": f"{result.kind} autoencoder, code size {SCATTER_SIZE}",
            "pca": f"PCA, first {SCATTER_SIZE} components",
        }
        codes = {titles[method]: z for method, z in result.codes_2d.items()}
        written.append(scatter_2d(out / FILES["scatter"], codes, result.labels))
        written.append(_write_codes(out / FILES["codes"], result))
        images.append(
            (
                FILES["scatter"],
                "Test samples' 2-D codes: the autoencoder with code size 2 and PCA's "
                "first two components" + (", coloured by label." if result.labels is not None else "."),
            )
        )
    if result.n_clusters is not None:
        written.append(clustering_curve(out / FILES["clustering"], result))
        images.append(
            (
                FILES["clustering"],
                f"k-means with {result.n_clusters} clusters on each method's test "
                "codes, scored against the labels (1 = the classes exactly).",
            )
        )
    if result.examples:
        written.append(_write_npz(out / FILES["examples"], result.examples))
    written.append(pieces.write_json(out / FILES["json"], {"data": data, **result.to_dict()}))
    header = [
        "code size",
        "AE MSE",
        "PCA MSE",
        "AE / PCA",
        "AE NMI",
        "PCA NMI",
        "AE ARI",
        "PCA ARI",
        "AE train s",
    ]
    rows = [
        [
            row.code_size,
            f"{row.ae_mse:.5g}",
            f"{row.pca_mse:.5g}",
            f"{row.ae_mse / row.pca_mse:.3g}" if row.pca_mse > 0 else "-",
            *(
                f"{v:.3f}" if v is not None else "-"
                for v in (row.ae_nmi, row.pca_nmi, row.ae_ari, row.pca_ari)
            ),
            f"{row.ae_train_seconds:.1f}",
        ]
        for row in result.rows
    ]
    notes = [
        f"{result.kind} autoencoder and PCA trained on {result.n_train} samples, scored on {result.n_test}; "
        f"MSE on {result.unit}. Predicting the mean training sample: MSE {result.mean_mse:.5g}.",
        *(f"Skipped: {what}." for what in result.skipped),
    ]
    if result.curves:
        notes.insert(
            1,
            f"Every row comes from one ordered {result.kind} autoencoder (nested dropout, trained once in "
            f"{result.curves['ae_train_seconds']:.0f} s; a code of size k is the first k units of its code) "
            "and one PCA fit (its first k components).",
        )
    written.append(pieces.write_index(out / FILES["index"], title, header, rows, images, notes))
    return written


def _write_codes(path: Path, result: Comparison) -> Path:
    """The 2-D test codes of both methods (and the labels, when known) as one .npz without pickles."""
    arrays = dict(result.codes_2d)
    if result.labels is not None:
        arrays["labels"] = result.labels
    return _write_npz(path, arrays)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    from aekit.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: np.savez would add .npz to the temporary name
    return path


def scatter_2d(path: str | Path, codes: dict[str, np.ndarray], labels: np.ndarray | None = None) -> Path:
    """One panel per method: its (N, 2) codes as points, coloured by ``labels`` when given."""
    n = min(SCATTER_POINTS, len(next(iter(codes.values()))))
    shown = np.random.default_rng(0).permutation(len(next(iter(codes.values()))))[:n]  # an unbiased subset
    fig = pieces.figure(5.0 * len(codes) + 1.0, 4.6)
    axes = fig.subplots(1, len(codes), squeeze=False)[0]
    classes = None if labels is None else np.unique(labels)
    for ax, (name, z) in zip(axes, codes.items(), strict=True):
        if classes is None:
            ax.scatter(z[shown, 0], z[shown, 1], s=3, alpha=0.5, linewidths=0)
        else:
            for i, c in enumerate(classes):
                mask = labels[shown] == c
                ax.scatter(
                    z[shown][mask, 0],
                    z[shown][mask, 1],
                    s=3,
                    alpha=0.6,
                    linewidths=0,
                    color=_colour(i, len(classes)),
                    label=str(c),
                )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("code 1")
        ax.set_ylabel("code 2")
    if classes is not None and len(classes) <= 20:  # a legend of hundreds of classes hides the plot
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside right center",
            markerscale=4,
            fontsize=8,
            title="label",
        )
    return pieces.save_figure(fig, path)


def _colour(i: int, n: int):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"](
        i if n <= 20 else i / max(n - 1, 1)
    )


def clustering_curve(path: str | Path, result: Comparison) -> Path:
    """NMI and ARI of k-means on each method's codes against code size."""
    sizes = [row.code_size for row in result.rows]
    fig = pieces.figure(9.0, 3.6)
    for ax, metric in zip(fig.subplots(1, 2), ("nmi", "ari"), strict=True):
        ax.plot(
            sizes,
            [getattr(row, f"ae_{metric}") for row in result.rows],
            marker="o",
            label=f"{result.kind} autoencoder",
        )
        ax.plot(sizes, [getattr(row, f"pca_{metric}") for row in result.rows], marker="s", label="PCA")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(k) for k in sizes])
        ax.set_xlabel("code size")
        ax.set_ylabel(metric.upper())
        ax.set_title(f"k-means ({result.n_clusters} clusters): {metric.upper()}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return pieces.save_figure(fig, path)
