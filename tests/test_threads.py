"""Threads per job (``aekit.threads``): the choice from the work, the overrides (n_jobs, --threads,
OMP_NUM_THREADS), the caller's torch setting given back, and bad values refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aekit import AnomalyDetector, AutoEncoder, threads
from aekit.errors import ConfigError
from aekit.training import Trainer
from cli_helpers import one_line_error, run

TABLE = np.random.default_rng(0).random((48, 6)).astype(np.float32)
TINY = {"code_size": 2, "hidden": (4,), "epochs": 1, "batch_size": 16, "random_state": 0}
BIG = 10**15  # multiply-adds per step far past any threshold


@pytest.fixture(autouse=True)
def no_omp(monkeypatch):
    """Each test states its own OMP_NUM_THREADS: a value set for the test run must not leak in."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.fixture
def cores(monkeypatch):
    """Pretend the process may use ``n`` cores."""

    def set_cores(n: int) -> None:
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)

    return set_cores


@pytest.fixture
def training_threads(monkeypatch) -> list[int]:
    """torch's thread count inside every Trainer.fit from here on."""
    seen: list[int] = []
    original = Trainer.fit

    def fit(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    return seen


@pytest.fixture
def caller_threads():
    """The caller runs with 3 threads (not what any job here chooses); put back the suite's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


# -- the choice ----------------------------------------------------------------------------------------------
def test_small_work_gets_one_thread_and_big_work_every_usable_core(cores):
    cores(8)
    assert threads.choose(0) == 1
    assert threads.choose(threads.WORK_PER_THREAD - 1) == 1
    assert threads.choose(2 * threads.WORK_PER_THREAD) == 2
    assert threads.choose(BIG) == 8


def test_never_more_than_the_cores_the_process_may_use(cores):
    cores(3)
    assert threads.usable_cores() == 3
    assert threads.choose(BIG) == 3


def test_without_affinity_the_cpu_count_is_the_limit(monkeypatch):
    monkeypatch.delattr(threads.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 5)
    assert threads.usable_cores() == 5
    assert threads.choose(BIG) == 5


def test_n_jobs_overrides_the_work_as_scikit_learn_reads_it(cores):
    cores(4)
    assert threads.choose(BIG, n_jobs=1) == 1
    assert threads.choose(0, n_jobs=3) == 3
    assert threads.choose(0, n_jobs=-1) == 4  # every usable core
    assert threads.choose(0, n_jobs=-2) == 3  # all but one
    assert threads.choose(0, n_jobs=-10) == 1
    assert threads.choose(0, n_jobs=np.int64(2)) == 2


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_a_bad_n_jobs_is_one_error_that_says_what_to_give(bad):
    with pytest.raises(ConfigError, match=r"n_jobs=.* is not a thread count; give None .* -1 .* >= 1"):
        threads.choose(0, n_jobs=bad)


def test_omp_num_threads_set_by_the_user_is_respected(monkeypatch, cores):
    cores(4)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose(0) == 3
    assert threads.choose(BIG) == 3
    assert threads.choose(BIG, n_jobs=1) == 1  # an explicit n_jobs still wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")  # one count per nesting level: the first is ours
    assert threads.choose(BIG) == 2
    for unreadable in ("", "abc", "0", "-1"):  # ignored, as OpenMP ignores it
        monkeypatch.setenv("OMP_NUM_THREADS", unreadable)
        assert threads.choose(0) == 1


def test_requested_beats_omp_and_work_and_yields_to_n_jobs(monkeypatch, cores, caller_threads):
    cores(4)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with threads.requested(2):
        assert torch.get_num_threads() == 2
        assert threads.choose(BIG) == 2
        assert threads.choose(0, n_jobs=1) == 1
        with threads.requested(None):  # changes nothing
            assert threads.choose(0) == 2
    assert torch.get_num_threads() == caller_threads
    assert threads.choose(0) == 3


def test_for_work_sets_torch_threads_for_the_block_and_gives_the_callers_back(cores, caller_threads):
    cores(2)
    with threads.for_work(lambda: BIG):
        assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), threads.for_work(lambda: 0):
        assert torch.get_num_threads() == 1
        raise RuntimeError("the count comes back on errors too")
    assert torch.get_num_threads() == caller_threads


def test_for_work_leaves_a_gpu_job_alone_and_counts_nothing(caller_threads):
    def work() -> float:
        raise AssertionError("no work is counted for a GPU")

    with threads.for_work(work, device="cuda:0"):
        assert torch.get_num_threads() == caller_threads


# -- counting the work ---------------------------------------------------------------------------------------
def test_macs_per_row_counts_linear_and_convolution_layers():
    dense = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    assert threads.macs_per_row(dense, (12,)) == 12 * 5 + 5 * 3
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ConvTranspose2d(4, 2, 2, stride=2))
    # 4 x 9 weights at each of the 8 x 8 outputs; 4 x 2 x 4 weights at each of the 8 x 8 inputs
    assert threads.macs_per_row(conv, (1, 8, 8)) == 4 * 9 * 64 + 4 * 2 * 4 * 64


def test_macs_per_row_changes_nothing_in_the_model_or_the_random_streams():
    model = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))
    model.train()
    model[2].eval()  # modes that differ between modules stay as they were
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    threads.macs_per_row(model, (6,))
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.random.get_rng_state())


# -- the estimators ------------------------------------------------------------------------------------------
def test_autoencoder_uses_n_jobs_and_gives_the_callers_threads_back(training_threads, caller_threads):
    ae = AutoEncoder(**TINY, n_jobs=2).fit(TABLE)
    assert training_threads == [2]
    assert torch.get_num_threads() == caller_threads
    inside: list[int] = []
    ae.model_.register_forward_pre_hook(lambda module, args: inside.append(torch.get_num_threads()))
    ae.set_params(n_jobs=1).transform(TABLE)
    ae.score_samples(TABLE)
    assert set(inside) == {1}
    assert torch.get_num_threads() == caller_threads


def test_a_small_autoencoder_trains_on_one_thread_by_default(training_threads, caller_threads, cores):
    cores(8)
    AutoEncoder(**TINY).fit(TABLE)
    assert training_threads == [1]
    assert torch.get_num_threads() == caller_threads


def test_autoencoder_refuses_a_bad_n_jobs_in_fit_not_in_init():
    ae = AutoEncoder(**TINY, n_jobs=0)  # scikit-learn's contract: __init__ only stores
    with pytest.raises(ConfigError, match="n_jobs=0 is not a thread count"):
        ae.fit(TABLE)


def test_detector_members_follow_its_n_jobs(training_threads, caller_threads, monkeypatch):
    from aekit.training import ensemble

    together: list[int] = []  # dense members train in one stack (ensemble.fit_together), not Trainer.fit
    original = ensemble.fit_together
    monkeypatch.setattr(
        ensemble,
        "fit_together",
        lambda *a, **k: together.append(torch.get_num_threads()) or original(*a, **k),
    )
    det = AnomalyDetector(n_estimators=1, refits=1, epochs=1, n_jobs=2, random_state=0).fit(TABLE)
    assert together == [2, 2] and training_threads == []
    conv = {"kind": "conv1d", "window": 8}  # members that train one by one, through Trainer.fit
    AnomalyDetector(n_estimators=1, refits=1, epochs=1, n_jobs=2, random_state=0, **conv).fit(TABLE[:, 0])
    assert training_threads == [2, 2]
    assert torch.get_num_threads() == caller_threads
    with pytest.raises(ConfigError, match="n_jobs=0 is not a thread count"):
        det.set_params(n_jobs=0).decision_function(TABLE)
    assert torch.get_num_threads() == caller_threads


def test_restorer_and_codec_choose_their_threads_and_give_the_callers_back(
    training_threads, caller_threads, monkeypatch
):
    from aekit.codec import codec as codec_module
    from aekit.codec.codec import ImageCodec
    from aekit.restore import ImageRestorer

    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16), dtype=np.uint8)
    restorer = ImageRestorer(width=4, depth=1, crop=8, epochs=1, batch_size=4, device="cpu", random_state=0)
    restorer.fit(images).restore(images[0])
    assert training_threads == [1]  # a tiny network: one thread
    assert torch.get_num_threads() == caller_threads

    seen: list[int] = []
    original = codec_module.Trainer.fit
    monkeypatch.setattr(
        codec_module.Trainer, "fit", lambda *a, **k: seen.append(torch.get_num_threads()) or original(*a, **k)
    )
    with threads.requested(2):  # as --threads 2 does
        ImageCodec(hidden=4, latent=4, stages=1, pixel_width=4, pixel_layers=1, steps=2, crop=8).fit(images)
    assert seen == [2]
    assert torch.get_num_threads() == caller_threads


def test_detector_refuses_n_jobs_in_autoencoder_params():
    det = AnomalyDetector(epochs=1, autoencoder_params={"n_jobs": 2})
    with pytest.raises(ConfigError, match="'n_jobs'.*its own n_jobs"):
        det.fit(TABLE)


# -- the command line ----------------------------------------------------------------------------------------
def _train(tmp_path, capsys, *options: str) -> int:
    np.save(tmp_path / "x.npy", TABLE)
    argv = ["train", "--data", tmp_path / "x.npy", "--out", tmp_path / "m.aek", "--runs", tmp_path / "runs"]
    argv += ["--epochs", "1", "--hidden", "4", "--code-size", "2", "--quiet", *options]
    return run(capsys, *argv)[0]


def test_threads_option_sets_the_count_for_the_command(tmp_path, capsys, training_threads, caller_threads):
    assert _train(tmp_path, capsys, "--threads", "2") == 0
    assert training_threads == [2]
    assert torch.get_num_threads() == caller_threads


def test_the_command_respects_omp_num_threads_unless_told_otherwise(
    tmp_path, capsys, monkeypatch, training_threads
):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _train(tmp_path, capsys) == 0
    assert _train(tmp_path, capsys, "--threads", "1") == 0
    assert training_threads == [2, 1]


@pytest.mark.parametrize("verb", ["train", "eval", "encode", "detect", "embed", "restore", "compress"])
@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_threads_value_is_one_line_with_status_2(verb, value, capsys):
    one_line_error(capsys, [verb, "--threads", value], "--threads", repr(value))
