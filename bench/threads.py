"""Threads per job (``aekit.threads``): where a second thread starts to pay; the issue's jobs before/after.

Run from the repository root (data from AEKIT_DATA_DIR, which defaults to ../shared/datasets):

    PYTHONPATH=src .venv/bin/python bench/threads.py sweep   # step time at 1 vs all cores: ~5 min on 2
    PYTHONPATH=src .venv/bin/python bench/threads.py jobs    # the issue's two commands: ~3 min on 2 cores

``sweep`` trains models from 7e4 to 2e10 multiply-adds per step (batch rows x one forward pass over a
row, what ``aekit.threads.choose`` reads) for a few steps at 1 thread and at every usable core, taking
turns (ABBA) ``--reps`` times, and records the median step time of each; beside each sample, the CPU
that other processes used meanwhile (from /proc/stat), since on a shared machine that decides the
outcome. Writes bench/results/threads_sweep.{json,md}. It picks WORK_PER_THREAD.

``jobs`` runs the issue's two commands as a user would, each in a fresh process: ``aekit train --task
detect`` on ODDS cardio and a 5-epoch conv model on digits. "before" is the old behaviour, forced with
``--threads`` equal to torch's default count in a fresh process (one per core); "after" is the command
as it is now, the count chosen from the work. OMP_NUM_THREADS is removed from their environment. Runs
take turns (before, after, after, before, ...) ``--reps`` times; the median wall time is compared, and
the detector's training AUROC is recorded for each run (the issue: "same AUROC").
Writes bench/results/threads.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import git_version, machine, save_results  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
TICK = os.sysconf("SC_CLK_TCK")

# (family, settings, batch): dense and conv autoencoders whose work per step spans five decades
SWEEP = [
    ("dense", {"input_shape": (21,), "code_size": 5, "hidden": (10,)}, 128),  # cardio's detector
    ("dense", {"input_shape": (64,), "code_size": 16, "hidden": (64,)}, 128),
    ("dense", {"input_shape": (256,), "code_size": 32, "hidden": (256,)}, 128),
    ("conv", {"input_shape": (1, 8, 8), "code_size": 32, "hidden": (32, 64)}, 128),  # digits, conv
    ("conv", {"input_shape": (1, 16, 16), "code_size": 32, "hidden": (16, 32)}, 128),
    ("dense", {"input_shape": (512,), "code_size": 32, "hidden": (512,)}, 128),
    ("conv", {"input_shape": (1, 28, 28), "code_size": 32, "hidden": (16, 32)}, 128),
    ("dense", {"input_shape": (784,), "code_size": 32, "hidden": (512, 256)}, 128),  # MNIST dense
    ("dense", {"input_shape": (784,), "code_size": 32, "hidden": (512, 256)}, 512),
    ("conv", {"input_shape": (1, 28, 28), "code_size": 32, "hidden": (32, 64, 128)}, 128),
    ("dense", {"input_shape": (1024,), "code_size": 64, "hidden": (1024, 1024)}, 1024),
    ("conv", {"input_shape": (1, 28, 28), "code_size": 32, "hidden": (32, 64, 128)}, 1024),
    ("dense", {"input_shape": (2048,), "code_size": 64, "hidden": (2048, 2048)}, 1024),
]
SAMPLE_SECONDS = 0.3  # each timed sample runs at least 2 steps and about this long at 1 thread


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # less idle and iowait


def others_cores(busy: float, ours: float, wall: float) -> float:
    """Cores that other processes kept busy, on average, while we used ``ours`` CPU seconds in ``wall``."""
    return max(0.0, busy - ours) / wall


# -- sweep -------------------------------------------------------------------------------------------------
def sweep(args: argparse.Namespace) -> dict:
    import torch

    from aekit.losses import objective
    from aekit.models import build_model
    from aekit.threads import WORK_PER_THREAD, macs_per_row, usable_cores

    many = usable_cores()
    cases = []
    for kind, settings, batch in SWEEP:
        torch.manual_seed(0)
        model = build_model(kind, settings)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
        x = torch.rand(batch, *settings["input_shape"])

        def steps(n: int, model=model, optimizer=optimizer, x=x) -> None:
            for _ in range(n):
                loss = objective(model, model(x), x)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        torch.set_num_threads(1)
        steps(1)  # warm-up
        started = time.perf_counter()
        steps(2)
        n_steps = max(2, round(SAMPLE_SECONDS / ((time.perf_counter() - started) / 2)))
        samples: dict[int, list] = {1: [], many: []}
        for rep in range(args.reps):
            for threads in (1, many) if rep % 2 == 0 else (many, 1):
                torch.set_num_threads(threads)
                steps(1)  # wake the pool at this size
                b0, c0, t0 = busy_seconds(), time.process_time(), time.perf_counter()
                steps(n_steps)
                t1, c1, b1 = time.perf_counter(), time.process_time(), busy_seconds()
                samples[threads].append(
                    {"step_ms": 1e3 * (t1 - t0) / n_steps, "others": others_cores(b1 - b0, c1 - c0, t1 - t0)}
                )
        work = batch * macs_per_row(model, settings["input_shape"])
        median = {n: statistics.median(s["step_ms"] for s in samples[n]) for n in samples}
        case = {
            "kind": kind,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
            "batch": batch,
            "work": work,
            "steps_per_sample": n_steps,
            "samples": {str(n): s for n, s in samples.items()},
            "median_step_ms": {str(n): m for n, m in median.items()},
            "speedup": median[1] / median[many],
            "others_median": statistics.median(s["others"] for n in samples for s in samples[n]),
        }
        cases.append(case)
        print(
            f"{kind:5} {str(settings['input_shape']):12} {str(settings['hidden']):18} batch {batch:5}  "
            f"work {work:9.3g}  1 thread {median[1]:8.1f} ms  {many} threads {median[many]:8.1f} ms  "
            f"x{case['speedup']:.2f}  others {case['others_median']:.2f} cores",
            flush=True,
        )
    return _doc(args, {"threads_compared": [1, many], "work_per_thread": WORK_PER_THREAD, "cases": cases})


def sweep_markdown(runs: list[dict]) -> str:
    """One table per run: a shared machine is quiet in one run and busy in the next, and both count."""
    lines = ["# Threads per job: training step time at 1 thread vs every usable core", ""]
    lines += [
        "Work = batch rows x multiply-adds of one forward pass over one row (`aekit.threads.macs_per_row`). "
        "Median of the run's samples (taking turns); 'others' = cores that other processes kept busy "
        "meanwhile (median), which on a shared machine decides the outcome. `aekit.threads.WORK_PER_THREAD` "
        f"= {runs[-1]['work_per_thread']:.0e} when the last run was made.",
    ]
    for k, run in enumerate(runs, 1):
        many = run["threads_compared"][1]
        lines += [
            "",
            f"## Run {k}",
            "",
            _header(run),
            "",
            f"| model | batch | work / step | 1 thread (ms) | {many} threads (ms) | speed-up "
            "| others (cores) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in run["cases"]:
            model = f"{c['kind']} {tuple(c['input_shape'])} {tuple(c['hidden'])}"
            lines.append(
                f"| {model} | {c['batch']} | {c['work']:.2g} | {c['median_step_ms']['1']:.1f} | "
                f"{c['median_step_ms'][str(many)]:.1f} | {c['speedup']:.2f} | {c['others_median']:.2f} |"
            )
    return "\n".join(lines) + "\n"


# -- jobs --------------------------------------------------------------------------------------------------
def jobs(args: argparse.Namespace, folder: Path) -> dict:
    import torch

    default_threads = _fresh_default_threads()
    odds = np.load(DATA / "odds" / "cardio.npz")
    np.savez(folder / "cardio.npz", x=odds["X"], y=odds["y"])  # aekit reads x (ODDS files name it X)
    aekit = [sys.executable, "-m", "aekit"]
    commands = {
        "detect_cardio": ["train", "--task", "detect", "--data", "cardio.npz", "--quiet"],  # in cwd
        "conv_digits": ["train", "--data", "digits", "--kind", "conv", "--epochs", "5", "--quiet"],
    }
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT / "src")
    env.setdefault("AEKIT_DATA_DIR", str(DATA))
    results = {}
    for name, command in commands.items():
        runs: dict[str, list] = {"before": [], "after": []}
        order = [("before", "after") if rep % 2 == 0 else ("after", "before") for rep in range(args.reps)]
        for k, which in enumerate(w for pair in order for w in pair):
            out = folder / f"{name}-{which}-{k}.aek"
            extra = ["--threads", str(default_threads)] if which == "before" else []
            argv = [*command, "--out", str(out), "--runs", str(folder / "runs"), *extra]
            b0, c0, t0 = busy_seconds(), _children_cpu(), time.perf_counter()
            subprocess.run([*aekit, *argv], env=env, cwd=folder, check=True, capture_output=True)
            t1, c1, b1 = time.perf_counter(), _children_cpu(), busy_seconds()
            others = others_cores(b1 - b0, c1 - c0, t1 - t0)
            run = {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "others": others}
            run.update(_describe(out, odds["y"] if name == "detect_cardio" else None))
            runs[which].append(run)
            print(f"{name:14} {which:6} {run['seconds']:7.1f} s  others {others:.2f} cores", flush=True)
        median = {w: statistics.median(r["seconds"] for r in runs[w]) for w in runs}
        results[name] = {
            "command": "aekit " + " ".join(command) + " --out OUT",
            "before_option": f"--threads {default_threads}",
            "runs": runs,
            "median_seconds": median,
            "speedup": median["before"] / median["after"],
        }
    return _doc(args, {"default_threads": default_threads, "torch": torch.__version__, "jobs": results})


def jobs_markdown(runs: list[dict]) -> str:
    lines = ["# Threads per job: the issue's commands before and after", ""]
    lines += [
        "Each command in a fresh process, OMP_NUM_THREADS unset. Before: `--threads N` with N torch's "
        "default count in a fresh process (the old behaviour); after: no option, the count chosen from the "
        "work. Median wall time of the run's repetitions, taking turns; 'others' = cores that other "
        "processes kept busy meanwhile (median); 'threads after' and 'work / step' from the trained model.",
    ]
    for k, run in enumerate(runs, 1):
        lines += [
            "",
            f"## Run {k}",
            "",
            _header(run),
            "",
            f"Before: `--threads {run['default_threads']}`; {run['reps']} run(s) of each.",
            "",
            "| command | before (s) | after (s) | speed-up | threads after | work / step "
            "| AUROC before / after | others (cores) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in run["jobs"].values():
            before, after = r["runs"]["before"], r["runs"]["after"]
            auroc = " / ".join(
                ", ".join(f"{x['auroc']:.4f}" for x in side) if "auroc" in side[0] else "-"
                for side in (before, after)
            )
            others = statistics.median(x["others"] for x in before + after)
            seconds = r["median_seconds"]
            lines.append(
                f"| `{r['command']}` | {seconds['before']:.1f} | {seconds['after']:.1f} | "
                f"{r['speedup']:.1f} | {after[0]['threads']} | {after[0]['work']:.2g} | {auroc} | "
                f"{others:.2f} |"
            )
    return "\n".join(lines) + "\n"


def _fresh_default_threads() -> int:
    """torch's own thread count in a fresh process without OMP_NUM_THREADS: what every job used before."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _describe(path: Path, labels: np.ndarray | None) -> dict:
    """The thread count the rule gives the trained model's batches, its work per step, and for a
    detector the AUROC of its training scores against ``labels``."""
    from aekit import AnomalyDetector, AutoEncoder
    from aekit.threads import choose, macs_per_row

    if labels is None:
        members = [AutoEncoder.load(path, device="cpu")]
    else:
        detector = AnomalyDetector.load(path, device="cpu")
        members = detector.estimators_
    # every member trained at the detector's batch (its rows exceed it): the largest work decides
    work = max(m.batch_size * macs_per_row(m.model_, m.spec_.input_shape) for m in members)
    found = {"work": work, "threads": choose(work)}
    if labels is not None:
        from sklearn.metrics import roc_auc_score

        found["auroc"] = float(roc_auc_score(labels, detector.decision_scores_))
    return found


# -- records -----------------------------------------------------------------------------------------------
def _doc(args: argparse.Namespace, body: dict) -> dict:
    from aekit import __version__

    return {
        "benchmark": f"threads {args.part}",
        "command": "PYTHONPATH=src .venv/bin/python bench/threads.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {**machine(), "usable_cores": len(os.sched_getaffinity(0))},
        "versions": {"aekit": __version__, "aekit_git": git_version()},
        "loadavg_before": args.loadavg_before,
        "loadavg_after": os.getloadavg(),
        "reps": args.reps,
        "busy_processes": args.busy,
        **body,
    }


def _header(doc: dict) -> str:
    m = doc["machine"]
    before, after = (", ".join(f"{v:.1f}" for v in doc[k]) for k in ("loadavg_before", "loadavg_after"))
    return (
        f"{doc['date']} · {m['cpu']} · {m['cores']} cores ({m['usable_cores']} usable) · aekit "
        f"{doc['versions']['aekit']} ({doc['versions']['aekit_git']}) · load average before / after: "
        f"{before} / {after} · {doc.get('busy_processes', 0)} busy loop(s) of our own running meanwhile"
        f"\n\n`{doc['command']}`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("sweep", "jobs"))
    parser.add_argument("--reps", type=int, default=None, help="runs of each (default: sweep 5, jobs 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="default: bench/results")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--append", action="store_true", help="add this run to the recorded ones")
    parser.add_argument(
        "--busy", type=int, default=0, metavar="N", help="keep N cores busy meanwhile (a CPU-bound loop each)"
    )
    args = parser.parse_args()
    args.reps = args.reps or (5 if args.part == "sweep" else 2)
    args.loadavg_before = os.getloadavg()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        name, doc, markdown = run_part(args)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(markdown)
    if not args.no_write:
        save_results(args.out, name, doc, markdown)


def run_part(args: argparse.Namespace) -> tuple[str, dict, str]:
    name = "threads_sweep" if args.part == "sweep" else "threads"
    earlier = args.out / f"{name}.json"
    runs = json.loads(earlier.read_text())["runs"] if args.append and earlier.exists() else []
    if args.part == "sweep":
        run, markdown = sweep(args), sweep_markdown
    else:
        with tempfile.TemporaryDirectory() as folder:
            run, markdown = jobs(args, Path(folder)), jobs_markdown
    doc = {"benchmark": f"threads {args.part}", "runs": [*runs, run]}
    return name, doc, markdown(doc["runs"])


if __name__ == "__main__":
    main()
