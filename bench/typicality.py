"""Typicality (aekit.typicality): its cost, and whether it tells data a model knows from data it does not.

Run from the repository root:

    PYTHONPATH=src .venv/bin/python bench/typicality.py            # ~8 min on 2 busy cores
    PYTHONPATH=src .venv/bin/python bench/typicality.py --quick    # smoke check, writes nothing

A conv autoencoder (the default, code size 32) is trained on --train MNIST training images for --epochs
epochs (few, to keep the run short: the typicality pass is a fixed cost, so its share of a full-length fit
is smaller still).
Measured:

- **cost at fit**: the seconds of the typicality pass at the end of fit (forward passes over up to 20k
  training rows, the quantiles, the code Gaussian) against the whole fit;
- **cost when applying**: ``reconstruct``/``transform`` with and without ``return_typicality=True`` on the
  10k test images (best of 3);
- **calibration**: the share of MNIST's test images flagged (less typical than 99.9% of the training
  data; ideally near 0.1% by each statistic), and the share flagged of inputs unlike the training data
  (ideally near 100%): the test digits moved 6 pixels right, inverted (dark on white), and uniform noise;
- the table model: the same on a small table and a table shifted 5 standard deviations.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aekit import AutoEncoder, __version__
from aekit.data import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import git_version, machine, save_results  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def flagged(ae: AutoEncoder, x: np.ndarray) -> dict[str, float]:
    """The share (%) of ``x`` flagged in all and by each statistic."""
    result = ae.typicality(x)
    shares = {name: float(100 * np.mean(p > result.limit)) for name, p in result.percentiles.items()}
    return {"any": float(100 * result.atypical.mean()), **shares}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=20_000, help="MNIST training images (default: 20000)")
    parser.add_argument("--quick", action="store_true", help="5000 training images, 1 epoch; writes nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)

    mnist = load("mnist")
    x_train, x_test = mnist.x_train[: args.train], mnist.x_test
    epochs = args.epochs
    if args.quick:
        x_train, x_test, epochs = x_train[:5000], x_test[:2000], 1
    ae = AutoEncoder(kind="conv", code_size=32, epochs=epochs, random_state=0)
    start = time.perf_counter()
    ae.fit(x_train)
    fit_s = time.perf_counter() - start
    rows = ae.spec_.to_model(
        x_train[np.random.default_rng(0).choice(len(x_train), min(20_000, len(x_train)), replace=False)]
    )
    measure_s = best_of(lambda: ae._measure_typicality(rows), 1)

    apply = {
        "reconstruct_s": best_of(lambda: ae.reconstruct(x_test)),
        "reconstruct_typicality_s": best_of(lambda: ae.reconstruct(x_test, return_typicality=True)),
        "transform_s": best_of(lambda: ae.transform(x_test)),
        "transform_typicality_s": best_of(lambda: ae.transform(x_test, return_typicality=True)),
    }
    noise = np.random.default_rng(1).integers(0, 256, size=(1000, 28, 28), dtype=np.uint8)
    calibration = {
        "mnist_train": flagged(ae, x_train[:10_000]),
        "mnist_test": flagged(ae, x_test),
        "mnist_test_shifted_6px": flagged(ae, np.roll(x_test, 6, axis=2)),  # digits off centre
        "mnist_test_inverted": flagged(ae, 255 - x_test),  # dark digits on white
        "uniform_noise": flagged(ae, noise),
    }

    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    table = (rng.normal(size=(20_000, 16)) @ mix).astype(np.float32)
    held = (rng.normal(size=(5000, 16)) @ mix).astype(np.float32)
    dense = AutoEncoder(code_size=4, epochs=1 if args.quick else 10, random_state=0)
    start = time.perf_counter()
    dense.fit(table)
    table_fit_s = time.perf_counter() - start
    table_measure_s = best_of(lambda: dense._measure_typicality(dense.spec_.to_model(table)), 1)
    shifted = held + 5 * table.std(axis=0)
    table_result = {
        "fit_s": table_fit_s,
        "typicality_s": table_measure_s,
        "held_out": flagged(dense, held),
        "shifted_5_sd": flagged(dense, shifted),
    }

    doc = {
        "date": datetime.date.today().isoformat(),
        "aekit": __version__,
        "commit": git_version(),
        "torch": torch.__version__,
        "machine": {**machine(), "torch_threads": 1},
        "mnist": {
            "train_images": len(x_train),
            "epochs": epochs,
            "fit_s": fit_s,
            "typicality_s": measure_s,
            "apply": apply,
            "flagged_percent": calibration,
        },
        "table": table_result,
    }
    md = [
        "# Typicality: cost and calibration (bench/typicality.py)",
        "",
        f"{doc['date']}, aekit {__version__} ({doc['commit']}), torch {torch.__version__}, "
        f"{doc['machine']['cpu']}, 1 torch thread.",
        "",
        f"Conv autoencoder (code 32) on {len(x_train)} MNIST images, {epochs} epochs: fit {fit_s:.1f} s, of "
        f"which the typicality pass {measure_s:.2f} s ({100 * measure_s / fit_s:.1f}%).",
        "",
        "| applying to 10k test images | plain | with typicality |",
        "|---|---|---|",
        f"| reconstruct | {apply['reconstruct_s']:.2f} s | {apply['reconstruct_typicality_s']:.2f} s |",
        f"| transform | {apply['transform_s']:.2f} s | {apply['transform_typicality_s']:.2f} s |",
        "",
        "| inputs | flagged (any) | by reconstruction | by code distance |",
        "|---|---|---|---|",
    ]
    for name, shares in calibration.items():
        md.append(
            f"| {name} | {shares['any']:.2f}% | {shares['reconstruction']:.2f}% | {shares['code']:.2f}% |"
        )
    md += [
        "",
        f"Table (20k x 16, dense, code 4): fit {table_fit_s:.1f} s, typicality pass {table_measure_s:.3f} s; "
        f"held-out rows flagged {table_result['held_out']['any']:.2f}%, rows shifted 5 sd "
        f"{table_result['shifted_5_sd']['any']:.1f}%.",
        "",
    ]
    text = "\n".join(md)
    print(text)
    if not args.quick:
        save_results(OUT, "typicality", doc, text)


if __name__ == "__main__":
    main()
