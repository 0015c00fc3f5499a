"""Streaming batch inference: throughput and peak memory of `aekit embed` / `aekit reconstruct` on a big .npy.

Run from the repository root:

    PYTHONPATH=src .venv/bin/python bench/streaming.py            # full run: ~3 min on 2 cores
    PYTHONPATH=src .venv/bin/python bench/streaming.py --quick    # smoke check: < 1 min, writes nothing

A float32 table (--mb megabytes, 256 features) is written to a temporary .npy, and a dense 256-64-8
autoencoder is trained on a slice of it. Each measurement runs in a fresh process that loads torch and
aekit and applies the model once to a small array (so libraries and thread pools are in place), then
resets its peak resident memory (``/proc/self/clear_refs``) and notes its resident set:

- **stream**: ``aekit embed|reconstruct model big.npy -o out.npy`` (default chunks, one process);
- **stream, 2 workers**: the same with ``--workers 2`` (two spawned processes, one torch thread each);
- **in memory**: ``np.load`` + ``transform``/``reconstruct`` + ``write_array``, as before streaming.

Peak memory is VmHWM after the reset, so it counts only what the run itself adds. Every output is compared
with the in-memory one (they must be equal, bit for bit).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch

from aekit import AutoEncoder, __version__

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import git_version, machine, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 256

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from aekit import AutoEncoder
    from aekit.cli.main import main
    from aekit.data import write_array

    def status(field):  # MB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    model, data, out, verb, mode = sys.argv[1:]
    AutoEncoder.load(model).reconstruct(np.zeros((1024, 256), np.float32))  # libraries and threads in place
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak so far is forgotten: VmHWM restarts at the resident set now
    before = status("VmRSS")
    started = time.perf_counter()
    if mode == "memory":
        est = AutoEncoder.load(model)
        x = np.load(data)
        write_array(out, est.transform(x) if verb == "embed" else est.reconstruct(x))
        code = 0
    else:
        workers = ["--workers", "2"] if mode == "workers" else []
        code = main([verb, model, data, "-o", out, "--quiet", *workers])
    seconds = time.perf_counter() - started
    print(json.dumps({"code": code, "seconds": seconds, "rss_before_mb": before,
                      "peak_mb": status("VmHWM"), "growth_mb": status("VmHWM") - before}))
    """
)
MODES = {"stream": "stream, 1 process", "workers": "stream, --workers 2", "memory": "in memory (before)"}


def write_table(path: Path, megabytes: int) -> int:
    """A float32 .npy of ``megabytes``, written a slice at a time (this process never holds it)."""
    rows = megabytes * 2**20 // (4 * WIDTH)
    rng = np.random.default_rng(0)
    offsets = rng.uniform(-50, 50, WIDTH).astype(np.float32)
    with path.open("wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (rows, WIDTH)}
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, rows, 16384):
            (rng.normal(size=(min(16384, rows - start), WIDTH)).astype(np.float32) + offsets).tofile(f)
    return rows


def child(model: Path, data: Path, out: Path, verb: str, mode: str) -> dict:
    argv = [sys.executable, "-c", CHILD, str(model), str(data), str(out), verb, mode]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the {verb} {mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same(a: Path, b: Path) -> bool:
    """Two .npy files hold equal arrays (compared a slice at a time)."""
    x, y = np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r")
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    return all(np.array_equal(x[i : i + 65536], y[i : i + 65536]) for i in range(0, len(x), 65536))


def markdown(doc: dict) -> str:
    s, m, v = doc["settings"], doc["machine"], doc["versions"]
    lines = [
        "# Streaming batch inference: throughput and peak memory",
        "",
        f"{doc['date']} · {m['cpu']} · {m['cores']} cores (shared with other work) · torch {v['torch']} · "
        f"aekit {v['aekit']} ({v['aekit_git']})",
        "",
        f"`{doc['command']}` · a float32 table of {s['rows']} x {WIDTH} ({s['file_mb']:.0f} MB), dense "
        f"{WIDTH}-64-8, default chunks ({s['chunk_rows']} rows)",
        "",
        "| verb | how | seconds | rows/s | peak memory added | output equal to in-memory |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for verb, runs in doc["runs"].items():
        for mode, run in runs.items():
            lines.append(
                f"| {verb} | {MODES[mode]} | {run['seconds']:.1f} | {s['rows'] / run['seconds']:.0f} | "
                f"**{run['growth_mb']:.0f} MB** | {doc['checks'][f'{verb}_{mode}_equal']} |"
            )
    lines += ["", *[f"- {note}" for note in doc["notes"]], ""]
    return "\n".join(lines)


NOTES = [
    "Peak memory added is VmHWM after /proc/self/clear_refs reset it, less the resident set at the reset: "
    "what the run itself held at its peak. The input is read with pread (no memory map) and the output "
    "written as it goes, so neither file's pages count as the process's memory.",
    "The file had just been written, so reads came from the page cache: the times compare compute and "
    "copies, not disk speed.",
    "--workers 2 spawns two processes (each imports torch and loads the model: a few seconds) and ships "
    "every chunk to a worker and its result back through pipes; each worker uses one torch thread. On a "
    "2-core machine that is already using both cores for one process it cannot win; workers are for "
    "machines with many cores, where one process's torch threads do not scale.",
    "One run each on a shared, busy 2-core VM (load average in the JSON): timings are indicative, the "
    "memory figures are not affected.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the input file in MB (default 256)")
    parser.add_argument("--quick", action="store_true", help="a 32 MB file: a smoke check; writes nothing")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (bench/results)")
    args = parser.parse_args()
    if args.quick:
        args.mb = 32
    from aekit.streaming import chunk_rows

    runs: dict[str, dict] = {}
    checks: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="aekit-stream-bench-") as tmp:
        data, model = Path(tmp) / "table.npy", Path(tmp) / "m.aek"
        rows = write_table(data, args.mb)
        sample = np.load(data, mmap_mode="r")[:4096]
        AutoEncoder(code_size=8, hidden=(64,), epochs=1, random_state=0).fit(np.array(sample)).save(model)
        for verb in ("embed", "reconstruct"):
            runs[verb] = {}
            for mode in ("memory", "stream", "workers"):
                out = Path(tmp) / f"{verb}_{mode}.npy"
                runs[verb][mode] = child(model, data, out, verb, mode)
                print(verb, mode, json.dumps(runs[verb][mode]), flush=True)
            for mode in ("stream", "workers"):
                result, reference = Path(tmp) / f"{verb}_{mode}.npy", Path(tmp) / f"{verb}_memory.npy"
                checks[f"{verb}_{mode}_equal"] = same(result, reference)
            for mode in ("memory", "stream", "workers"):
                (Path(tmp) / f"{verb}_{mode}.npy").unlink()
            checks[f"{verb}_memory_equal"] = True  # the reference itself
        size = data.stat().st_size
    doc = {
        "benchmark": "streaming",
        "command": "PYTHONPATH=src .venv/bin/python bench/streaming.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {**machine(), "shared": True},
        "versions": {"torch": torch.__version__, "aekit": __version__, "aekit_git": git_version()},
        "settings": {
            "file_mb": size / 2**20,
            "rows": rows,
            "width": WIDTH,
            "chunk_rows": chunk_rows((WIDTH,)),
            "model": f"dense {WIDTH}-64-8",
        },
        "loadavg_after": os.getloadavg(),
        "runs": runs,
        "checks": checks,
        "notes": NOTES,
    }
    print(markdown(doc))
    out = args.out if args.out is not None else (None if args.quick else ROOT / "bench" / "results")
    if out is not None:
        save_results(out, "streaming", doc, markdown(doc))


if __name__ == "__main__":
    main()
