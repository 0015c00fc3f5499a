"""GET /api/health, /api/runs, /api/runs/{run}/metrics and /api/compare: what the runs folder holds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from aekit._version import __version__
from aekit.dashboard import images, runs
from aekit.dashboard.deps import WorkspaceDep

router = APIRouter(prefix="/api")


@router.get("/health")
def health(ws: WorkspaceDep) -> dict[str, Any]:
    return {"version": __version__, "runs_dir": str(ws.runs_dir), "data": ws.data_source}


@router.get("/runs")
def list_runs(ws: WorkspaceDep) -> dict[str, Any]:
    root, entries = ws.runs_dir, ws.entries()  # listed once: every finished run's model is looked up in it
    return {
        "runs": [
            runs.summary(name, folder, root, describe=lambda config: ws.run_model(config, entries))
            for name, folder in runs.run_folders(root).items()
        ]
    }


@router.get("/runs/{run}/metrics")
def metrics(run: str, ws: WorkspaceDep, since: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The rows of the run's metrics.jsonl from line ``since`` on; the page polls with since=next."""
    return runs.metrics_since(runs.run_folder(ws.runs_dir, run), ws.runs_dir, since)


@router.get("/compare")
def compare(ws: WorkspaceDep) -> dict[str, Any]:
    root = ws.runs_dir
    found = (
        runs.read_comparison(name, folder, root, images.data_url)
        for name, folder in runs.comparison_folders(root).items()
    )
    return {"results": [result for result in found if result is not None]}
