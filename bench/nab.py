"""NAB realKnownCause: AnomalyDetector on sliding windows vs a rolling z-score, window-level AUROC.

    PYTHONPATH=src .venv/bin/python bench/nab.py
    PYTHONPATH=src .venv/bin/python bench/nab.py --detectors dense conv1d --shortest 4 \
        --out bench/results/nab_conv1d     # the dense windows vs the 1-D conv net on them
    PYTHONPATH=src .venv/bin/python bench/nab.py --series rogue_agent_key_hold --no-write   # smoke check

For each of the seven realKnownCause series (nab_real.npz): ``AnomalyDetector(window=W, random_state=0)``
(defaults otherwise, W the same for every series) is fitted on the whole series, unsupervised, and scores
every time step. ``--detectors`` picks the members' family: "dense" (the default detector: each window a
flattened table row) and "conv1d" (``kind="conv1d"``: a 1-D conv net along each window), each otherwise at
its defaults. The truth is NAB's anomaly windows (``__window``: 1 inside a labelled window), so the
AUROC asks whether time steps inside the windows score higher than those outside. Baseline, in the same
run: the rolling z-score |x_t - mean| / std over the previous ``w`` steps, for several ``w``; the table
compares with the best of them per series as well as with each. ``--shortest N`` keeps the N shortest
series (a cheaper run; the choice depends on length alone). Writes bench/results/nab.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
BASELINE_WINDOWS = (32, 128, 512)
# --detectors name -> AnomalyDetector settings besides the window and seed
DETECTORS = {"dense": {}, "conv1d": {"kind": "conv1d"}}


def rolling_zscore(values: np.ndarray, w: int) -> np.ndarray:
    """|x_t - mean(x_{t-w..t-1})| / std(...): the classic streaming baseline."""
    import pandas as pd

    past = pd.Series(values).shift(1).rolling(w, min_periods=2)
    z = np.abs(values - past.mean().to_numpy()) / (past.std().to_numpy() + 1e-9)
    return np.nan_to_num(z, nan=0.0)


def main() -> None:
    import sklearn
    import torch
    from sklearn.metrics import roc_auc_score

    import aekit
    from aekit import AnomalyDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--series", nargs="+", help="names within realKnownCause (default: all seven)")
    parser.add_argument("--shortest", type=int, help="keep only the N shortest of those series")
    parser.add_argument("--detectors", nargs="+", choices=tuple(DETECTORS), default=list(DETECTORS))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "nab"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with np.load(DATA / "nab_real.npz", allow_pickle=False) as f:
        names = [n for n in f["series_names"].tolist() if n.startswith("realKnownCause__")]
        if args.series:
            names = [n for n in names if n.split("__", 1)[1] in args.series]
        series = {n: (f[f"{n}__value"], f[f"{n}__window"]) for n in names}
    if args.shortest:
        series = dict(sorted(series.items(), key=lambda item: len(item[1][0]))[: args.shortest])
    for name, (values, truth) in series.items():
        row = {"series": name.split("__", 1)[1], "steps": len(values), "in_windows": int(truth.sum())}
        row["aekit"], row["fit_seconds"] = {}, {}
        for detector in args.detectors:
            start = time.perf_counter()
            det = AnomalyDetector(window=args.window, random_state=0, **DETECTORS[detector])
            det.fit(values.astype(np.float32))
            row["fit_seconds"][detector] = round(time.perf_counter() - start, 1)
            row["aekit"][detector] = float(roc_auc_score(truth, det.decision_scores_))
        row |= {
            "zscore": {
                str(w): float(roc_auc_score(truth, rolling_zscore(values, w))) for w in BASELINE_WINDOWS
            },
        }
        row["zscore_best"] = max(row["zscore"].values())
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "mean_aekit": {d: float(np.mean([r["aekit"][d] for r in rows])) for d in args.detectors},
        "mean_zscore_best_per_series": float(np.mean([r["zscore_best"] for r in rows])),
        "mean_zscore": {
            str(w): float(np.mean([r["zscore"][str(w)] for r in rows])) for w in BASELINE_WINDOWS
        },
    }
    summary["beats_every_zscore_mean"] = {
        d: m > max(summary["mean_zscore"].values()) for d, m in summary["mean_aekit"].items()
    }
    summary["beats_best_per_series_zscore_mean"] = {
        d: m > summary["mean_zscore_best_per_series"] for d, m in summary["mean_aekit"].items()
    }
    result = {
        "benchmark": "nab_realKnownCause",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "PYTHONPATH=src .venv/bin/python " + " ".join(["bench/nab.py", *sys.argv[1:]]),
        "machine": {
            **machine(),
            "torch_threads": 1,
            "note": "shared 2-core VM: other engineers' jobs ran at the same time, so seconds are rough",
        },
        "versions": {"aekit": aekit.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
        "window": args.window,
        "detectors": {d: {"window": args.window, "random_state": 0, **DETECTORS[d]} for d in args.detectors},
        "series_chosen": f"the {args.shortest} shortest" if args.shortest else "as named (default: all)",
        "protocol": "fit on the whole series, score every step; AUROC of step scores vs NAB windows",
        "rows": rows,
        "summary": summary,
    }
    print(json.dumps(summary, indent=2))
    if not args.no_write:
        write(result, Path(args.out))


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    ws = [str(w) for w in BASELINE_WINDOWS]
    ds = list(result["detectors"])
    lines = [
        "# NAB realKnownCause: window-level AUROC (time steps inside NAB's anomaly windows vs outside)",
        "",
        f"{result['date']}, {result['machine']['cpu']}, {result['machine']['cores']} cores, torch 1 thread "
        f"(shared machine); detector window {result['window']}; series: {result['series_chosen']}; "
        f"`{result['command']}`",
        "",
        "| series | steps | "
        + " | ".join(f"aekit {d}" for d in ds)
        + " | "
        + " | ".join(f"z-score w={w}" for w in ws)
        + " | best z-score | "
        + " | ".join(f"fit s {d}" for d in ds)
        + " |",
        "|---|---|" + "---|" * (2 * len(ds) + len(ws) + 1),
    ]
    for r in result["rows"]:
        a = " | ".join(f"{r['aekit'][d]:.3f}" for d in ds)
        z = " | ".join(f"{r['zscore'][w]:.3f}" for w in ws)
        t = " | ".join(f"{r['fit_seconds'][d]}" for d in ds)
        lines.append(f"| {r['series']} | {r['steps']} | {a} | {z} | {r['zscore_best']:.3f} | {t} |")
    s = result["summary"]
    a = " | ".join(f"**{s['mean_aekit'][d]:.3f}**" for d in ds)
    z = " | ".join(f"{s['mean_zscore'][w]:.3f}" for w in ws)
    lines += [
        f"| **mean** | | {a} | {z} | {s['mean_zscore_best_per_series']:.3f} |" + " |" * len(ds),
        "",
    ]
    for d in ds:
        lines.append(
            f"aekit {d} beats the rolling z-score at every w (mean): {s['beats_every_zscore_mean'][d]}; "
            f"beats the best w picked per series (an oracle): {s['beats_best_per_series_zscore_mean'][d]}."
        )
    out.with_suffix(".md").write_text("\n".join([*lines, ""]))


if __name__ == "__main__":
    main()
