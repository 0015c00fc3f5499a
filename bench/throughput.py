"""Training throughput of ``AutoEncoder.fit`` against a plain PyTorch loop, and Pythae's trainer on the VAE.

Run from the repository root (MNIST comes from AEKIT_DATA_DIR, which defaults to ../shared/datasets):

    PYTHONPATH=src .venv/bin/python bench/throughput.py            # full run: < 8 min on 2 cores
    PYTHONPATH=src .venv/bin/python bench/throughput.py --quick    # smoke check: < 1 min, writes nothing

Options: --threads N (torch threads for every contender; default torch's own choice), --reps N (default 4),
--no-pythae, --out DIR (default bench/results). Pythae runs only when its venv exists:

    python3 -m venv bench/.venv-pythae
    bench/.venv-pythae/bin/pip install torch==2.13.0 pythae   # torch first, or pip pulls the CUDA build

The figure (from the issue): samples/s of ``AutoEncoder.fit`` >= 0.95 x a hand-written loop training the
same model on the same data with the same batch size, and faster than Pythae's trainer on the same VAE.
For a dense AE, a conv AE and a dense VAE on MNIST, each contender trains the same model (``build_model``,
same seed, same widths) for the same epochs with Adam and a per-batch OneCycle schedule, no validation
and no early stopping. A run is timed from the uint8 images in memory to a trained model, so the
contenders' own data preparation counts and loading the file does not; the time inside the epoch loops
alone is recorded beside it. After a warm-up, the contenders take turns, in the order plain, aekit[, pythae]
and then reversed, --reps times (default 4), and the medians are compared, so machine noise falls on all
of them alike.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import git_version, machine, save_results  # bench/machine.py: the script's folder is on sys.path

from aekit import AutoEncoder, __version__
from aekit.data import load
from aekit.losses import objective
from aekit.models import build_model

ROOT = Path(__file__).resolve().parent.parent
PYTHAE_PYTHON = ROOT / "bench" / ".venv-pythae" / "bin" / "python"
PYTHAE_SCRIPT = ROOT / "bench" / "pythae_vae.py"
TARGET = 0.95  # the bar: aekit >= 0.95 x the plain loop

# Every model is set out in full so a change of aekit's defaults cannot change what is measured.
COMMON = {"code_size": 32, "batch_size": 128, "lr": 3e-3, "seed": 0}
CASES = {
    "dense": {"kind": "dense", "hidden": (512, 256), "n": 30_000, "epochs": 2},
    "conv": {"kind": "conv", "hidden": (32, 64, 128), "n": 8_000, "epochs": 2},
    "vae": {"kind": "vae", "hidden": (512, 256), "n": 30_000, "epochs": 2},
}
QUICK = {"dense": 2_000, "conv": 1_000, "vae": 2_000}  # samples per case with --quick (1 epoch)
WARMUP = 1_024  # samples in each contender's untimed warm-up run


# -- the contenders ---------------------------------------------------------------------------------------
def run_aekit(images: np.ndarray, case: dict) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    ae = AutoEncoder(
        kind=case["kind"],
        code_size=COMMON["code_size"],
        hidden=case["hidden"],
        loss="mse",  # the plain loop's (model_settings); "auto" would pick BCE for these images
        epochs=case["epochs"],
        batch_size=COMMON["batch_size"],
        lr=COMMON["lr"],
        schedule="onecycle",
        validation_fraction=0.0,
        patience=None,
        random_state=COMMON["seed"],
        device="cpu",
        n_jobs=torch.get_num_threads(),  # the contenders' count (--threads), not one chosen from the work
        verbose=0,
    ).fit(images)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    loop = sum(h["seconds"] for h in ae.history_)
    return _timing(len(images) * case["epochs"], seconds, cpu, loop, ae.model_)


def run_plain(images: np.ndarray, case: dict) -> dict:
    """The loop a competent PyTorch user writes: data in one tensor, a shuffled index per epoch, slices."""
    started, cpu = time.perf_counter(), time.process_time()
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    n, batch_size, epochs = len(x), COMMON["batch_size"], case["epochs"]
    torch.manual_seed(COMMON["seed"])
    model = build_model(case["kind"], model_settings(case, tuple(x.shape[1:])))
    optimizer = torch.optim.Adam(model.parameters(), lr=COMMON["lr"])
    total = epochs * math.ceil(n / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(  # aekit's warm-up fraction, so the work is the same
        optimizer, max_lr=COMMON["lr"], total_steps=total, pct_start=min(0.5, max(0.2, 2.5 / total))
    )
    generator = torch.Generator().manual_seed(COMMON["seed"])
    model.train()
    loop_seconds = 0.0
    for _ in range(epochs):
        epoch_started = time.perf_counter()
        shuffled = x[torch.randperm(n, generator=generator)]
        for start in range(0, n, batch_size):
            batch = shuffled[start : start + batch_size]
            loss = objective(model, model(batch), batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        loop_seconds += time.perf_counter() - epoch_started
    model.eval()
    return _timing(n * epochs, time.perf_counter() - started, time.process_time() - cpu, loop_seconds, model)


def model_settings(case: dict, input_shape: tuple[int, ...]) -> dict:
    """What a user passes to build_model for MNIST scaled to [0, 1]; checked against aekit's own below."""
    return {
        "input_shape": input_shape,
        "code_size": COMMON["code_size"],
        "hidden": case["hidden"],
        "output": "sigmoid",
        "loss": "mse",
    }


def run_pythae(data_path: Path, case: dict, threads: int) -> dict:
    cmd = [
        str(PYTHAE_PYTHON),
        str(PYTHAE_SCRIPT),
        str(data_path),
        "--epochs",
        str(case["epochs"]),
        "--batch-size",
        str(COMMON["batch_size"]),
        "--lr",
        str(COMMON["lr"]),
        "--code-size",
        str(COMMON["code_size"]),
        "--seed",
        str(COMMON["seed"]),
        "--threads",
        str(threads),
        "--warmup",
        str(WARMUP),
        "--hidden",
        *map(str, case["hidden"]),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _timing(n: int, seconds: float, cpu_seconds: float, loop_seconds: float, model: torch.nn.Module) -> dict:
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loop_seconds": loop_seconds,
        "samples_per_s": n / seconds,
        "cpu_samples_per_s": n / cpu_seconds,
        "loop_samples_per_s": n / loop_seconds,
        "model": model,
    }


# -- measuring ----------------------------------------------------------------------------------------------
def measure(name: str, images: np.ndarray, case: dict, reps: int, pythae: bool, threads: int) -> dict:
    contenders = {"plain": lambda: run_plain(images, case), "aekit": lambda: run_aekit(images, case)}
    tmp = None
    if pythae:
        tmp = tempfile.TemporaryDirectory()
        data_path = Path(tmp.name) / "images.npy"
        np.save(data_path, images)
        contenders["pythae"] = lambda: run_pythae(data_path, case, threads)
    try:
        warm = {**case, "epochs": 1}
        for run in (run_plain, run_aekit):  # pythae warms up inside its own process, before its timed run
            run(images[:WARMUP], warm)
        runs: dict[str, list[dict]] = {key: [] for key in contenders}
        models = {}
        order = list(contenders)
        for rep in range(reps):
            # Whoever runs second after another contender runs a little slower (memory left to the
            # allocator, caches): reversing the order every other round (ABBA) cancels that.
            for key in order if rep % 2 == 0 else order[::-1]:
                gc.collect()
                result = contenders[key]()
                models[key] = result.pop("model", None)
                runs[key].append(result)
                print(
                    f"  {name:5s} rep {rep + 1}/{reps}  {key:6s} {result['samples_per_s']:8.0f} samples/s "
                    f"({result['seconds']:.2f} s, loop {result['loop_seconds']:.2f} s)",
                    flush=True,
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return summarise(name, images, case, runs, models)


def summarise(name: str, images: np.ndarray, case: dict, runs: dict, models: dict) -> dict:
    metrics = ("samples_per_s", "cpu_samples_per_s", "loop_samples_per_s")
    med = {key: {m: statistics.median(r[m] for r in rs) for m in metrics} for key, rs in runs.items()}
    out = {
        "kind": case["kind"],
        "hidden": list(case["hidden"]),
        "n_samples": len(images),
        "epochs": case["epochs"],
        **{k: COMMON[k] for k in ("batch_size", "code_size", "lr")},
        "runs": {
            key: [{k: v for k, v in r.items() if k != "param_shapes"} for r in rs] for key, rs in runs.items()
        },
        "median": med,
        "ratio_aekit_plain": _ratio(med, "aekit", "plain", "samples_per_s"),
        "ratio_aekit_plain_loop_only": _ratio(med, "aekit", "plain", "loop_samples_per_s"),
        # CPU time is what a busy machine disturbs least; with more than one torch thread it also counts
        # OpenMP's spin-waiting, so it is the better figure with --threads 1.
        "ratio_aekit_plain_cpu": _ratio(med, "aekit", "plain", "cpu_samples_per_s"),
        # Run i of each contender ran in the same round, side by side: they met the same machine weather.
        "paired_ratio_median": statistics.median(
            a["samples_per_s"] / p["samples_per_s"] for a, p in zip(runs["aekit"], runs["plain"], strict=True)
        ),
    }
    out["meets_target"] = out["ratio_aekit_plain"] >= TARGET
    out["same_model"] = _state_shapes(models["aekit"]) == _state_shapes(models["plain"]) and (
        models["aekit"].config.to_dict() == models["plain"].config.to_dict()
    )
    # Both trained the same model on the same data: their final training losses should be close.
    probe = torch.from_numpy(images[:2048]).float().div_(255.0).unsqueeze(1)
    with torch.no_grad():
        out["final_loss"] = {
            k: float(objective(m, m(probe), probe)["loss"])
            for k in ("plain", "aekit")
            for m in [models[k].eval()]
        }
    if "pythae" in runs:
        shapes = {k: v for k, v in _state_shapes(models["aekit"]).items() if k != "log_scale"}
        out["pythae_same_layers"] = runs["pythae"][-1]["param_shapes"] == shapes
        out["ratio_aekit_pythae"] = _ratio(med, "aekit", "pythae", "samples_per_s")
        out["ratio_pythae_plain"] = _ratio(med, "pythae", "plain", "samples_per_s")
        out["ratio_aekit_pythae_loop_only"] = _ratio(med, "aekit", "pythae", "loop_samples_per_s")
        out["ratio_aekit_pythae_cpu"] = _ratio(med, "aekit", "pythae", "cpu_samples_per_s")
        out["faster_than_pythae"] = out["ratio_aekit_pythae"] > 1.0
    print(
        f"  {name}: aekit/plain {out['ratio_aekit_plain']:.3f} "
        f"(loop only {out['ratio_aekit_plain_loop_only']:.3f}, CPU time {out['ratio_aekit_plain_cpu']:.3f})"
        + (f", aekit/pythae {out['ratio_aekit_pythae']:.3f}" if "pythae" in runs else ""),
        flush=True,
    )
    return out


def _ratio(med: dict, a: str, b: str, metric: str) -> float:
    return med[a][metric] / med[b][metric]


def _state_shapes(model: torch.nn.Module) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


# -- the record ---------------------------------------------------------------------------------------------
def machine_record() -> dict:
    return {**machine(), "python": platform.python_version()}


def markdown(doc: dict) -> str:
    lines = [
        "# Training throughput: `AutoEncoder.fit` vs a plain PyTorch loop vs Pythae",
        "",
        f"{doc['date']} · {doc['machine']['cpu']} · {doc['machine']['cores']} cores · "
        f"{doc['settings']['threads']} torch thread(s) · torch {doc['versions']['torch']} · "
        f"aekit {doc['versions']['aekit']} ({doc['versions']['aekit_git']}) · "
        f"pythae {doc['versions'].get('pythae') or 'not run'}",
        "",
        f"`{doc['command']}` · MNIST, batch {COMMON['batch_size']}, median of {doc['settings']['reps']} "
        "runs taking turns (ABBA) · samples/s (wall clock) from the uint8 array to a trained model, epoch "
        'loops only in brackets; "by CPU time": the same ratio from the process\'s CPU time, which a busy '
        "machine disturbs less (exact with 1 thread; with more it also counts OpenMP's spin-waiting)",
        "",
        "| model | samples × epochs | plain loop | aekit `fit` | Pythae | aekit / plain | by CPU time "
        "| aekit / Pythae | by CPU time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in doc["cases"].items():
        med = c["median"]

        def cell(key, med=med):
            if key not in med:
                return "-"
            return f"{med[key]['samples_per_s']:.0f} ({med[key]['loop_samples_per_s']:.0f})"

        pythae = (
            f"{c['ratio_aekit_pythae']:.2f} | {c['ratio_aekit_pythae_cpu']:.2f}"
            if "ratio_aekit_pythae" in c
            else "- | -"
        )
        verdict = "ok" if c["meets_target"] else f"below {TARGET}"
        lines.append(
            f"| {name} | {c['n_samples']} × {c['epochs']} | {cell('plain')} | {cell('aekit')} | "
            f"{cell('pythae')} | **{c['ratio_aekit_plain']:.3f}** ({verdict}) | "
            f"{c['ratio_aekit_plain_cpu']:.3f} | {pythae} |"
        )
    lines += [
        "",
        "Load average before / after: "
        + " / ".join(", ".join(f"{v:.1f}" for v in doc["loadavg"][k]) for k in ("before", "after")),
        "",
    ]
    lines += [f"- {note}" for note in doc["notes"]]
    return "\n".join(lines) + "\n"


NOTES = [
    "Same model in every contender: plain builds it with aekit's build_model and the seed aekit uses; "
    "Pythae's copy has the same layers and init (same_model / pythae_same_layers in the JSON check it).",
    "The plain loop uses torch.optim.Adam with torch's defaults, as a user writes it (single-tensor updates "
    "on the CPU); aekit's trainer picks its own Adam implementation (foreach or fused), and that choice "
    "counts for it.",
    "Pythae steps its scheduler once per epoch (OneCycle over epochs), aekit and the plain loop once per "
    "batch: a few microseconds per batch that Pythae does not pay.",
    "Pythae's VAE has no learned likelihood scale (aekit's log_scale) and sums its losses over pixels; the "
    "arithmetic differs by a few element-wise operations per batch.",
    "Pythae's end-to-end time includes what its trainer always does: a sanity-check forward pass, a deep "
    "copy of the model after every improving epoch and saving the final model to disk (tqdm and its "
    "console log are switched off). Its epoch-loop time leaves those out.",
    "Pythae runs in its own process (its own venv), warmed up there by a short run before the timed one.",
    "Pythae's DataLoader builds every batch sample by sample in Python (Dataset.__getitem__ + collate): a "
    "cost per sample that weighs more as the model's step gets faster (more threads, a GPU) and least "
    "with --threads 1.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 epoch: a smoke check; no files")
    parser.add_argument("--reps", type=int, default=None, help="runs each (default 4; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--no-pythae", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (bench/results)")
    args = parser.parse_args()
    if args.reps is None:
        args.reps = 2 if args.quick else 4

    os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    pythae = not args.no_pythae and PYTHAE_PYTHON.exists()
    if not args.no_pythae and not pythae:
        print(f"Pythae skipped: no {PYTHAE_PYTHON} (see this file's docstring to create it)", file=sys.stderr)
    images_all = load("mnist").x_train  # (60000, 28, 28) uint8; loading is not timed
    loadavg_before = os.getloadavg()
    if threads > 1 and loadavg_before[0] > 0.5:
        print(
            f"warning: load average {loadavg_before[0]:.1f} on {os.cpu_count()} cores. With other "
            f"processes running, {threads} torch threads wait on each other and timings swing tenfold; "
            "use a quiet machine or --threads 1.",
            file=sys.stderr,
        )
    cases = {}
    for name in args.cases:
        case = dict(CASES[name])
        if args.quick:
            case.update(n=QUICK[name], epochs=1)
        images = np.ascontiguousarray(images_all[: case["n"]])
        cases[name] = measure(name, images, case, args.reps, pythae and case["kind"] == "vae", threads)

    versions = {
        "torch": torch.__version__,
        "aekit": __version__,
        "aekit_git": git_version(),
        "numpy": np.__version__,
        "pythae": None,
    }
    if pythae:
        versions["pythae"] = next(r["pythae"] for c in cases.values() for r in c["runs"].get("pythae", []))
    doc = {
        "benchmark": "throughput",
        "command": "PYTHONPATH=src .venv/bin/python bench/throughput.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_record(),
        "versions": versions,
        "settings": {
            "threads": threads,
            "reps": args.reps,
            "quick": args.quick,
            "warmup_samples": WARMUP,
            "target_ratio": TARGET,
            **COMMON,
        },
        "loadavg": {"before": loadavg_before, "after": os.getloadavg()},
        "cases": cases,
        "notes": NOTES if pythae else NOTES[:2],
    }
    print(markdown(doc))
    out = args.out if args.out is not None else (None if args.quick else ROOT / "bench" / "results")
    if out is not None:
        save_results(out, "throughput", doc, markdown(doc))


if __name__ == "__main__":
    main()
