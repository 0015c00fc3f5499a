"""Autoencoder vs PCA on MNIST: test reconstruction MSE by code size, with default settings.

    PYTHONPATH=src .venv/bin/python bench/mnist_vs_pca.py                 # code sizes 2,4,8,16,32,64
    PYTHONPATH=src .venv/bin/python bench/mnist_vs_pca.py --sizes 32      # just the headline figure

For each code size: scikit-learn's PCA and aekit's conv AutoEncoder with default settings (only
code_size and random_state given), both fitted on the 60,000 training images and scored on the 10,000
test images as per-pixel MSE on [0, 1]. Writes bench/results/mnist_vs_pca.{json,md}.
The issue's target: at code size 32, AE MSE <= 0.25 x PCA MSE within 3 minutes of training on 2 cores.

This machine's speed drifts by 2x or more over an hour (a shared virtual machine), so the time budget is
also checked as a ratio against a reference measured in the same run, before and after the curve: the
issue's "plain conv AE of about 256k parameters, 5 epochs (45 s here)", trained by a hand-written loop.
3 minutes = 4 x that reference, so aekit's training time must stay <= 4.0 x the reference's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import numpy as np
from machine import machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))


def reference_seconds(images: np.ndarray) -> float:
    """Time 5 epochs of a plain PyTorch conv AE (~241k parameters, Adam 1e-3, batch 128) on ``images``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 32),
        nn.Linear(32, 64 * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (64, 7, 7)),
        nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 3, 2, 1, output_padding=1),
        nn.Sigmoid(),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)
    started = time.perf_counter()
    for _ in range(5):
        shuffled = x[torch.randperm(len(x))]
        for i in range(0, len(x), 128):
            batch = shuffled[i : i + 128]
            loss = nn.functional.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    import sklearn
    import torch
    from sklearn.decomposition import PCA

    import aekit
    from aekit import AutoEncoder
    from aekit.data import load

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2,4,8,16,32,64")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "mnist_vs_pca"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    mnist = load("mnist")
    train = mnist.x_train.reshape(len(mnist.x_train), -1).astype(np.float32) / 255
    test = mnist.x_test.reshape(len(mnist.x_test), -1).astype(np.float32) / 255
    reference = [reference_seconds(mnist.x_train)]
    print(json.dumps({"reference_seconds": round(reference[0], 1)}), flush=True)
    rows = []
    for k in sizes:
        pca = PCA(n_components=k, random_state=0).fit(train)
        pca_mse = float(np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2))
        started = time.perf_counter()
        # loss="mse": the default when these figures were recorded (loss="auto", BCE on images, since
        # 2026-12-07; bench/results/loss_auto_mnist.md); pinned so the command reproduces them.
        ae = AutoEncoder(kind="conv", code_size=k, loss="mse", random_state=0).fit(mnist.x_train)
        seconds = time.perf_counter() - started
        recon = ae.reconstruct(mnist.x_test).reshape(len(test), -1).astype(np.float32) / 255
        ae_mse = float(np.mean((recon - test) ** 2))
        row = {
            "code_size": k,
            "pca_mse": pca_mse,
            "ae_mse": ae_mse,
            "ratio": ae_mse / pca_mse,
            "train_seconds": round(seconds, 1),
            "epochs": len(ae.history_),
            "parameters": sum(p.numel() for p in ae.model_.parameters()),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    reference.append(reference_seconds(mnist.x_train))
    budget = 4.0 * float(np.mean(reference))  # "3 minutes" where the reference takes 45 s
    for row in rows:
        row["time_vs_reference"] = round(row["train_seconds"] / float(np.mean(reference)), 2)

    result = {
        "benchmark": "mnist_vs_pca",
        "command": "PYTHONPATH=src .venv/bin/python bench/mnist_vs_pca.py --sizes " + args.sizes,
        "date": datetime.date.today().isoformat(),
        "machine": {
            **machine(),
            "torch_threads": torch.get_num_threads(),
        },
        "versions": {
            "aekit": aekit.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "settings": "AutoEncoder(kind='conv', code_size=k, loss='mse', random_state=0), all else default",
        "reference": {
            "what": "plain conv AE, ~241k params, 5 epochs, hand-written loop; 45 s in the issue",
            "seconds_before_and_after": [round(r, 1) for r in reference],
            "budget_seconds": round(budget, 1),
            "budget_rule": "4.0 x reference (180 s / 45 s)",
        },
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "| code size | PCA test MSE | AE test MSE | AE / PCA | AE train s | train s / reference | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['code_size']} | {r['pca_mse']:.5f} | {r['ae_mse']:.5f} | {r['ratio']:.3f} | "
        f"{r['train_seconds']} | {r['time_vs_reference']} | {r['epochs']} |"
        for r in rows
    ]
    lines += [
        "",
        f"Reference (plain conv AE, ~241k parameters, 5 epochs; 45 s in the issue) took "
        f"{', '.join(f'{r:.1f}' for r in reference)} s before/after the curve in this run; the "
        f"3-minute budget scales to 4.0 x its mean = {budget:.0f} s.",
    ]
    header = (
        f"MNIST test MSE per pixel on [0, 1]; {result['date']}, {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores; `{result['command']}`\n\n"
    )
    out.with_suffix(".md").write_text(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
