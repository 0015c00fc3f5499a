"""AnomalyDetector with its defaults vs PyOD's KNN, IForest, ECOD, LOF and AutoEncoder on the 21 ODDS sets.

    bench/.venv-pyod/bin/python bench/odds.py                      # every set and method, 3 seeds
    bench/.venv-pyod/bin/python bench/odds.py --sets cardio --seeds 1 --no-write   # smoke check
    bench/.venv-pyod/bin/python bench/odds.py --methods aekit aekit_semi --pyod-from bench/results/odds.json

Protocol (issue 17): fit on all of X (outliers included, labels unused), score the same X, AUROC against
y; the mean over seeds 0, 1, 2 (``random_state=seed`` for every method that takes one). aekit runs with
its defaults only (no per-set tuning), each PyOD detector with its own defaults, in the same process.
Seconds are fit + scoring of X (both libraries score X inside fit), torch at one thread for both.

Semi-supervised (``aekit_semi``): 5% of each set's anomalies (at least one) are given as known, y = 1 for
them and 0 for every other row; AUROC is taken on the other rows only, and the unsupervised detector of the
same seed is scored on those same rows for the gain (``aekit_unlabelled``).

Needs the benchmark venv with PyOD (bench/README.md); without PyOD only aekit is measured. ``--pyod-from``
copies PyOD's columns from an earlier results file (its date and command are recorded), to re-measure aekit
alone while choosing defaults; the figures the README reports come from one run measuring everything.
Writes bench/results/odds.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import git_version, machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
SETS = tuple(sorted(p.stem for p in (DATA / "odds").glob("*.npz")))
PYOD = ("pyod_knn", "pyod_iforest", "pyod_ecod", "pyod_lof", "pyod_ae")
LABELLED_SHARE = 0.05  # the share of each set's anomalies given as known for the semi-supervised fit


def known_anomalies(y: np.ndarray, seed: int) -> np.ndarray:
    """The rows whose label the semi-supervised fit is given: 5% of the anomalies (at least one)."""
    anomalies = np.flatnonzero(y == 1)
    count = max(1, round(LABELLED_SHARE * len(anomalies)))
    return np.sort(np.random.default_rng(1000 + seed).choice(anomalies, count, replace=False))


def pyod_makers() -> dict[str, Callable]:
    """PyOD's detectors with their defaults (only the seed set); empty when PyOD is not installed."""
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF
    except ImportError as exc:
        print(f"PyOD not measured: {exc}", file=sys.stderr)
        return {}
    return {
        "pyod_knn": lambda seed: KNN(),
        "pyod_iforest": lambda seed: IForest(random_state=seed),
        "pyod_ecod": lambda seed: ECOD(),
        "pyod_lof": lambda seed: LOF(),
        "pyod_ae": lambda seed: AutoEncoder(random_state=seed, verbose=0),
    }


def measure(method: str, make: Callable | None, X: np.ndarray, y: np.ndarray, seed: int, plain: dict) -> dict:
    """One fit of one method on one set: AUROC (and, for the semi-supervised run, its gain) and seconds.
    ``plain`` holds aekit's unsupervised scores by seed, for the semi-supervised run's comparison."""
    from sklearn.metrics import roc_auc_score

    from aekit import AnomalyDetector

    start = time.perf_counter()
    if method == "aekit":
        scores = plain[seed] = AnomalyDetector(random_state=seed).fit(X).decision_scores_
    elif method == "aekit_semi":
        known = known_anomalies(y, seed)
        given = np.zeros_like(y)
        given[known] = 1
        scores = AnomalyDetector(random_state=seed).fit(X, given).decision_scores_
        seconds = time.perf_counter() - start
        if seed not in plain:  # the same detector and seed without labels (deterministic: fitted once)
            plain[seed] = AnomalyDetector(random_state=seed).fit(X).decision_scores_
        rest = np.setdiff1d(np.arange(len(y)), known)
        return {
            "auroc": float(roc_auc_score(y[rest], scores[rest])),
            "unlabelled_auroc": float(roc_auc_score(y[rest], plain[seed][rest])),
            "labels": len(known),
            "seconds": seconds,
        }
    else:
        scores = make(seed).fit(X).decision_scores_
    seconds = time.perf_counter() - start
    # A method that gives non-finite scores is recorded as failed (NaN), never silently patched.
    auroc = float(roc_auc_score(y, scores)) if np.isfinite(scores).all() else float("nan")
    return {"auroc": auroc, "seconds": seconds}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["aekit", "aekit_semi", *PYOD])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--resume", action="store_true", help="keep the sets already in the results file")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "odds"))
    parser.add_argument("--pyod-from", help="an earlier odds.json: copy the PyOD columns not measured now")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="write one result from runs over disjoint sets (e.g. one per core), measuring nothing",
    )
    args = parser.parse_args()
    if args.combine:
        parts = [json.loads(Path(f).read_text()) for f in args.combine]
        rows = sorted((r for part in parts for r in part["rows"]), key=lambda r: r["set"])
        args.pyod_source = parts[0]["pyod_from"]
        args.seeds = parts[0]["seeds"]
        result = summarise(rows, args)
        result["commands"] = [part["command"] for part in parts]
        result["command"] = " ; ".join(result["commands"])
        write(result, Path(args.out))
        print(json.dumps(result["summary"], indent=2))
        return
    torch.set_num_threads(1)  # one thread for every method: the ratio is what counts, on a 2-core machine
    makers = pyod_makers()
    measured = [m for m in args.methods if m.startswith("aekit") or m in makers]
    earlier_rows, args.pyod_source = {}, None
    if args.pyod_from:
        earlier = json.loads(Path(args.pyod_from).read_text())  # read now: it may be the file we rewrite
        earlier_rows = {r["set"]: r for r in earlier["rows"]}
        copied = [m for m in PYOD if m not in measured and m in earlier["rows"][0]]
        args.pyod_source = {"file": args.pyod_from, "date": earlier["date"], "command": earlier["command"]}
        args.pyod_source["methods"] = copied
    rows = []
    out = Path(args.out).with_suffix(".json")
    if args.resume and out.exists():
        # A long run on a busy machine may be cut short: keep the sets it finished, measure the rest.
        rows = [r for r in json.loads(out.read_text())["rows"] if r["set"] in args.sets]
    for name in [n for n in args.sets if n not in {r["set"] for r in rows}]:
        with np.load(DATA / "odds" / f"{name}.npz", allow_pickle=False) as f:
            X, y = f["X"], f["y"].astype(np.int64)
        row = {"set": name, "n": len(X), "d": X.shape[1], "outliers": int(y.sum())}
        plain: dict = {}  # aekit's unsupervised scores by seed, reused by the semi-supervised comparison
        for method in measured:
            runs = [measure(method, makers.get(method), X, y, seed, plain) for seed in range(args.seeds)]
            row[method] = {key: [r[key] for r in runs] for key in runs[0]}
            row[method]["mean"] = float(np.mean(row[method]["auroc"]))
            print(json.dumps({"set": name, "method": method, **row[method]}), flush=True)
        for method in args.pyod_source["methods"] if args.pyod_source else []:
            row[method] = earlier_rows[name][method]
        rows.append(row)
        if not args.no_write:  # after every set: a cut-short run keeps its rows
            write(summarise(rows, args), Path(args.out))
    print(json.dumps(summarise(rows, args)["summary"], indent=2))


def ranks(row: dict, methods: list[str]) -> dict[str, float]:
    """Each method's rank on one set (1 = best AUROC; ties share the mean rank; a failed run ranks last)."""
    values = [row[m]["mean"] if math.isfinite(row[m]["mean"]) else -1.0 for m in methods]
    order = sorted(values, reverse=True)
    return {
        m: float(np.mean([i + 1 for i, v in enumerate(order) if v == value]))
        for m, value in zip(methods, values, strict=True)
    }


def summarise(rows: list[dict], args) -> dict:
    import sklearn
    import torch

    import aekit

    compared = [m for m in ["aekit", *PYOD] if m in rows[0]]
    means = {m: float(np.nanmean([r[m]["mean"] for r in rows])) for m in compared}
    rank_rows = [ranks(r, compared) for r in rows]
    mean_rank = {m: float(np.mean([r[m] for r in rank_rows])) for m in compared}
    pyod = [m for m in compared if m.startswith("pyod_")]
    summary: dict = {"sets": len(rows), "mean_auroc": means, "mean_rank": mean_rank}
    if pyod and "aekit" in compared:
        best = max(pyod, key=lambda m: means[m])
        summary["best_pyod"] = best
        summary["auroc_target_met"] = means["aekit"] >= means[best] + 0.02
        summary["rank_target_met"] = all(mean_rank["aekit"] < mean_rank[m] for m in pyod)
    if "pyod_ae" in compared and "aekit" in compared:
        ratios = [np.mean(r["aekit"]["seconds"]) / np.mean(r["pyod_ae"]["seconds"]) for r in rows]
        summary["time_ratio_vs_pyod_ae_geomean"] = float(np.exp(np.mean(np.log(ratios))))
        summary["speed_target_met"] = summary["time_ratio_vs_pyod_ae_geomean"] <= 1.0
    if "aekit_semi" in rows[0]:
        gains = [
            np.mean(r["aekit_semi"]["auroc"]) - np.mean(r["aekit_semi"]["unlabelled_auroc"]) for r in rows
        ]
        summary["semi_mean_gain"] = float(np.mean(gains))
        summary["semi_sets_improved"] = int(sum(g > 0 for g in gains))
    try:
        import pyod

        pyod_version = pyod.__version__
    except ImportError:
        pyod_version = None
    command = "bench/.venv-pyod/bin/python " + " ".join(["bench/odds.py", *sys.argv[1:]])
    return {
        "benchmark": "odds",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "commit": git_version(),
        "machine": {**machine(), "torch_threads": 1},
        "versions": {
            "aekit": aekit.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "pyod": pyod_version,
        },
        "protocol": "fit on all of X, score X, AUROC vs y, mean over seeds 0..n-1; defaults everywhere; "
        "NaN = the method gave non-finite scores; seconds = fit + scoring of X; semi-supervised: 5% of "
        "the anomalies labelled, AUROC on the other rows",
        "pyod_from": args.pyod_source,
        "seeds": args.seeds,
        "rows": rows,
        "summary": summary,
    }


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    compared = list(s["mean_auroc"])
    semi = "aekit_semi" in result["rows"][0]
    lines = [
        "# ODDS: AUROC, fit on all of X and score X, mean of seeds",
        "",
        f"{result['date']}, commit {result['commit']}, {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores, torch 1 thread; PyOD {result['versions']['pyod']}; "
        f"`{result['command']}`",
        "",
        *(
            [
                f"Copied from the run of {result['pyod_from']['date']} (`{result['pyod_from']['command']}`, "
                f"same machine): {', '.join(result['pyod_from']['methods'])}; every other column is "
                "measured in this run.",
                "",
            ]
            if result.get("pyod_from") and result["pyod_from"]["methods"]
            else []
        ),
        "| set | n x d | "
        + " | ".join(compared)
        + (" | semi (5% labels) | unsup. same rows |" if semi else " |"),
        "|---|---|" + "---|" * (len(compared) + 2 * semi),
    ]
    for r in result["rows"]:
        best = max(r[m]["mean"] for m in compared if math.isfinite(r[m]["mean"]))
        cells = [
            (f"**{r[m]['mean']:.3f}**" if r[m]["mean"] == best else f"{r[m]['mean']:.3f}") for m in compared
        ]
        if semi:
            cells += [f"{r['aekit_semi']['mean']:.3f}", f"{np.mean(r['aekit_semi']['unlabelled_auroc']):.3f}"]
        lines.append(f"| {r['set']} | {r['n']} x {r['d']} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean AUROC** | | " + " | ".join(f"**{s['mean_auroc'][m]:.3f}**" for m in compared) + " |"
    )
    lines.append("| **mean rank** | | " + " | ".join(f"{s['mean_rank'][m]:.2f}" for m in compared) + " |")
    lines += [
        "",
        "Targets: " + json.dumps({k: v for k, v in s.items() if k not in ("mean_auroc", "mean_rank")}),
    ]
    lines += [
        "",
        "| set | " + " | ".join(f"{m} s" for m in compared) + " | aekit / pyod_ae |",
        "|---|" + "---|" * (len(compared) + 1),
    ]
    for r in result["rows"]:
        secs = {m: float(np.mean(r[m]["seconds"])) for m in compared}
        ratio = secs["aekit"] / secs["pyod_ae"] if "pyod_ae" in secs and "aekit" in secs else float("nan")
        lines.append(
            f"| {r['set']} | " + " | ".join(f"{secs[m]:.2f}" for m in compared) + f" | {ratio:.2f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
