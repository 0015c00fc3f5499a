"""Ordered codes on MNIST: one nested-dropout model's error curve against one model per code size.

    PYTHONPATH=src .venv/bin/python bench/ordered_mnist.py              # 10,000 training images, < 20 CPU min
    PYTHONPATH=src .venv/bin/python bench/ordered_mnist.py --render     # the .md again from the .json

On a seeded random subset of MNIST's training images (``--train``, default 10,000) and the full 10,000-image
test set, with torch at one thread:

1. ``compare_with_pca(..., ordered=True)`` (what ``aekit compare --ordered`` runs): one
   ``AutoEncoder(kind="dense", code_size=32, ordered=True, random_state=0)``, everything else default,
   scored at every prefix length 1..32; one PCA fit, scored at every number of components 1..32.
2. ``compare_with_pca(...)`` (``aekit compare``): one ``AutoEncoder(kind="dense", code_size=k,
   random_state=0)`` per size k in 2,4,8,16,32, everything else default (loss "auto" = BCE for images,
   epochs "auto" = about 4000 steps with early stopping).
3. ``AutoEncoder(kind="dense", code_size="auto", random_state=0)``: the width it keeps (5% tolerance).

The issue's target: the one-model curve within 10% of one model per size at every size measured. Test MSE per
pixel on [0, 1]. Writes bench/results/ordered_mnist.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

from machine import (  # bench/machine.py: the script's folder is on sys.path
    git_version,
    machine,
    mnist_subset,
    save_results,
)

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
NAME = "ordered_mnist"
SIZES = (2, 4, 8, 16, 32)
TARGET = 1.10  # one ordered model's error at most 10% above one model per size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=int, default=10_000, help="training images (default: %(default)s)")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    if args.render:
        doc = json.loads((RESULTS / f"{NAME}.json").read_text())
        save_results(RESULTS, NAME, doc, markdown(doc))
        return

    import numpy as np
    import sklearn
    import torch

    import aekit
    from aekit import AutoEncoder
    from aekit.reports.compare import compare_with_pca

    torch.set_num_threads(1)
    x_train, x_test, y_test = mnist_subset(args.train)

    def timed(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        return result, {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}

    say = lambda text: print(text, flush=True)  # noqa: E731
    common = {"kind": "dense", "random_state": 0, "device": "cpu", "progress": say}
    one, one_time = timed(lambda: compare_with_pca(x_train, x_test, y_test, SIZES, ordered=True, **common))
    each, each_time = timed(lambda: compare_with_pca(x_train, x_test, y_test, SIZES, **common))
    auto, auto_time = timed(lambda: AutoEncoder(kind="dense", code_size="auto", random_state=0).fit(x_train))
    test = x_test.reshape(len(x_test), -1) / 255.0
    auto_mse = float(np.mean((auto.reconstruct(x_test).reshape(len(x_test), -1) / 255.0 - test) ** 2))

    rows = []
    for a, b in zip(one.rows, each.rows, strict=True):
        rows.append(
            {
                "code_size": a.code_size,
                "one_model_mse": a.ae_mse,
                "per_size_mse": b.ae_mse,
                "ratio": a.ae_mse / b.ae_mse,
                "pca_mse": a.pca_mse,
                "one_model_nmi": a.ae_nmi,
                "per_size_nmi": b.ae_nmi,
                "pca_nmi": a.pca_nmi,
                "per_size_epochs": b.epochs,
                "per_size_train_s": b.ae_train_seconds,
            }
        )
    doc = {
        "benchmark": NAME,
        "command": f"PYTHONPATH=src .venv/bin/python bench/ordered_mnist.py --train {args.train}",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "commit": git_version(),
        "machine": {**machine(), "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()},
        "versions": {"aekit": aekit.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
        "settings": {
            "n_train": len(x_train),
            "n_test": len(x_test),
            "ordered": "AutoEncoder(kind='dense', code_size=32, ordered=True, random_state=0)",
            "per_size": "AutoEncoder(kind='dense', code_size=k, random_state=0)",
            "defaults": "loss 'auto' (BCE), epochs 'auto', batch 128, lr 6e-3 onecycle, 10% validation, "
            "patience 5, hidden (512, 256)",
        },
        "target_ratio": TARGET,
        "rows": rows,
        "ordered_epochs": len(one.rows) and one.rows[0].epochs,
        "curves": one.curves,
        "mean_mse": one.mean_mse,
        "auto": {
            "code_size": auto.code_size_,
            "units": auto.model_.config.code_size,
            "tolerance": auto.code_tolerance,
            "test_mse": auto_mse,
            "validation_curve": [float(v) for v in auto.reconstruction_curve_],
        },
        "times": {"ordered_compare": one_time, "per_size_compare": each_time, "auto_fit": auto_time},
    }
    save_results(RESULTS, NAME, doc, markdown(doc))


def markdown(doc: dict) -> str:
    rows, t, m = doc["rows"], doc["times"], doc["machine"]
    worst = max(rows, key=lambda r: r["ratio"])
    met = all(r["ratio"] <= doc["target_ratio"] for r in rows)
    cpu = sum(v["cpu_s"] for v in t.values()) / 60
    lines = [
        "# Ordered codes on MNIST: one model for every code size vs one model per size",
        "",
        f"{doc['date']}, {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
        f"{m['load_average'][0]:.1f}), torch {doc['versions']['torch']} at {m['torch_threads']} thread; "
        f"commit {doc['commit']}. Whole run {cpu:.1f} CPU minutes.",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"{doc['settings']['n_train']} training images (a seeded random subset), the "
        f"{doc['settings']['n_test']} test images; test MSE per pixel on [0, 1] (predicting the mean "
        "training image: "
        f"{doc['mean_mse']:.5f}). One ordered model: `{doc['settings']['ordered']}`, "
        f"{doc['ordered_epochs']} epochs; one model per size: `{doc['settings']['per_size']}`; defaults "
        f"otherwise ({doc['settings']['defaults']}). NMI: k-means with 10 clusters (4 restarts) on the test "
        "codes, against the digit labels.",
        "",
        "| code size | one ordered model MSE | one model per size MSE | ratio | PCA MSE | one-model NMI "
        "| per-size NMI | PCA NMI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['code_size']} | {r['one_model_mse']:.5f} | {r['per_size_mse']:.5f} | {r['ratio']:.3f} | "
            f"{r['pca_mse']:.5f} | {r['one_model_nmi']:.3f} | {r['per_size_nmi']:.3f} | {r['pca_nmi']:.3f} |"
        )
    verdict = (
        "**Target met**: within 10% of one model per size at every size measured."
        if met
        else f"**Target missed**: the worst size is {worst['code_size']}, where the one ordered model's "
        f"error is {100 * (worst['ratio'] - 1):.0f}% above its own model's (target: 10%)."
    )
    a = doc["auto"]
    lines += [
        "",
        verdict,
        "",
        f'`code_size="auto"` ({a["units"]} units trained, tolerance {a["tolerance"]:.0%}) keeps '
        f"{a['code_size']} units; test MSE {a['test_mse']:.5f}.",
        "",
        f"CPU time: ordered comparison {t['ordered_compare']['cpu_s'] / 60:.1f} min (one model, one PCA, "
        f"both curves, k-means), per-size comparison {t['per_size_compare']['cpu_s'] / 60:.1f} min (five "
        f'models, five PCAs, k-means), `code_size="auto"` fit {t["auto_fit"]["cpu_s"] / 60:.1f} min.',
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
