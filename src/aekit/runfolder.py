"""The run folder a training run keeps on disk, and the one place its file names are spelled out.

A run folder holds ``checkpoint.safetensors`` and ``metrics.jsonl`` (the trainer rewrites both after
every epoch) and ``run.json``: the run's settings and when it started, with ``finished`` and ``trained``
added when it ends. 'aekit train' writes a rich run.json before training; a run started from Python gets
the one the trainer writes. Standard library only: 'aekit dashboard' lists runs without importing torch.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from aekit.atomic import write_text_atomic

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
RUN_CONFIG = "run.json"
RESULTS = ("finished", "trained")  # what run.json gains when training ends


def read_config(run_dir: Path) -> dict[str, Any]:
    """run.json as a dict, or {} when it is missing or unreadable (runs from before it existed)."""
    try:
        config = json.loads((Path(run_dir) / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    write_text_atomic(Path(run_dir) / RUN_CONFIG, json.dumps(config, default=str, indent=1) + "\n")


def start(run_dir: Path, settings: dict[str, Any]) -> list[Path]:
    """Write a new run.json: ``settings`` and the time it started. Returns the folders it had to make
    (innermost first), for ``forget``."""
    run_dir = Path(run_dir)
    made = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
    write_config(run_dir, {**settings, "started": time.time()})
    return made


def reopen(run_dir: Path) -> None:
    """A finished run that trains again (a resume): take back its finished mark, keep the rest."""
    config = read_config(run_dir)
    if any(key in config for key in RESULTS):
        write_config(run_dir, {k: v for k, v in config.items() if k not in RESULTS})


def finish(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Mark run.json finished, with how long it trained: epochs, or optimizer steps for a history that
    logs steps (the codec's). 'aekit dashboard' stops calling it live. No run.json: nothing to mark."""
    if not (Path(run_dir) / RUN_CONFIG).is_file():
        return
    last = history[-1] if history else {}
    trained = {"steps": last["step"]} if "step" in last else {"epochs": len(history)}
    write_config(run_dir, {**read_config(run_dir), "finished": time.time(), "trained": trained})


def forget(run_dir: Path, made: list[Path]) -> None:
    """Take run.json back when training failed before its first epoch, and the (empty) folders made for
    it: a refused run leaves nothing behind. A run that trained for a while is kept, settings and all."""
    run_dir = Path(run_dir)
    if (run_dir / METRICS).exists():
        return
    (run_dir / RUN_CONFIG).unlink(missing_ok=True)
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if it is empty


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl: one JSON object per epoch, the whole history rewritten at once."""
    write_text_atomic(Path(run_dir) / METRICS, "".join(json.dumps(r) + "\n" for r in history))


def read_metrics(run_dir: Path) -> list[dict[str, Any] | None]:
    """The rows of metrics.jsonl, one per line; a line that is not a JSON object gives None (kept, so
    row numbers stay line numbers)."""
    path = Path(run_dir) / METRICS
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows: list[dict[str, Any] | None] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        rows.append(row if isinstance(row, dict) else None)
    return rows
