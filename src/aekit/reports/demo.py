"""``aekit demo``: train each family on the built-in digits for a few seconds, set a dense autoencoder
against PCA at several code sizes, print a summary table and write a report folder (index.html, and
report.html: ``aekit report``'s one-file page on the VAE).

Runs offline (the digits ship with scikit-learn) in about 20 seconds of CPU time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.reports import pieces

DATASET = "digits"
CODE_SIZE = 8  # every family's code size; also one point of the autoencoder-vs-PCA curve
N_SHOWN = 10  # test digits in reconstructions.png
N_SAMPLES = 64  # VAE samples in samples.png
NOISE_LEVEL = 0.2
FILES = (
    "reconstructions.png",
    "loss_curves.png",
    "ae_vs_pca.png",
    "samples.png",
    "summary.json",
    "index.html",
    "report.html",
)
REPORT_MODEL = "vae"  # the model that report.html is about: a VAE's page shows samples as well


@dataclass(frozen=True)
class Plan:
    """How much to train: the full demo, or the quick one the tests run."""

    epochs: int
    curve_sizes: tuple[int, ...]
    dense_hidden: tuple[int, ...] | None  # None: the library's default widths for each code size
    conv_hidden: tuple[int, ...]


FULL = Plan(epochs=30, curve_sizes=(2, 4, 8, 16, 32), dense_hidden=None, conv_hidden=(16, 32))
QUICK = Plan(epochs=3, curve_sizes=(2, 8), dense_hidden=(32,), conv_hidden=(8,))

# Every model: (name in the report, what it is, estimator parameters beyond the common ones).
# "dense" is the curve's model at CODE_SIZE, not trained twice.
MODELS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("dense", "dense autoencoder", {"kind": "dense"}),
    ("conv", "convolutional autoencoder", {"kind": "conv"}),
    ("denoising", "denoising dense autoencoder", {"kind": "dense", "noise": "gaussian"}),
    ("sparse", "sparse autoencoder (L1 on the code)", {"kind": "sparse"}),
    ("vae", "variational autoencoder", {"kind": "vae", "loss": "bce"}),
)

_IMAGES = (
    ("reconstructions.png", "Test digits and each model's reconstruction; below, the same digits with noise "
     "added and the denoising autoencoder's output."),
    ("loss_curves.png", "Training and validation loss per epoch (the VAE's is the negative ELBO per pixel)."),
    ("ae_vs_pca.png", "Test MSE against code size: a dense autoencoder, PCA (linear), and predicting the "
     "mean training image."),
    ("samples.png", "The VAE's samples: codes drawn from N(0, I), decoded."),
)  # fmt: skip


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Train the demo models, print the summary table, write the report into ``out_dir``; return the figures.

    The figures (also in ``summary.json``): per model its code size, parameters, train seconds, test MSE
    and PSNR, and PCA's MSE at the same code size; the autoencoder-vs-PCA curve; the denoising figures.
    ``quick`` trains tiny models for a few epochs: for tests, not for looking at.
    """
    from rich.console import Console

    from aekit import threads
    from aekit.data import load
    from aekit.reports import page

    out_dir = Path(out_dir)
    plan = QUICK if quick else FULL
    console = Console()
    # These models are tiny: splitting each small matrix product over threads costs more than it saves,
    # and on a busy machine far more (measured: 12x slower per epoch with 2 threads on 2 shared cores).
    # One thread for everything here, PCA included; the caller's setting comes back afterwards.
    with threads.requested(1), console.status("Loading the data...") as status:

        def say(step: str) -> None:
            status.update(step)
            if not console.is_terminal:  # no spinner in a log or a pipe: a line per step instead
                console.print(step)

        started = time.perf_counter()
        say("Loading the data...")
        data = load(DATASET)
        fitted, seconds, curve = _train(plan, data.x_train, data.x_test, say)
        say("Writing the report...")
        page.write_report(out_dir / "report.html", fitted[REPORT_MODEL], data, name=REPORT_MODEL)
        figures = _write_report(out_dir, data.x_train, data.x_test, fitted, seconds, curve, quick, started)
    _print_summary(console, figures)
    return figures


def _train(
    plan: Plan, x_train: np.ndarray, x_test: np.ndarray, say: Callable[[str], Any]
) -> tuple[dict, dict, dict]:
    """Fit every model and the curve; return (estimators, train seconds, curve figures)."""
    from aekit import AutoEncoder
    from aekit.reports import compare

    common = {
        "epochs": plan.epochs,
        "batch_size": 64,
        "lr": 1e-2,
        "random_state": 0,
        "noise_level": NOISE_LEVEL,
    }
    fitted: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    def fit(label: str, params: dict[str, Any]) -> tuple[Any, float]:
        say(f"Training a {label}...")
        t0 = time.perf_counter()
        estimator = AutoEncoder(**common, **params).fit(x_train)
        return estimator, time.perf_counter() - t0

    # The curve: a dense autoencoder and PCA at each code size, both scored on the test digits.
    sizes = sorted({*plan.curve_sizes, CODE_SIZE})
    curve: dict[str, list] = {"code_sizes": sizes, "autoencoder_mse": [], "pca_mse": [], "train_seconds": []}
    for k in sizes:
        estimator, secs = fit(f"dense autoencoder with code size {k}", _dense(plan, k))
        curve["autoencoder_mse"].append(pieces.mse(estimator.reconstruct(x_test), x_test))
        curve["train_seconds"].append(secs)
        if k == CODE_SIZE:
            fitted["dense"], seconds["dense"] = estimator, secs
    # PCA scored as 'aekit eval' and report.html score it (clipped to the data's range), so the same
    # figure shows on every page
    spec = fitted["dense"].spec_
    flat_train = spec.to_model(x_train).reshape(len(x_train), -1)
    curve["pca_mse"] = compare.pca_errors(spec, flat_train, spec.to_model(x_test), sizes)

    for name, label, params in MODELS:
        if name not in fitted:
            settings = {**_dense(plan, CODE_SIZE), **params}
            if params["kind"] == "conv":
                settings["hidden"] = plan.conv_hidden
            fitted[name], seconds[name] = fit(label, settings)
    return fitted, seconds, curve


def _dense(plan: Plan, code_size: int) -> dict[str, Any]:
    settings: dict[str, Any] = {"kind": "dense", "code_size": code_size}
    if plan.dense_hidden is not None:
        settings["hidden"] = plan.dense_hidden
    return settings


def _write_report(out_dir, x_train, x_test, fitted, seconds, curve, quick, started) -> dict[str, Any]:
    """Score the fitted models, draw the figures, write every file; return the figures."""
    import sklearn
    import torch

    from aekit import __version__

    pca_at = dict(zip(curve["code_sizes"], curve["pca_mse"], strict=True))
    recons = {name: est.reconstruct(x_test) for name, est in fitted.items()}
    models = {}
    for name, label, _ in MODELS:
        est, test_mse = fitted[name], pieces.mse(recons[name], x_test)
        models[name] = {
            "description": label,
            "kind": est.kind,
            "code_size": est.code_size,
            "parameters": pieces.n_parameters(est),
            "epochs": len(est.history_),
            "train_seconds": seconds[name],
            "test_mse": test_mse,
            "test_psnr": pieces.psnr(test_mse),  # the data lie in [0, 1]: peak 1
            "pca_mse": pca_at[est.code_size],
        }

    # The denoiser and the plain dense model, both given the same noisy test digits.
    noise = NOISE_LEVEL * np.random.default_rng(0).standard_normal(x_test.shape)
    noisy = np.clip(x_test + noise, 0.0, 1.0).astype(np.float32)
    denoised = fitted["denoising"].reconstruct(noisy)
    figures: dict[str, Any] = {
        "dataset": DATASET,
        "quick": quick,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "mean_image_mse": pieces.mse(np.broadcast_to(x_train.mean(axis=0), x_test.shape), x_test),
        "models": models,
        "ae_vs_pca": curve,
        "denoising": {
            "noise": "gaussian",
            "noise_level": NOISE_LEVEL,
            "noisy_input_mse": pieces.mse(noisy, x_test),
            "denoising_mse": pieces.mse(denoised, x_test),
            "dense_on_noisy_mse": pieces.mse(fitted["dense"].reconstruct(noisy), x_test),
        },
        "device": fitted["dense"].device_,
        "versions": {"aekit": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__},
    }  # fmt: skip

    rows = [("input", x_test[:N_SHOWN])]
    rows += [(name, recons[name][:N_SHOWN]) for name, _, _ in MODELS if name != "denoising"]
    rows += [("noisy input", noisy[:N_SHOWN]), ("denoised", denoised[:N_SHOWN])]
    pieces.image_rows(out_dir / "reconstructions.png", rows)
    pieces.loss_curves(
        out_dir / "loss_curves.png",
        {name: fitted[name].history_ for name, _, _ in MODELS},
        {name: pieces.loss_label(fitted[name]) for name, _, _ in MODELS},
    )
    pieces.code_size_curve(
        out_dir / "ae_vs_pca.png",
        curve["code_sizes"],
        {"dense autoencoder": curve["autoencoder_mse"], "PCA": curve["pca_mse"]},
        baseline=figures["mean_image_mse"],
    )
    pieces.image_grid(out_dir / "samples.png", pieces.vae_samples(fitted["vae"], N_SAMPLES, seed=0))
    figures["seconds"] = time.perf_counter() - started
    pieces.write_json(out_dir / "summary.json", figures)
    title = f"aekit demo: autoencoders on {DATASET}"
    header, table = _table(figures)
    pieces.write_index(out_dir / "index.html", title, header, table, images=_IMAGES, notes=_notes(figures))
    figures["report"] = str(out_dir / "index.html")
    return figures


def _table(figures: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "code", "params", "train s", "test MSE", "PSNR dB", "PCA MSE"]
    rows = [
        [name, str(m["code_size"]), f"{m['parameters']:,}", f"{m['train_seconds']:.1f}",
         f"{m['test_mse']:.4g}", f"{m['test_psnr']:.1f}", f"{m['pca_mse']:.4g}"]
        for name, m in figures["models"].items()
    ]  # fmt: skip
    return header, rows


def _notes(figures: dict[str, Any]) -> list[str]:
    d, curve, versions = figures["denoising"], figures["ae_vs_pca"], figures["versions"]
    baseline = figures["mean_image_mse"]

    def numbers(values: list[float]) -> str:
        return ", ".join(f"{v:.4g}" for v in values)

    return [
        f"{figures['n_train']} training and {figures['n_test']} test digits (8x8, values in [0, 1]); "
        f"PSNR from the MSE with peak 1. Predicting the mean training image: MSE {baseline:.4g}.",
        f"Test MSE at code sizes {', '.join(map(str, curve['code_sizes']))}: dense autoencoder "
        f"{numbers(curve['autoencoder_mse'])}; PCA {numbers(curve['pca_mse'])}.",
        f"Denoising (Gaussian noise, sigma {d['noise_level']}): noisy input MSE {d['noisy_input_mse']:.4g}; "
        f"denoising autoencoder {d['denoising_mse']:.4g}; plain dense one {d['dense_on_noisy_mse']:.4g}.",
        f"Trained on {figures['device']} in {figures['seconds']:.1f} s with aekit {versions['aekit']}, "
        f"torch {versions['torch']}.",
        f"report.html beside this page: the {REPORT_MODEL} alone in one self-contained file (aekit report).",
    ]


def _print_summary(console: Any, figures: dict[str, Any]) -> None:
    from rich.table import Table

    header, rows = _table(figures)
    table = Table(
        title=f"aekit demo: {figures['n_train']} training, {figures['n_test']} test {figures['dataset']}",
        caption=f"PSNR with peak 1. Predicting the mean training image: MSE {figures['mean_image_mse']:.4g}.",
    )
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for note in _notes(figures)[1:3]:
        console.print(note)
    console.print(f"Report: {figures['report']} (and report.html beside it: the {REPORT_MODEL} in one file)")
