"""``aekit probe`` on MNIST, recorded: linear-probe accuracy and k-means NMI of every layer, beside PCA.

    PYTHONPATH=src .venv/bin/python bench/probe_mnist.py            # train (about 2 min here) and probe
    PYTHONPATH=src .venv/bin/python bench/probe_mnist.py --render   # .md from the .json again

Writes the first 10,000 MNIST training images (and labels) to runs/probe_mnist/mnist10k.npz, then runs in
this process, with torch at one thread (the machine's two cores are shared):

    aekit train --data runs/probe_mnist/mnist10k.npz --out runs/probe_mnist/dense.aek --device cpu --quiet
    aekit probe runs/probe_mnist/dense.aek --data mnist --out bench/results/probe_mnist --device cpu

a dense autoencoder with every default (code 32, hidden 512,256, loss auto = bce, epochs auto), and the
probe with its defaults (at most 5000 test images probed, seed 0; PCA fitted on 5000 of the 60,000
training images). Records command, machine, versions, date and timings in
bench/results/probe_mnist.{json,md}; probe.json and probe.png are in bench/results/probe_mnist/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import time
from pathlib import Path

from machine import git_version, machine, save_results  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
WORK = Path("runs") / "probe_mnist"
N_TRAIN = 10_000


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--render", action="store_true", help="only rewrite probe_mnist.md from its .json")
    args = parser.parse_args()
    if args.render:
        result = json.loads((RESULTS / "probe_mnist.json").read_text())
        (RESULTS / "probe_mnist.md").write_text(markdown(result))
        return

    import numpy as np
    import sklearn
    import torch

    import aekit
    from aekit.cli.main import main as aekit_main
    from aekit.data import load

    torch.set_num_threads(1)
    os.chdir(ROOT)
    WORK.mkdir(parents=True, exist_ok=True)
    mnist = load("mnist")
    np.savez(WORK / "mnist10k.npz", x_train=mnist.x_train[:N_TRAIN], y_train=mnist.y_train[:N_TRAIN])
    train = ["train", "--data", str(WORK / "mnist10k.npz"), "--out", str(WORK / "dense.aek")]
    train += ["--runs", str(WORK / "runs"), "--device", "cpu", "--quiet"]
    probe = ["probe", str(WORK / "dense.aek"), "--data", "mnist", "--out", "bench/results/probe_mnist"]
    probe += ["--device", "cpu"]
    load_before = os.getloadavg()
    seconds, outputs = {}, {}
    for name, argv in (("train", train), ("probe", probe)):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            status = aekit_main(argv)
        seconds[name] = round(time.perf_counter() - started, 1)
        outputs[name] = printed.getvalue()
        print(outputs[name], end="")
        if status != 0:
            raise SystemExit(status)
    history = aekit.AutoEncoder.load(WORK / "dense.aek").history_
    result = {
        "benchmark": "probe_mnist",
        "commands": [
            f"first {N_TRAIN} MNIST training images and labels -> {WORK / 'mnist10k.npz'}",
            "aekit " + " ".join(train),
            "aekit " + " ".join(probe),
            "(run in-process by bench/probe_mnist.py, torch 1 thread)",
        ],
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "machine": {
            **machine(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before_and_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "note": "shared 2-core VM with other engineers' jobs running: timings are under contention",
        },
        "versions": {
            "aekit": aekit.__version__,
            "git": git_version(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "seconds": seconds,
        "epochs_trained": len(history),
        "final": history[-1],
        "table": outputs["probe"],
        "probe": json.loads((RESULTS / "probe_mnist" / "probe.json").read_text()),
    }
    save_results(RESULTS, "probe_mnist", result, markdown(result))


def markdown(result: dict) -> str:
    p, m = result["probe"], result["machine"]
    rows = {r["name"]: r for r in p["rows"]}
    lines = [
        "# `aekit probe` on MNIST: what each layer of a dense autoencoder knows about the digits",
        "",
        f"{result['date']}, {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
        f"{m['load_average_before_and_after'][0]} before, {m['load_average_before_and_after'][1]} after), "
        f"torch {result['versions']['torch']} at 1 thread, scikit-learn {result['versions']['sklearn']}, "
        f"aekit {result['versions']['aekit']} ({result['versions']['git']}).",
        "",
        "Commands (`bench/probe_mnist.py` runs them in-process):",
        "",
        "```",
        *result["commands"],
        "```",
        "",
        f"Training: every default (dense, code 32, hidden 512,256, loss auto = bce on pixels / 255, epochs "
        f"auto) on {N_TRAIN:,} training images, {result['epochs_trained']} epochs, final val_loss "
        f"{result['final'].get('val_loss', float('nan')):.4f}, {result['seconds']['train']:.0f} s. Probe: "
        f"{result['seconds']['probe']:.0f} s.",
        "",
        f"Probed: {p['n_probe_fit'] + p['n_probe_score']:,} of the 10,000 test images (seed 0); logistic "
        "regression (features centred and divided by their overall RMS) fitted on "
        f"{p['n_probe_fit']:,} and scored on "
        f"{p['n_probe_score']:,}; k-means (k = {p['n_classes']}, 4 restarts) on all of them, NMI against the "
        f"labels. PCA of each layer's width (at most 784 components) fitted on {p['n_pca_train']:,} training "
        "images. The input row is the pixels / 255 the model sees.",
        "",
        "| layer | width | probe accuracy | k-means NMI | PCA same width: accuracy | PCA NMI |",
        "|---|---|---|---|---|---|",
    ]
    for r in p["rows"]:
        if r["source"] == "pca":
            continue
        pca = rows.get(r["pca"]) if r["pca"] else None
        beside = f"{pca['probe_accuracy']:.3f} | {pca['kmeans_nmi']:.3f}" if pca else "- | -"
        lines.append(
            f"| {r['name']} | {r['width']} | {r['probe_accuracy']:.3f} | {r['kmeans_nmi']:.3f} | {beside} |"
        )
    lines += [
        "",
        "Chart: `probe_mnist/probe.png`; every figure: `probe_mnist/probe.json` and `probe_mnist.json`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
