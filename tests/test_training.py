"""The trainer: early stopping, metrics and checkpoints on disk, resuming after a real SIGKILL, NaN losses,
denoising inputs, learning-rate schedules."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit import AutoEncoder, losses, noise, tensorfile
from aekit.errors import ConfigError, ModelFileError, TrainingError
from aekit.models import build_model
from aekit.runfolder import RUN_CONFIG
from aekit.training import CHECKPOINT, METRICS, TrainConfig, Trainer, evaluate


def tiny_model(**settings):
    torch.manual_seed(0)
    return build_model("dense", {"input_shape": (6,), "code_size": 2, "hidden": (4,), **settings})


def table(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def snapshots(monkeypatch):
    """Record the epoch and a copy of the weights each time the trainer finishes an epoch."""
    taken: list[tuple[int, dict[str, torch.Tensor]]] = []
    original = Trainer._write_epoch

    def record(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        taken.append((state["epoch"], {k: v.clone() for k, v in model.state_dict().items()}))

    monkeypatch.setattr(Trainer, "_write_epoch", record)
    return taken


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- early stopping --------------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_weights(snapshots):
    # Training on zeros drives the outputs to 0, so the loss on a validation set of ones gets worse every
    # epoch after the first: the best epoch is 1 and patience 2 stops the run at epoch 3 of 20.
    model = tiny_model()
    config = TrainConfig(epochs=20, batch_size=8, lr=1e-2, schedule="constant", patience=2)
    history = Trainer(config).fit(model, torch.zeros(32, 6), torch.ones(8, 6))
    val = [r["val_loss"] for r in history]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert val[0] < val[1] < val[2]
    best_epoch, best_weights = snapshots[0]
    assert best_epoch == 1
    assert same_weights(model.state_dict(), best_weights)
    assert not same_weights(model.state_dict(), snapshots[-1][1])
    assert evaluate(model, torch.ones(8, 6))["loss"] == pytest.approx(val[0], rel=1e-6)
    assert not model.training


@pytest.mark.parametrize(
    ("patience", "with_val"), [(None, True), (2, False)], ids=["patience-None", "no-val-set"]
)
def test_without_patience_or_validation_it_runs_every_epoch(patience, with_val):
    model = tiny_model()
    config = TrainConfig(epochs=5, batch_size=8, lr=1e-2, schedule="constant", patience=patience)
    history = Trainer(config).fit(model, torch.zeros(32, 6), torch.ones(8, 6) if with_val else None)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert ("val_loss" in history[0]) == with_val


# -- files written during training -----------------------------------------------------------------------
def test_metrics_and_checkpoint_are_written_after_every_epoch(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    seen = []
    original = Trainer._write_epoch

    def check(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        assert sorted(os.listdir(run_dir)) == sorted(
            [CHECKPOINT, METRICS, RUN_CONFIG]
        )  # no temporary files left
        tensors, doc = tensorfile.load(run_dir / CHECKPOINT, what="checkpoint")
        saved = tensorfile.unflatten(doc["state"], tensors)
        assert doc["kind"] == "aekit-checkpoint"
        assert same_weights(saved["model"], model.state_dict())
        lines = (run_dir / METRICS).read_text().splitlines()
        seen.append((saved["epoch"], len(lines)))

    monkeypatch.setattr(Trainer, "_write_epoch", check)
    config = TrainConfig(epochs=3, batch_size=8, patience=None, run_dir=run_dir)
    Trainer(config).fit(tiny_model(), table(), table(8, seed=1))
    assert seen == [(1, 1), (2, 2), (3, 3)]
    records = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for r in records:
        assert {"loss", "val_loss", "recon", "val_recon", "lr", "seconds"} <= r.keys()
        assert math.isfinite(r["loss"]) and math.isfinite(r["val_loss"])


def test_nothing_is_written_without_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(TrainConfig(epochs=2, batch_size=8)).fit(tiny_model(), table())
    assert os.listdir(tmp_path) == []


def test_a_crash_while_writing_the_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    calls = []

    def save_then_crash(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:  # epoch 2: half a file, then the disk fills up
            Path(filename).write_bytes(b"\x00" * 100)
            raise OSError(28, "No space left on device")
        from safetensors.torch import save_file

        save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(tensorfile, "save_file", save_then_crash)
    config = TrainConfig(epochs=3, batch_size=8, patience=None, run_dir=run_dir)
    with pytest.raises(OSError, match="No space left"):
        Trainer(config).fit(tiny_model(), table())
    assert (
        Path(calls[1]).parent == run_dir and Path(calls[1]).name != CHECKPOINT
    )  # written beside, then renamed
    assert sorted(os.listdir(run_dir)) == sorted([CHECKPOINT, METRICS, RUN_CONFIG])
    monkeypatch.undo()
    tensors, doc = tensorfile.load(run_dir / CHECKPOINT, what="checkpoint")
    assert tensorfile.unflatten(doc["state"], tensors)["epoch"] == 1


# -- resuming --------------------------------------------------------------------------------------------
KILL_AFTER_EPOCH_2 = r"""
import json, os, signal, sys
import numpy as np, torch
from aekit import AutoEncoder
from aekit.training import Trainer

params, data, run_dir, threads = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
original = Trainer._write_epoch

def write_then_die(self, model, optimizer, scheduler, state):
    original(self, model, optimizer, scheduler, state)
    if state["epoch"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally blocks: as from the OOM killer

Trainer._write_epoch = write_then_die
AutoEncoder(**params, run_dir=run_dir).fit(np.load(data))
print("not killed")
"""


def fit_and_kill(tmp_path: Path, params: dict, X: np.ndarray) -> Path:
    run_dir, data = tmp_path / "run", tmp_path / "x.npy"
    np.save(data, X)
    env = {**os.environ, "PYTHONPATH": str(Path(aekit.__file__).parents[1])}
    args = [json.dumps(params), str(data), str(run_dir), str(torch.get_num_threads())]
    done = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_EPOCH_2, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    assert len((run_dir / METRICS).read_text().splitlines()) == 2
    return run_dir


RESUME_CASES = {
    # a VAE (random samples) with noise and a validation set: every source of randomness must line up
    "vae-gaussian": ({"kind": "vae", "noise": "gaussian"}, np.random.default_rng(0).random((48, 6))),
    "conv-salt_pepper": (
        {"kind": "conv", "noise": "salt_pepper"},
        np.random.default_rng(0).integers(0, 256, (32, 8, 8), dtype=np.uint8),
    ),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_after_a_kill_is_bit_identical_to_an_uninterrupted_run(tmp_path, snapshots, case):
    settings, X = RESUME_CASES[case]
    params = {
        **settings,
        "code_size": 2,
        "hidden": (4,),
        "epochs": 5,
        "batch_size": 16,
        "random_state": 3,
        "patience": 10,
    }
    run_dir = fit_and_kill(tmp_path, params, X)
    resumed = AutoEncoder(**params, run_dir=run_dir, resume=True).fit(X)
    assert [epoch for epoch, _ in snapshots] == [3, 4, 5]  # it continued; it did not start over
    whole = AutoEncoder(**params).fit(X)
    assert same_weights(resumed.model_.state_dict(), whole.model_.state_dict())
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history_] == [
        {k: v for k, v in r.items() if k not in drop} for r in whole.history_
    ]
    assert [json.loads(line)["epoch"] for line in (run_dir / METRICS).read_text().splitlines()] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_resuming_with_other_settings_is_refused(tmp_path):
    X = np.random.default_rng(0).random((32, 6))
    params = {
        "code_size": 2,
        "hidden": (4,),
        "epochs": 2,
        "batch_size": 16,
        "random_state": 0,
        "run_dir": tmp_path,
    }
    AutoEncoder(**params).fit(X)
    with pytest.raises(ConfigError, match=r"cannot resume.*lr=0\.006 \(now 0\.01\)"):
        AutoEncoder(**{**params, "lr": 1e-2}, resume=True).fit(X)
    with pytest.raises(ConfigError, match=r"cannot resume.*n_samples"):
        AutoEncoder(**params, resume=True).fit(X[:20])
    with pytest.raises(ModelFileError, match="different model"):
        AutoEncoder(**{**params, "hidden": (5,)}, resume=True).fit(X)


def test_resume_needs_a_run_dir_with_a_checkpoint(tmp_path):
    X = np.random.default_rng(0).random((32, 6))
    with pytest.raises(ConfigError, match="resume=True needs run_dir"):
        AutoEncoder(epochs=1, resume=True).fit(X)
    with pytest.raises(ModelFileError, match="no checkpoint"):
        AutoEncoder(epochs=1, resume=True, run_dir=tmp_path).fit(X)


# -- NaN -------------------------------------------------------------------------------------------------
def test_a_huge_learning_rate_gives_a_training_error_that_says_what_to_do():
    X = np.random.default_rng(0).normal(size=(48, 6))
    with pytest.raises(
        TrainingError, match=r"loss became nan in epoch 1\. Lower the learning rate .*lr=1e\+30"
    ):
        AutoEncoder(
            code_size=2, hidden=(4,), epochs=2, lr=1e30, schedule="constant", batch_size=8, random_state=0
        ).fit(X)


def test_a_nan_in_a_later_epoch_names_that_epoch_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = []
    objective = losses.objective

    def nan_from_epoch_3(model, out, target):
        calls.append(1)
        parts = objective(model, out, target)
        if len(calls) > 8:  # 4 batches an epoch, no validation set
            parts["loss"] = parts["loss"] * math.nan
        return parts

    monkeypatch.setattr(losses, "objective", nan_from_epoch_3)
    config = TrainConfig(epochs=5, batch_size=8, run_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"in epoch 3\. Lower the learning rate"):
        Trainer(config).fit(tiny_model(), table())
    tensors, doc = tensorfile.load(tmp_path / CHECKPOINT, what="checkpoint")
    assert tensorfile.unflatten(doc["state"], tensors)["epoch"] == 2
    assert len((tmp_path / METRICS).read_text().splitlines()) == 2


# -- denoising and schedules -----------------------------------------------------------------------------
def test_the_model_sees_noisy_inputs_and_the_loss_the_clean_ones(monkeypatch):
    x = table(16)
    model = tiny_model()
    seen = []
    objective = losses.objective

    def spy(model, out, target):
        seen.append(target.clone())
        return objective(model, out, target)

    forward = model.forward
    inputs = []
    monkeypatch.setattr(model, "forward", lambda batch: inputs.append(batch.clone()) or forward(batch))
    monkeypatch.setattr(losses, "objective", spy)
    Trainer(TrainConfig(epochs=1, batch_size=16, noise="mask", noise_level=0.5)).fit(model, x)
    (target,), (noisy,) = seen, inputs
    assert torch.equal(target.sort(dim=0).values, x.sort(dim=0).values)  # the clean rows, shuffled
    assert (noisy == 0).float().mean() == pytest.approx(0.5, abs=0.15)
    kept = noisy != 0
    assert torch.equal(noisy[kept], target[kept])


@pytest.mark.parametrize("name", sorted(noise.NOISES))
def test_noise_leaves_the_clean_batch_alone_and_respects_the_range(name):
    x = table(64)
    clean = x.clone()
    torch.manual_seed(0)
    noisy = noise.NOISES[name](x, 0.3, 0.0, 1.0)
    assert torch.equal(x, clean)
    assert noisy.shape == x.shape
    assert not torch.equal(noisy, x)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert torch.equal(noise.NOISES[name](x, 0.0, 0.0, 1.0), x)


def test_salt_and_pepper_sets_a_fraction_to_the_extremes():
    x = torch.full((200, 10), 0.5)
    torch.manual_seed(0)
    noisy = noise.salt_pepper(x, 0.4, 0.0, 1.0)
    assert (noisy == 0).float().mean() == pytest.approx(0.2, abs=0.03)
    assert (noisy == 1).float().mean() == pytest.approx(0.2, abs=0.03)
    assert set(noisy.unique().tolist()) == {0.0, 0.5, 1.0}


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_schedules(schedule):
    history = Trainer(TrainConfig(epochs=3, batch_size=8, lr=1e-2, schedule=schedule)).fit(
        tiny_model(), table()
    )
    lrs = [r["lr"] for r in history]
    if schedule == "constant":
        assert lrs == [1e-2] * 3
    else:
        assert lrs[-1] < 1e-3  # annealed towards 0 by the end of the run
        assert max(lrs) <= 1e-2 + 1e-12


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"schedule": "step"}, "schedule='step' is not one of"),
        ({"noise": "pink"}, "noise='pink'"),
        ({"noise": "mask", "noise_level": -0.1}, "noise_level must be >= 0"),
    ],
)
def test_bad_train_config(bad, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(TrainConfig(**bad))


# -- input/target pairs --------------------------------------------------------------------------------------
def test_pairs_feed_the_model_their_input_and_score_their_target():
    # The pair maker swaps in a constant target: the model must learn to output it whatever it sees,
    # and validation must use the pairs too (its loss then falls with training loss).
    def to_halves(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch, torch.full_like(batch, 0.5)

    model = tiny_model()
    config = TrainConfig(
        epochs=30, batch_size=8, lr=1e-2, schedule="constant", patience=None, pairs=to_halves
    )
    history = Trainer(config).fit(model, table(), table(8, seed=1))
    assert history[-1]["val_loss"] < 1e-3 < history[0]["val_loss"]
    with torch.no_grad():
        assert torch.allclose(model(table(4, seed=2)).recon, torch.full((4, 6), 0.5), atol=0.05)


def test_validation_with_random_pairs_is_the_same_every_call_and_leaves_the_rng_alone():
    def noisy(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch + torch.randn_like(batch), batch

    model, x = tiny_model(), table(16)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = evaluate(model, x, pairs=noisy, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert evaluate(model, x, pairs=noisy, seed=5) == first
    assert evaluate(model, x, pairs=noisy, seed=6) != first
