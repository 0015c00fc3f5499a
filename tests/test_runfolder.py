"""The run folder (aekit.runfolder): file names, run.json and metrics.jsonl, without torch."""

from __future__ import annotations

import json
import subprocess
import sys

from aekit import runfolder


def test_it_imports_without_torch():
    """The dashboard lists runs through it: importing it must not import torch."""
    code = (
        "import sys; sys.modules['torch'] = None; import aekit.runfolder; print(aekit.runfolder.RUN_CONFIG)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "run.json"


def test_start_finish_reopen_and_forget(tmp_path):
    run_dir = tmp_path / "a" / "b"
    made = runfolder.start(run_dir, {"kind": "dense"})
    assert made == [run_dir, tmp_path / "a"]
    config = runfolder.read_config(run_dir)
    assert config["kind"] == "dense" and config["started"] > 0
    runfolder.finish(run_dir, [{"epoch": 1}, {"epoch": 2}])
    config = runfolder.read_config(run_dir)
    assert config["trained"] == {"epochs": 2} and config["finished"] >= config["started"]
    runfolder.reopen(run_dir)
    assert not set(runfolder.RESULTS) & set(runfolder.read_config(run_dir))
    runfolder.forget(run_dir, made)  # no metrics.jsonl: it never trained
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_trained_is_not_forgotten(tmp_path):
    made = runfolder.start(tmp_path / "r", {})
    runfolder.write_metrics(tmp_path / "r", [{"epoch": 1, "loss": 0.5}])
    runfolder.forget(tmp_path / "r", made)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [runfolder.METRICS, runfolder.RUN_CONFIG]


def test_metrics_rows_and_damaged_files(tmp_path):
    (tmp_path / runfolder.METRICS).write_text('{"epoch": 1}\nnot json\n\n[1]\n')
    assert runfolder.read_metrics(tmp_path) == [{"epoch": 1}, None, None]
    assert runfolder.read_metrics(tmp_path / "missing") == []
    (tmp_path / runfolder.RUN_CONFIG).write_text(json.dumps([1, 2]))
    assert runfolder.read_config(tmp_path) == {}
    runfolder.finish(tmp_path / "missing", [])  # no run.json: nothing to mark, nothing made
    assert not (tmp_path / "missing").exists()
