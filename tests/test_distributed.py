"""Distributed training: torchrun with 2 processes (gloo, on 127.0.0.1) against 1 process, resuming, and
launches that cannot work; and the data protocol that gives each process its slice of every batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
import aekit.models
from aekit import AutoEncoder
from aekit.training import METRICS, TrainConfig, Trainer
from aekit.training.data import TensorData, TrainData
from aekit.training.distributed import Launch, check_launch
from cli_helpers import assert_one_error, run

SRC = str(Path(aekit.__file__).parents[1])
# A global batch of 63 rows is cut 32 + 31, and the 1387 training rows (1541 less 154 for validation) end in
# a batch of 1 row: rank 1's slice of it is empty. Uneven slices, so a process's loss must be weighted by
# its share of the batch for the match to hold, and an empty one must still join the step.
SETTINGS = [
    "--hidden", "16", "--code-size", "4", "--epochs", "3", "--batch-size", "63", "--device", "cpu",
    "--patience", "0", "--seed", "5", "--quiet",
]  # fmt: skip
# Two processes add the same gradients in another order, so float32 rounding differs: measured 1.2e-7 on
# the weights after these 69 steps. 1e-5 leaves room for other CPUs' kernels; a real fault does far more
# (measured): not weighting the uneven slices by their share moves the weights by 0.024, a batch of 32
# instead of 63 by 0.26.
WEIGHT_TOLERANCE = 1e-5


def samples(n: int = 1541, seed: int = 0) -> np.ndarray:
    """Rows on a 3-dimensional subspace of 12, plus noise: an autoencoder with a code of 4 learns them."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)) @ rng.normal(size=(3, 12)) + 0.1 * rng.normal(size=(n, 12))).astype(
        np.float32
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(cwd: Path, *argv: str, script: str | None = None) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 ... -m aekit ARGV`` (or the Python ``script``) in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": SRC}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    target = [script] if script else ["-m", "aekit"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    address = ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    return subprocess.run(
        [*launcher, *address, *target, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return AutoEncoder.load(path, device="cpu").model_.state_dict()


def history(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "seconds"}
        for line in (run_dir / METRICS).read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    """An uninterrupted 2-process run: the folder holding data.npy, model.aek and runs/model/."""
    folder = tmp_path_factory.mktemp("two")
    np.save(folder / "data.npy", samples())
    done = torchrun(folder, "train", "--data", "data.npy", "--out", "model.aek", "--runs", "runs", *SETTINGS)
    assert done.returncode == 0, done.stdout + done.stderr
    folder.joinpath("stdout.txt").write_text(done.stdout)
    return folder


# -- the data protocol ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "batch", "world"), [(9, 4, 3), (11, 4, 2), (8, 8, 2), (5, 2, 1)])
def test_the_ranks_together_see_each_global_batch_once(n, batch, world):
    data = TensorData(torch.arange(n * 2, dtype=torch.float32).reshape(n, 2))
    alone = list(data.batches(batch, seed=7))
    per_rank = [list(data.batches(batch, seed=7, rank=r, world=world)) for r in range(world)]
    assert all(len(batches) == len(alone) == -(-n // batch) for batches in per_rank)  # ranks stay in step
    for step, whole in enumerate(alone):
        slices = [batches[step] for batches in per_rank]
        assert torch.equal(torch.cat(slices), whole)  # every row once, none twice
        assert max(map(len, slices)) - min(map(len, slices)) <= 1  # near-equal, empty only when short
    assert sorted(torch.cat(alone)[:, 0].tolist()) == list(range(0, 2 * n, 2))  # a permutation
    assert torch.equal(torch.cat(list(data.batches(batch, seed=None))), data.x)  # no seed: in order


def test_shuffling_follows_the_seed_and_leaves_the_global_rng_alone():
    data = TensorData(torch.arange(50.0)[:, None])
    state = torch.get_rng_state()
    first, again, other = (torch.cat(list(data.batches(10, seed=s))) for s in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), state)


class RowsOnTheCpu:
    """A TrainData that is not a tensor: the trainer must take its batches as they come."""

    def __init__(self, x: torch.Tensor):
        self.inner = TensorData(x)

    def __len__(self) -> int:
        return len(self.inner)

    def batches(self, batch_size, seed, rank=0, world=1):
        for batch in self.inner.batches(batch_size, seed, rank, world):
            yield batch.clone()  # a fresh tensor, as a reader of files would make


def test_any_train_data_trains_like_the_tensor_it_holds():
    x, v = (torch.from_numpy(samples(n, seed)) for n, seed in ((64, 1), (16, 2)))
    assert isinstance(RowsOnTheCpu(x), TrainData)
    results = []
    for train, val in ((x, v), (RowsOnTheCpu(x), RowsOnTheCpu(v))):
        torch.manual_seed(0)
        model = aekit.models.build_model("dense", {"input_shape": (12,), "code_size": 2, "hidden": (8,)})
        # (no noise: for tensors the trainer keeps the noise stream of versions before TrainData)
        config = TrainConfig(epochs=2, batch_size=16, patience=None)
        results.append((Trainer(config).fit(model, train, val), model.state_dict()))
    (history_a, weights_a), (history_b, weights_b) = results
    assert [{**r, "seconds": 0} for r in history_a] == [{**r, "seconds": 0} for r in history_b]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_the_trainer_refuses_what_is_not_train_data():
    model = aekit.models.build_model("dense", {"input_shape": (3,), "code_size": 2, "hidden": (4,)})
    with pytest.raises(TypeError, match="batches"):
        Trainer(TrainConfig(epochs=1)).fit(model, [[0.0, 1.0, 2.0]])


# -- two processes ------------------------------------------------------------------------------------------
def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(two_processes, capsys):
    np.save(two_processes / "again.npy", samples())  # the same rows, so --out may not overwrite data.npy
    one = two_processes / "one"
    code, out, err = run(capsys, "train", "--data", two_processes / "again.npy", "--out", one / "model.aek",
                         "--runs", one / "runs", *SETTINGS)  # fmt: skip
    assert code == 0, err
    a, b = weights(one / "model.aek"), weights(two_processes / "model.aek")
    assert a.keys() == b.keys()
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert gap < WEIGHT_TOLERANCE, gap
    # the losses are all-reduced sums over every row once: the same numbers, to float32 rounding
    one_history, two_history = history(one / "runs" / "model"), history(two_processes / "runs" / "model")
    assert len(one_history) == len(two_history) == 3
    for r1, r2 in zip(one_history, two_history, strict=True):
        assert r1.keys() == r2.keys()
        assert r2 == pytest.approx(r1, rel=1e-5)


def test_rank_0_alone_writes_and_the_model_loads_in_one_process(two_processes):
    printed = (two_processes / "stdout.txt").read_text()
    assert printed.count("in 2 processes") == 1, printed  # one process printed
    assert sorted(p.name for p in (two_processes / "runs" / "model").iterdir()) == [
        "checkpoint.safetensors", "metrics.jsonl", "run.json",
    ]  # fmt: skip
    assert not list(two_processes.glob("**/*.tmp*"))
    est = AutoEncoder.load(two_processes / "model.aek", device="cpu")  # the format of one process's files
    codes = est.transform(samples(10, seed=3))
    assert codes.shape == (10, 4) and np.isfinite(codes).all()


def test_two_processes_read_a_file_lazily_as_one_does(tmp_path, capsys, monkeypatch):
    """Data over the memory budget is read batch by batch (aekit.data.lazy.LazyData): each process reads
    only its slices, and the 2 processes still train what 1 process trains."""
    np.save(tmp_path / "data.npy", samples())
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0.01")  # 10 kB: this 74 kB file is read lazily
    command = ["train", "--data", "data.npy", "--runs", "runs", *SETTINGS]
    two = torchrun(tmp_path, *command, "--out", "two.aek")
    assert two.returncode == 0, two.stderr
    trained_on = []
    fit = Trainer.fit

    def spy(self, model, train, val=None):
        trained_on.append(train)
        return fit(self, model, train, val)

    monkeypatch.setattr(Trainer, "fit", spy)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *command, "--out", "one.aek")
    assert code == 0, err
    assert [type(data).__name__ for data in trained_on] == ["LazyData"]
    a, b = weights(tmp_path / "one.aek"), weights(tmp_path / "two.aek")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < WEIGHT_TOLERANCE


TRAINER_SCRIPT = r"""
import json, sys
import torch
from aekit.models import build_model
from aekit.training import TrainConfig, Trainer
from aekit.training.distributed import is_main

torch.manual_seed(0)
model = build_model("dense", {"input_shape": (6,), "code_size": 2, "hidden": (4,)})
x = torch.rand(22, 6, generator=torch.Generator().manual_seed(1))
config = TrainConfig(epochs=3, batch_size=4, lr=1e-2, patience=1)
history = Trainer(config).fit(model, x[:-1], x[-1:])
if is_main():
    weights = {k: v.tolist() for k, v in model.state_dict().items()}
    json.dump({"history": history, "weights": weights}, open(sys.argv[1], "w"))
"""


def test_the_trainer_api_under_torchrun_with_a_validation_row_for_one_process(tmp_path):
    """``Trainer.fit`` in a user's script: 21 rows in batches of 4, cut 2 + 2 and the last 1 + 0, and 1
    validation row, which leaves rank 1 none: it must still join every step and the validation all-reduce."""
    (tmp_path / "train.py").write_text(TRAINER_SCRIPT)
    done = torchrun(tmp_path, "two.json", script="train.py")
    assert done.returncode == 0, done.stderr
    two = json.loads((tmp_path / "two.json").read_text())
    alone = subprocess.run(
        [sys.executable, "train.py", "one.json"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": SRC}
    )
    assert alone.returncode == 0
    one = json.loads((tmp_path / "one.json").read_text())
    assert [r["epoch"] for r in two["history"]] == [r["epoch"] for r in one["history"]]
    for r1, r2 in zip(one["history"], two["history"], strict=True):
        assert {**r2, "seconds": 0} == pytest.approx({**r1, "seconds": 0}, rel=1e-5)
    for k, w in one["weights"].items():
        np.testing.assert_allclose(two["weights"][k], w, atol=WEIGHT_TOLERANCE)


KILL_AFTER_EPOCH_1 = r"""
import os, signal, sys
import torch.distributed as dist
from aekit.cli.main import main
from aekit.training import Trainer

original = Trainer._write_epoch

def write_then_die(self, model, optimizer, scheduler, state):
    original(self, model, optimizer, scheduler, state)  # rank 0 writes, the others do nothing
    if state["epoch"] == 1:
        dist.barrier()  # rank 0 has finished writing
        os.kill(os.getpid(), signal.SIGKILL)  # every process dies, with no cleanup

Trainer._write_epoch = write_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_distributed_run_resumes_bit_identical(two_processes, tmp_path, capsys):
    np.save(tmp_path / "data.npy", samples())
    (tmp_path / "kill.py").write_text(KILL_AFTER_EPOCH_1)
    command = ["train", "--data", "data.npy", "--out", "model.aek", "--runs", "runs", *SETTINGS]
    killed = torchrun(tmp_path, *command, script="kill.py")
    assert killed.returncode != 0 and not (tmp_path / "model.aek").exists(), killed.stderr
    assert [r["epoch"] for r in history(tmp_path / "runs" / "model")] == [1]
    shutil.copytree(tmp_path / "runs", tmp_path / "alone" / "runs")
    resumed = torchrun(tmp_path, *command, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(tmp_path / "model.aek"), weights(two_processes / "model.aek")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history(tmp_path / "runs" / "model") == history(two_processes / "runs" / "model")
    # one process may continue what two began: the same training, to rounding
    alone = tmp_path / "alone"
    code, _, err = run(capsys, "train", "--data", tmp_path / "data.npy", "--out", alone / "model.aek",
                       "--runs", alone / "runs", *SETTINGS, "--resume")  # fmt: skip
    assert code == 0, err
    a = weights(alone / "model.aek")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < WEIGHT_TOLERANCE


# -- launches that cannot work ----------------------------------------------------------------------------
def test_a_batch_smaller_than_the_processes_is_one_line_from_rank_0(tmp_path):
    np.save(tmp_path / "data.npy", samples(40))
    done = torchrun(
        tmp_path, "train", "--data", "data.npy", "--out", "m.aek", *SETTINGS[:-3], "--batch-size", "1"
    )
    ours = [line for line in done.stderr.splitlines() if line.startswith("aekit:")]
    assert done.returncode != 0
    assert len(ours) == 1, done.stderr  # not one per process (torchrun adds its own report below it)
    assert "--batch-size 1" in ours[0] and "--batch-size 2 or more" in ours[0]
    assert not (tmp_path / "m.aek").exists() and not (tmp_path / "runs").exists()


TORCHRUN_ENV = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "9"}  # fmt: skip


@pytest.mark.parametrize(
    ("env", "argv", "words"),
    [
        ({"MASTER_ADDR": "", "MASTER_PORT": ""}, [], ("MASTER_ADDR, MASTER_PORT are not", "torchrun")),
        ({"RANK": "x"}, [], ("must be whole numbers",)),
        ({"LOCAL_RANK": "5"}, [], ("do not fit WORLD_SIZE=2",)),
        ({}, ["--task", "compress"], ("--task compress", "without torchrun")),
        ({}, ["--device", "mps"], ("mps",)),
    ],
)
def test_a_bad_launch_is_one_clear_line(tmp_path, capsys, monkeypatch, env, argv, words):
    for name, value in {**TORCHRUN_ENV, **env}.items():
        monkeypatch.setenv(name, value)
    np.save(tmp_path / "data.npy", samples(40))
    code, _, err = run(capsys, "train", "--data", tmp_path / "data.npy", "--out", tmp_path / "m.aek",
                       "--runs", tmp_path / "runs", "--epochs", "1", *argv)  # fmt: skip
    assert_one_error(code, err, *words)
    assert not (tmp_path / "runs").exists()


def test_other_ranks_leave_a_bad_launch_for_rank_0_to_report(tmp_path, capsys, monkeypatch):
    for name, value in {**TORCHRUN_ENV, "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    np.save(tmp_path / "data.npy", samples(40))
    monkeypatch.setattr("aekit.cli.train.LAUNCH_ERROR_WAIT", 0.0)  # the wait for rank 0 to report first
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "train", "--data", tmp_path / "data.npy", "--out", tmp_path / "m.aek", "--batch-size=1")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "m.aek").exists()


def test_the_launch_read_from_torchrun_variables(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert check_launch("cpu", 1) == Launch()  # no torchrun: one process, any batch
    for name, value in {**TORCHRUN_ENV, "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    assert check_launch("cpu", 2) == Launch(rank=1, world=2, local_rank=1, local_world=2)
    if not torch.cuda.is_available():  # more processes than GPUs
        with pytest.raises(aekit.errors.ConfigError, match="0 CUDA GPU"):
            check_launch("cuda", 2)
    with pytest.raises(aekit.errors.ConfigError, match="not cuda:1"):
        check_launch("cuda:1", 2)
    with pytest.raises(aekit.errors.ConfigError, match=r"\(nccl\), not on --device mps"):
        check_launch("mps", 2)
