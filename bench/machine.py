"""What the benchmarks record about the machine they ran on (imported by the scripts in this folder)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    """The fields every benchmark's "machine" record starts with: platform, CPU model and core count."""
    import os

    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count()}


def git_version() -> str | None:
    """The commit measured, with '-dirty' when src/ has uncommitted changes; None outside a git checkout."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        except OSError:  # no git on the machine
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    return (commit + ("-dirty" if git("status", "--porcelain", "--", "src") else "")) or None


def save_results(out: Path, name: str, doc: dict, markdown: str, indent: int = 2) -> None:
    """Write ``out/name.json`` and ``out/name.md`` atomically (a killed run leaves the old figures whole)."""
    import json

    from aekit.atomic import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"{name}.json", json.dumps(doc, indent=indent) + "\n")
    write_text_atomic(out / f"{name}.md", markdown)
    print(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")


def mnist_subset(n_train: int, seed: int = 0):
    """(x_train, x_test, y_test): a seeded random ``n_train`` of MNIST's training images (in their order)
    and the whole test set, the data the MNIST benchmarks of one training share."""
    import numpy as np

    from aekit.data import load

    mnist = load("mnist")
    pick = np.sort(np.random.default_rng(seed).permutation(len(mnist.x_train))[:n_train])
    return mnist.x_train[pick], mnist.x_test, mnist.y_test
