"""What the runs folder holds: training runs (metrics.jsonl, run.json) and ``aekit compare`` reports.

Everything is looked up again on each request, so a run started after the server shows up, and its
curves grow while it trains. Names are the folder names the listing gives; a request's name is looked up
in that listing (a dict), never joined onto a path, and every file read must resolve inside the runs
folder (a symlink pointing out of it is ignored). The one file outside it that counts is the model a
run.json names (``model_file``): the workspace lists it as a model, and reads it only as one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aekit import runfolder
from aekit.dashboard.errors import NotFound
from aekit.runfolder import CHECKPOINT, METRICS, RUN_CONFIG

COMPARISON = "comparison.json"  # aekit.reports.compare.FILES: what 'aekit compare -o DIR' writes
EXAMPLES = "examples.npz"
LIVE_SECONDS = 60  # an unfinished run whose metrics (or folder) changed this recently is shown as training
COMPARE_DEPTH = 2  # comparison folders are looked for this many levels below the runs folder


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (after following links) lies in ``root``: the only files the server reads."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def run_folders(root: Path) -> dict[str, Path]:
    """Run name -> folder, for every folder in ``root`` with a metrics.jsonl, run.json or checkpoint."""
    if not root.is_dir():
        return {}
    found = {}
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not child.is_dir() or not inside(child, root):
            continue
        if any((child / name).is_file() for name in (METRICS, RUN_CONFIG, CHECKPOINT)):
            found[child.name] = child
    return found


def run_folder(root: Path, name: str) -> Path:
    folders = run_folders(root)
    if name not in folders:
        raise NotFound(f"no run named {name!r} in {root}; GET /api/runs lists the runs.")
    return folders[name]


def read_metrics(folder: Path, root: Path) -> list[dict[str, Any] | None]:
    """The rows of metrics.jsonl (``aekit.runfolder.read_metrics``); none from a file outside ``root``."""
    path = folder / METRICS
    if not path.is_file() or not inside(path, root):
        return []
    return runfolder.read_metrics(folder)


def read_config(folder: Path, root: Path) -> dict[str, Any]:
    """run.json as a dict, or {} when it is missing, unreadable or outside ``root``."""
    path = folder / RUN_CONFIG
    if not path.is_file() or not inside(path, root):
        return {}
    return runfolder.read_config(folder)


def model_file(config: dict[str, Any], root: Path) -> Path | None:
    """The model file a run's run.json names (its --out, which may lie outside the runs folder).

    'aekit train' records it as an absolute path; older run.json files hold --out as it was typed,
    relative to where training ran, which is the runs folder's parent when --runs was left at its default.
    """
    out = config.get("out")
    if not isinstance(out, str) or not out:
        return None
    path = Path(out)
    if not path.is_absolute():
        if "runs" in config:  # trained with another --runs: where it ran is not known
            return None
        path = root.resolve().parent / path
    return path


# what each 'aekit train --task' makes, for the run's label; reconstruct (and no task: older runs) by default
TASK_NAMES = {
    "reconstruct": "autoencoder",
    "detect": "anomaly detector",
    "denoise": "denoiser",
    "colorize": "colorizer",
    "upscale": "upscaler",
    "inpaint": "inpainter",
    "compress": "codec",
}
FAMILY_TASKS = ("reconstruct", "detect")  # their models are autoencoders of a --kind


def label(config: dict[str, Any], model: dict[str, Any] | None = None) -> str:
    """What the run trains, as the Runs list shows it: "dense autoencoder · code 4 · digits".

    ``model`` is the finished model's description (GET /api/models), which knows what the run's options
    left to the data (a detector's code size); otherwise run.json says what was asked for.
    """
    model = model or {}
    task = config.get("task") or "reconstruct"
    what = TASK_NAMES.get(str(task), str(task))
    parts = []
    if task in FAMILY_TASKS:
        family = model.get("kind") or config.get("kind")
        denoising = " denoising" if config.get("noise") else ""
        parts.append(f"{family}{denoising} {what}" if family else what)
        code = model.get("code_size") or (config.get("code_size") if task == "reconstruct" else None)
        if code:
            parts.append(f"code {code}")
        if model.get("members"):
            parts.append(f"{model['members']} members")
    else:
        parts.append(what)
    if config.get("data"):
        parts.append(str(config["data"]))
    return " · ".join(parts)


def summary(
    name: str,
    folder: Path,
    root: Path,
    now: float | None = None,
    describe: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """One entry of GET /api/runs. ``describe(config)`` describes the model file a finished run's
    run.json names (None when it is not listed or does not open)."""
    rows = [row for row in read_metrics(folder, root) if row is not None]
    config = read_config(folder, root)
    metrics = folder / METRICS
    updated = (metrics if metrics.is_file() else folder).stat().st_mtime
    now = time.time() if now is None else now
    done = finished(config, root, updated)
    model = describe(config) if done and describe is not None else None
    trained = config.get("trained") if done and isinstance(config.get("trained"), dict) else None
    return {
        "name": name,
        "config": config,
        "label": label(config, model) if config else None,
        "model": model["name"] if model else None,
        "epochs": len(rows),
        "trained": trained or ({"epochs": len(rows)} if rows else None),
        "last": rows[-1] if rows else None,
        "updated": updated,
        "finished": done,
        "live": not done and now - updated < LIVE_SECONDS,
    }


def finished(config: dict[str, Any], root: Path, updated: float) -> bool:
    """Whether the run ended with its model saved: run.json's "finished" time, or, for runs from before
    it was recorded, a model file saved after the last metrics line."""
    if "finished" in config:
        return True
    path = model_file(config, root)
    try:
        return path is not None and path.stat().st_mtime >= updated
    except OSError:
        return False


def metrics_since(folder: Path, root: Path, since: int) -> dict[str, Any]:
    """GET /api/runs/{run}/metrics: the rows from line ``since`` on, and where the next poll starts."""
    rows = read_metrics(folder, root)
    return {"rows": [row for row in rows[since:] if row is not None], "next": len(rows)}


# -- aekit compare reports -----------------------------------------------------------------------------------


def comparison_folders(root: Path) -> dict[str, Path]:
    """Name (the folder's path below the runs folder, '.' for the folder itself) -> folder, for every
    folder up to COMPARE_DEPTH levels down that holds a comparison.json."""
    if not root.is_dir():
        return {}
    found = {}
    level = [root]
    for depth in range(COMPARE_DEPTH + 1):
        below = []
        for folder in level:
            if (folder / COMPARISON).is_file() and inside(folder / COMPARISON, root):
                found[folder.relative_to(root).as_posix()] = folder
            if depth < COMPARE_DEPTH:
                below += [c for c in sorted(folder.iterdir()) if c.is_dir() and not c.name.startswith(".")]
        level = [c for c in below if inside(c, root)]
    return found


def read_comparison(name: str, folder: Path, root: Path, to_url) -> dict[str, Any] | None:
    """One entry of GET /api/compare; None for a comparison.json that is not one."""
    try:
        doc = json.loads((folder / COMPARISON).read_text(encoding="utf-8"))
        rows = doc["rows"]
        result = {
            "name": name,
            "data": doc.get("data"),
            "kind": doc.get("kind"),
            "unit": doc.get("unit"),
            "mean_error": doc.get("mean_mse"),
            "code_sizes": [int(row["code_size"]) for row in rows],
            "ae_error": [_number(row["ae_mse"]) for row in rows],
            "pca_error": [_number(row["pca_mse"]) for row in rows],
        }
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    result["examples"] = _examples(folder / EXAMPLES, root, result["code_sizes"], to_url)
    return result


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _examples(path: Path, root: Path, sizes: list[int], to_url) -> dict[str, Any] | None:
    """examples.npz as data URLs: inputs and, per code size, AE and PCA reconstructions; None if absent
    or not as ``aekit compare`` writes it (uint8 images, one array per method and size)."""
    if not path.is_file() or not inside(path, root):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError):
        return None
    keys = ["inputs"] + [f"{method}_{k}" for k in sizes for method in ("ae", "pca")]
    if not all(
        key in arrays and arrays[key].dtype == np.uint8 and arrays[key].ndim in (3, 4) for key in keys
    ):
        return None
    return {
        "inputs": [to_url(im) for im in arrays["inputs"]],
        "sizes": {
            str(k): {method: [to_url(im) for im in arrays[f"{method}_{k}"]] for method in ("ae", "pca")}
            for k in sizes
        },
    }
