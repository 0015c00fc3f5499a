"""``aekit compare`` on MNIST, recorded: autoencoder vs PCA by code size, 2-D maps, k-means NMI/ARI.

    PYTHONPATH=src .venv/bin/python bench/compare_mnist.py                      # dense, default epochs
    PYTHONPATH=src .venv/bin/python bench/compare_mnist.py --kind conv --epochs 3
    PYTHONPATH=src .venv/bin/python bench/compare_mnist.py --kind dense --render  # .md from the .json again

Runs exactly ``aekit compare --data mnist --code-sizes 2,4,8,16,32,64 --kind KIND --epochs EPOCHS
--out bench/results/compare_mnist/<kind>`` in this process with torch at one thread (the machine's two
cores are shared), then writes bench/results/compare_mnist/<kind>.{json,md}: the command, machine,
versions, date, wall time and the figures from the report's comparison.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

from machine import machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results" / "compare_mnist"


def main() -> None:
    import numpy as np
    import sklearn
    import torch

    import aekit
    from aekit.cli.main import main as aekit_main

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="dense")
    parser.add_argument("--epochs", default="auto")
    parser.add_argument("--sizes", default="2,4,8,16,32,64")
    parser.add_argument("--render", action="store_true", help="only rewrite <kind>.md from <kind>.json")
    args = parser.parse_args()
    if args.render:
        result = json.loads((RESULTS / f"{args.kind}.json").read_text())
        (RESULTS / f"{args.kind}.md").write_text(markdown(result, args.kind) + "\n")
        return

    torch.set_num_threads(1)
    out = RESULTS / args.kind
    argv = ["compare", "--data", "mnist", "--code-sizes", args.sizes, "--kind", args.kind]
    argv += ["--epochs", args.epochs, "--out", str(out.relative_to(ROOT)), "--device", "cpu"]
    os.chdir(ROOT)
    load_before = os.getloadavg()
    started = time.perf_counter()
    status = aekit_main(argv)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(status)

    comparison = json.loads((out / "comparison.json").read_text())
    result = {
        "benchmark": "compare_mnist",
        "command": "aekit " + " ".join(argv) + "  (run in-process by bench/compare_mnist.py, torch 1 thread)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "machine": {
            **machine(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before_and_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "note": "shared 2-core VM with three other engineers' jobs running: timings are under contention",
        },
        "versions": {
            "aekit": aekit.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "wall_seconds": round(seconds, 1),
        "comparison": comparison,
    }
    (RESULTS / f"{args.kind}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.kind}.md").write_text(markdown(result, args.kind) + "\n")


def markdown(result: dict, kind: str) -> str:
    c = result["comparison"]
    lines = [
        f"# `aekit compare` on MNIST ({kind} autoencoder vs PCA)",
        "",
        f"{result['date']}, {result['machine']['cpu']}, {result['machine']['cores']} cores shared with other "
        f"jobs (load average {result['machine']['load_average_before_and_after'][0]} before, "
        f"{result['machine']['load_average_before_and_after'][1]} after), torch "
        f"{result['versions']['torch']} at 1 thread; whole run {result['wall_seconds'] / 60:.1f} min.",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{c['n_train']} training and {c['n_test']} test images; test MSE per pixel on {c['unit']} "
        f"(predicting the mean training image: {c['mean_mse']:.5f}); k-means with {c['n_clusters']} clusters "
        "(k-means++, 4 restarts) on the 10,000 test codes of each method, scored against the digit labels.",
        "",
        "| code size | AE MSE | PCA MSE | AE / PCA | AE NMI | PCA NMI | AE ARI | PCA ARI | AE epochs "
        "| AE train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in c["rows"]:
        lines.append(
            f"| {r['code_size']} | {r['ae_mse']:.5f} | {r['pca_mse']:.5f} | "
            f"{r['ae_mse'] / r['pca_mse']:.3f} | {r['ae_nmi']:.3f} | {r['pca_nmi']:.3f} | "
            f"{r['ae_ari']:.3f} | {r['pca_ari']:.3f} | {r['epochs']} | {r['ae_train_seconds']:.0f} |"
        )
    lines += [
        "",
        f"Report folder: `{kind}/` (index.html, error_vs_code_size.png, latent_2d.png, codes_2d.npz, "
        "clustering_vs_code_size.png, comparison.json).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
