"""Scoring 1M rows x 30 columns with AnomalyDetector: peak memory and time, streamed and in chunks.

    PYTHONPATH=src .venv/bin/python bench/detect_memory.py             # 1M rows: ~10 min on 2 cores
    PYTHONPATH=src .venv/bin/python bench/detect_memory.py --rows 100000 --no-write   # smoke check

A float32 table (a rank-5 Gaussian bulk plus noise, 1% of rows shifted off it) is written to a temporary
.npy, and a detector with the default settings is trained on its first 20,000 rows. Each measurement runs
in a fresh process that loads the detector and scores a small array first (libraries, thread pools and
neighbour indexes in place), then resets its peak resident memory (``/proc/self/clear_refs``):

- **aekit detect**: ``aekit detect det.aek big.npy -o scores.npy`` (read with pread in chunks, written as
  it goes);
- **decision_function, chunked**: ``np.load`` of the whole table, then ``det.decision_function(x)``, which
  scores in chunks of ``SCORE_CHUNK_ROWS`` (65,536) rows;
- **decision_function, one pass**: the same with the chunking turned off (how it scored before issue 17).

Peak memory added is VmHWM after the reset less the resident set at the reset; for the two Python runs the
table itself (rows x 30 x 4 bytes) is part of it, and the table says what is left beyond it. The scores of
all three are compared (equal to 1e-6). Writes bench/results/detect_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from machine import git_version, machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 30
TRAIN_ROWS = 20_000

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import torch
    torch.set_num_threads(1)
    import aekit.estimators.anomaly as anomaly
    from aekit import AnomalyDetector
    from aekit.cli.main import main

    def status(field):  # MB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    model, data, out, mode = sys.argv[1:]
    det = AnomalyDetector.load(model)
    det.decision_function(np.zeros((256, 30), np.float32))  # libraries, threads, neighbour indexes in place
    if mode == "one_pass":
        anomaly.SCORE_CHUNK_ROWS = 10**12
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak so far is forgotten: VmHWM restarts at the resident set now
    before = status("VmRSS")
    started = time.perf_counter()
    if mode == "cli":
        code = main(["detect", model, data, "-o", out, "--quiet"])
    else:
        np.save(out, det.decision_function(np.load(data)))
        code = 0
    seconds = time.perf_counter() - started
    print(json.dumps({"code": code, "seconds": seconds, "rss_before_mb": before,
                      "growth_mb": status("VmHWM") - before}))
    """
)
MODES = {
    "cli": "aekit detect (streamed)",
    "chunked": "decision_function, chunked",
    "one_pass": "decision_function, one pass",
}


def write_table(path: Path, rows: int) -> np.ndarray:
    """The table as a float32 .npy written a slice at a time; returns the outlier labels."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, WIDTH)).astype(np.float32)
    labels = (rng.random(rows) < 0.01).astype(np.int64)
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (rows, WIDTH)}
        )
        for start in range(0, rows, 65536):
            n = min(65536, rows - start)
            x = rng.normal(size=(n, 5)).astype(np.float32) @ basis + 0.1 * rng.normal(size=(n, WIDTH))
            x += 3.0 * labels[start : start + n, None] * rng.normal(size=(n, WIDTH))
            x.astype(np.float32).tofile(f)
    return labels


def main() -> None:
    import torch
    from sklearn.metrics import roc_auc_score

    from aekit import AnomalyDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels = write_table(tmp / "big.npy", args.rows)
        train = np.load(tmp / "big.npy", mmap_mode="r")[:TRAIN_ROWS]
        det = AnomalyDetector(random_state=0).fit(np.asarray(train))
        det.save(tmp / "det.aek")
        runs, scores = {}, {}
        for mode in MODES:
            out = tmp / f"{mode}.npy"
            argv = [sys.executable, "-c", CHILD, str(tmp / "det.aek"), str(tmp / "big.npy"), str(out), mode]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise SystemExit(f"the {mode} run failed:\n{done.stderr[-3000:]}")
            runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            loaded = np.load(out)
            scores[mode] = loaded[:, 0] if loaded.ndim == 2 else loaded  # detect's .npy: (N, 2) score, label
            print(json.dumps({"mode": mode, **runs[mode]}), flush=True)
    table_mb = args.rows * WIDTH * 4 / 2**20
    doc = {
        "benchmark": "detect_memory",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "PYTHONPATH=src .venv/bin/python " + " ".join(["bench/detect_memory.py", *sys.argv[1:]]),
        "commit": git_version(),
        "machine": {**machine(), "torch_threads": 1},
        "rows": args.rows,
        "columns": WIDTH,
        "table_mb": table_mb,
        "auroc": float(roc_auc_score(labels, scores["cli"])),
        "same_scores": all(np.allclose(scores[m], scores["cli"], rtol=1e-6, atol=1e-6) for m in MODES),
        "runs": runs,
    }
    print(json.dumps(doc, indent=2))
    if not args.no_write:
        out = ROOT / "bench" / "results" / "detect_memory"
        out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
        lines = [
            "# Scoring a large table with AnomalyDetector: peak memory and time",
            "",
            f"{doc['date']}, commit {doc['commit']}, {doc['machine']['cpu']}, "
            f"{doc['machine']['cores']} cores, torch 1 thread; `{doc['command']}`",
            "",
            f"{args.rows} rows x {WIDTH} float32 columns ({table_mb:.0f} MB); detector with the default "
            f"settings trained on the first {TRAIN_ROWS} rows; AUROC on the whole table {doc['auroc']:.3f}; "
            f"the three give the same scores: {doc['same_scores']}.",
            "",
            "| how | seconds | rows/s | peak memory added | beyond the table |",
            "|---|---|---|---|---|",
        ]
        for mode, name in MODES.items():
            r = runs[mode]
            beyond = r["growth_mb"] - (0 if mode == "cli" else table_mb)
            lines.append(
                f"| {name} | {r['seconds']:.1f} | {args.rows / r['seconds']:.0f} | {r['growth_mb']:.0f} MB | "
                f"{beyond:.0f} MB |"
            )
        lines += [
            "",
            "- Peak memory added: VmHWM after /proc/self/clear_refs reset it, less the resident set then. "
            "`aekit detect` reads the file in chunks (pread) and writes the scores as it goes, so the table "
            "never is in its memory; the Python runs hold the table (np.load) and their own working memory.",
            "",
        ]
        out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
