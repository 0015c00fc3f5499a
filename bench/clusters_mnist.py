"""Clusters of codes on MNIST: ``aekit embed --clusters`` against PCA + k-means of the same width, by NMI.

    PYTHONPATH=src .venv/bin/python bench/clusters_mnist.py             # < 10 CPU minutes on one core
    PYTHONPATH=src .venv/bin/python bench/clusters_mnist.py --render    # the .md again from the .json

Trains a default ``AutoEncoder(random_state=0)`` (dense, 32-unit code, everything else default) on a seeded
random subset of MNIST's training images (``--train``, default 10,000), with torch at one thread, and runs
``aekit embed MODEL mnist --split test -o codes.npz --clusters K`` in this process for K = 10 (the digits)
and K = auto (silhouette over 2..15 on 3000 codes). PCA with 32 components, fitted on the same training
images, gives the test codes that ``aekit.cluster_codes`` clusters the same two ways. Both are scored by
NMI (and ARI) against the 10,000 test labels. Writes bench/results/clusters_mnist.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
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
NAME = "clusters_mnist"
WIDTH = 32  # the default code size, and PCA's components


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
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import aekit
    from aekit import AutoEncoder, cluster_codes
    from aekit.cli.main import main as aekit_main
    from aekit.clusters import choose_k

    torch.set_num_threads(1)
    x_train, x_test, y_test = mnist_subset(args.train)
    cpu_start, wall_start = time.process_time(), time.perf_counter()

    def scores(labels) -> dict:
        return {
            "k": int(len(np.unique(labels))),
            "nmi": float(normalized_mutual_info_score(y_test, labels)),
            "ari": float(adjusted_rand_score(y_test, labels)),
        }

    results: dict[str, dict] = {"autoencoder": {}, "pca": {}}
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "model.aek"
        cpu = time.process_time()
        ae = AutoEncoder(random_state=0).fit(x_train)
        ae.save(model)
        train_cpu = time.process_time() - cpu
        for k in ("10", "auto"):
            out = Path(folder) / f"codes_{k}.npz"
            argv = ["embed", str(model), "mnist", "--split", "test", "-o", str(out), "--clusters", k]
            argv += ["--device", "cpu", "--quiet"]
            cpu = time.process_time()
            if aekit_main(argv) != 0:
                raise SystemExit(f"aekit {' '.join(argv)} failed")
            with np.load(out) as saved:
                labels = saved["cluster"]
                codes = saved["x"]
            results["autoencoder"][k] = {**scores(labels), "cpu_s": time.process_time() - cpu}
        _, ae_silhouettes = choose_k(codes)

    pca = PCA(WIDTH, random_state=0).fit(x_train.reshape(len(x_train), -1) / 255.0)
    pca_codes = pca.transform(x_test.reshape(len(x_test), -1) / 255.0)
    for k in ("10", "auto"):
        cpu = time.process_time()
        labels = cluster_codes(pca_codes, int(k) if k.isdigit() else k)
        results["pca"][k] = {**scores(labels), "cpu_s": time.process_time() - cpu}
    _, pca_silhouettes = choose_k(pca_codes)

    doc = {
        "benchmark": NAME,
        "command": f"PYTHONPATH=src .venv/bin/python bench/clusters_mnist.py --train {args.train}",
        "embed_command": "aekit embed model.aek mnist --split test -o codes.npz --clusters 10|auto "
        "(run in-process)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "commit": git_version(),
        "machine": {**machine(), "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()},
        "versions": {"aekit": aekit.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
        "settings": {
            "n_train": len(x_train),
            "n_test": len(x_test),
            "model": "AutoEncoder(random_state=0): dense, code_size 32, loss 'auto' (BCE), epochs 'auto'",
            "epochs": len(ae.history_),
            "pca": f"PCA({WIDTH}) on the same training images / 255",
            "kmeans": "k-means++, 4 restarts, seed 0, fitted on every test code",
        },
        "results": results,
        "silhouettes": {"autoencoder": ae_silhouettes, "pca": pca_silhouettes},
        "train_cpu_s": train_cpu,
        "total_cpu_s": time.process_time() - cpu_start,
        "total_wall_s": time.perf_counter() - wall_start,
    }
    save_results(RESULTS, NAME, doc, markdown(doc))


def markdown(doc: dict) -> str:
    m, r = doc["machine"], doc["results"]
    lines = [
        "# Clusters of codes on MNIST: `aekit embed --clusters` vs PCA + k-means",
        "",
        f"{doc['date']}, {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
        f"{m['load_average'][0]:.1f}), torch {doc['versions']['torch']} at {m['torch_threads']} thread; "
        f"commit {doc['commit']}. Whole run {doc['total_cpu_s'] / 60:.1f} CPU minutes "
        f"({doc['total_wall_s'] / 60:.1f} min wall), training {doc['train_cpu_s'] / 60:.1f} of them.",
        "",
        f"Command: `{doc['command']}`, which runs `{doc['embed_command']}`.",
        "",
        f"Model: `{doc['settings']['model']}` ({doc['settings']['epochs']} epochs) on "
        f"{doc['settings']['n_train']} training images (a seeded random subset); {doc['settings']['pca']}. "
        f"Clustered: the {doc['settings']['n_test']} test images' codes ({doc['settings']['kmeans']}); "
        "auto: k from 2 to 15 by mean silhouette on 3000 of the codes. Scored against the digit labels.",
        "",
        "| codes (width 32) | clusters | k | NMI | ARI |",
        "|---|---|---|---|---|",
    ]
    for method, name in (("autoencoder", "dense autoencoder"), ("pca", "PCA")):
        for k in ("10", "auto"):
            s = r[method][k]
            lines.append(f"| {name} | {k} | {s['k']} | {s['nmi']:.3f} | {s['ari']:.3f} |")
    for method in ("autoencoder", "pca"):
        sil = doc["silhouettes"][method]
        best = sorted(sil.items(), key=lambda kv: -kv[1])[:3]
        lines += [
            "",
            f"Silhouettes, {method}: " + ", ".join(f"k={k}: {v:.3f}" for k, v in best) + " (best 3).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
