"""The codec trains on the shared trainer: its batches, resuming bit-identically, early stopping that keeps
the best weights, ``aekit train --task compress --resume``, and the settings "auto" picks for the images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.codec import ladder
from aekit.codec.codec import ImageCodec
from aekit.codec.data import CodecImages
from aekit.codec.defaults import PROFILES, profile_name
from aekit.codec.network import DEFAULT_LAMBDAS
from aekit.training import METRICS
from aekit.training.plateau import Plateau
from aekit.training.progress import Progress
from aekit.training.trainer import Trainer
from cli_helpers import run

# two levels, latent-only qualities (no ladder to pick): seconds on two busy cores
TINY = dict(
    hidden=4,
    latent=2,
    stages=1,
    pixel_width=4,
    pixel_layers=1,
    pixel_mixtures=2,
    lambdas=(0.02, 0.2),
    qualities=None,
    batch_size=4,
    random_state=0,
)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """20 smooth 8x8 grayscale images: 19 train, 1 is held out (5%, at least one)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:8, :8]
    out = [np.exp(-((yy - rng.uniform(0, 8)) ** 2 + (xx - rng.uniform(0, 8)) ** 2) / 8) for _ in range(20)]
    return np.round(np.stack(out) * 255).astype(np.uint8)


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def stop_after_epoch(monkeypatch, epoch: int) -> None:
    """Make the trainer stop (as a kill would) right after writing that epoch's checkpoint."""
    original = Trainer._write_epoch

    def checkpoint_then_stop(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        if state["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_write_epoch", checkpoint_then_stop)


# -- batches -----------------------------------------------------------------------------------------------
def test_crops_follow_the_seed_and_the_ranks_share_each_global_batch():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (h, w), dtype=np.uint8) for h, w in ((20, 30), (12, 9), (40, 16))]
    data = CodecImages(photos, crop=8, stride=2, per_epoch=10)
    assert data.whole is None and len(data) == 10
    first = list(data.batches(4, seed=5))
    assert [len(b) for b in first] == [4, 4, 2] and first[0].shape[1:] == (1, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(first, data.batches(4, seed=5), strict=True))
    assert not torch.equal(first[0], next(iter(data.batches(4, seed=6))))  # each epoch, new crops
    halves = zip(data.batches(4, 5, rank=0, world=2), data.batches(4, 5, rank=1, world=2), strict=True)
    assert all(torch.equal(torch.cat(pair), whole) for pair, whole in zip(halves, first, strict=True))
    mixed = CodecImages([np.zeros((5, 6), np.uint8), np.zeros((20, 20), np.uint8)], 8, 2, per_epoch=4)
    # one image smaller than the crop: its edges are replicated
    assert next(iter(mixed.batches(4, 0))).shape == (4, 1, 8, 8)


def test_same_shape_small_images_train_whole_padded_to_the_stride(images):
    data = CodecImages(list(images[:, :7, :7]), crop=8, stride=2, per_epoch=25)
    batches = list(data.batches(10, seed=1))
    assert [b.shape for b in batches] == [(10, 1, 8, 8)] * 2 + [(5, 1, 8, 8)]
    # 25 samples of 20 images: every image once before any comes back
    rows = torch.cat(batches)[:20, 0, :7, :7].mul(255).round().to(torch.uint8).numpy()
    assert sorted(map(bytes, rows)) == sorted(map(bytes, images[:, :7, :7]))


# -- the trainer -------------------------------------------------------------------------------------------
def test_a_stopped_fit_resumes_bit_identical(images, tmp_path, monkeypatch):
    whole = ImageCodec(**TINY, epochs=3).fit(images)
    run_dir = tmp_path / "run"
    stop_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        ImageCodec(**TINY, epochs=3, run_dir=run_dir).fit(images)
    monkeypatch.undo()
    resumed = ImageCodec(**TINY, epochs=3, run_dir=run_dir, resume=True).fit(images)
    assert resumed.fingerprint_ == whole.fingerprint_
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history_] == [
        {k: v for k, v in r.items() if k not in drop} for r in whole.history_
    ]
    assert len((run_dir / METRICS).read_text().splitlines()) == 3
    assert "val_loss" in whole.history_[-1]  # the held-out image scored every epoch


def test_early_stopping_keeps_the_best_weights_and_their_tables(images, monkeypatch):
    kept: dict[int, dict[str, torch.Tensor]] = {}
    original = Trainer._write_epoch

    def record(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        kept[state["epoch"]] = {k: v.clone() for k, v in model.net.state_dict().items()}

    monkeypatch.setattr(Trainer, "_write_epoch", record)
    # a learning rate far too high: the held-out loss jumps about, and the best epoch is not the last
    codec = ImageCodec(**{**TINY, "lr": 0.05}, epochs=8, patience=3).fit(images)
    val = [r["val_loss"] for r in codec.history_]
    best = int(np.argmin(val)) + 1
    assert best < len(val)
    tables = ("pmfs", "offsets", "lengths")
    weights = {k: v for k, v in codec.net_.state_dict().items() if not k.endswith(tables)}
    assert same_weights(weights, {k: v for k, v in kept[best].items() if k in weights})
    fresh = ImageCodec.from_network(codec.net_)  # the coding tables are those of the kept weights
    assert fresh.fingerprint_ == codec.fingerprint_


def test_train_compress_resumes_from_its_run_folder(images, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "train.npy", images)
    argv = ["train", "--task", "compress", "--data", tmp_path / "train.npy", "--runs", tmp_path / "runs"]
    argv += ["--hidden", "4", "--latent", "2", "--stages", "1", "--lambda", "0.02,0.2", "--epochs", "2"]
    argv += ["--batch-size", "4", "--quiet"]
    assert run(capsys, *argv, "--out", tmp_path / "whole.aek")[0] == 0
    stop_after_epoch(monkeypatch, 1)
    code, _, err = run(capsys, *argv, "--out", tmp_path / "part.aek")
    assert code == 130 and "--resume" in err
    monkeypatch.undo()
    code, out, err = run(capsys, *argv, "--out", tmp_path / "part.aek", "--resume")
    assert code == 0, err
    assert "for 2 epoch(s)" in out
    whole, part = ImageCodec.load(tmp_path / "whole.aek"), ImageCodec.load(tmp_path / "part.aek")
    assert whole.fingerprint_ == part.fingerprint_


def test_the_plateau_schedule_warms_up_cuts_the_rate_on_stalls_then_ends():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([{"params": [weight], "lr": 1e-3}])
    plateau = Plateau(optimizer, warmup=4, patience=2, cuts=2)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(5):
        plateau.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    for loss, lr, done in [
        (1.0, 1e-3, False),
        (0.9995, 1e-3, False),  # better by less than the 0.1% threshold: a stall
        (0.9, 1e-3, False),
        (0.95, 1e-3, False),
        (0.95, 1e-4, False),  # two stalls: the first cut
        (0.95, 1e-4, False),
        (0.95, 1e-5, False),
        (0.95, 1e-5, False),
        (0.95, 1e-5, True),  # stalled after the last cut: the run ends
    ]:
        plateau.end_epoch(loss)
        assert (optimizer.param_groups[0]["lr"], plateau.done) == (pytest.approx(lr), done)
    fresh = torch.optim.Adam([{"params": [weight], "lr": 1e-3}])
    again = Plateau(fresh, warmup=4)
    again.load_state_dict(plateau.state_dict())  # what a resumed run continues from
    assert again.state_dict() == plateau.state_dict() and fresh.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_the_progress_bar_estimates_the_time_left(monkeypatch):
    clock = iter([100.0, 110.0, 110.0])
    monkeypatch.setattr("aekit.training.progress.time.perf_counter", lambda: next(clock))
    progress = Progress(epochs=3, batches=10, enabled=False)
    progress.start_epoch(2, "-")  # a resumed run: epochs 2 and 3 left, 20 batches
    progress.advance(5)
    assert progress.time_left() == "~0:00:30 left"  # 5 batches in 10 s, 15 to go
    progress.may_stop = True  # early stopping may end the run sooner
    assert progress.time_left().startswith("at most 0:00:")


# -- "auto" settings ---------------------------------------------------------------------------------------
def test_auto_settings_follow_the_images():
    digits = [np.zeros((28, 28), np.uint8)] * 3
    photos = [np.zeros((96, 128, 3), np.uint8), np.zeros((80, 80, 3), np.uint8)]
    assert profile_name(digits, crop=64) == "small" and profile_name(photos, crop=64) == "photo"
    assert profile_name([np.zeros((30, 30)), np.zeros((28, 28))], crop=64) == "photo"  # sizes differ: crops
    small = ImageCodec()._config(1, None, PROFILES["small"])
    assert (small.stages, small.latent, small.pixel_mixtures) == (2, 32, 3)
    assert small.pixel_train_bins == ladder.TRAIN_BINS and small.lambdas[0] < DEFAULT_LAMBDAS[0]
    photo = ImageCodec()._config(3, None, PROFILES["photo"])
    assert (photo.stages, photo.latent, photo.pixel_mixtures, photo.channels) == (3, 64, 5, 3)
    assert photo.lambdas == DEFAULT_LAMBDAS and photo.pixel_train_bins == (1,) and photo.qualities is None
    # weights chosen by hand: one quality per level, the pixel head trained for lossless only
    mine = ImageCodec(lambdas=(0.01, 0.1))._config(1, None, PROFILES["small"])
    assert mine.pixel_train_bins == (1,) and mine.stages == 2


def test_small_images_get_a_near_lossless_ladder_picked_on_held_out_images(images, monkeypatch):
    monkeypatch.setattr(ladder, "BIN_WIDTHS", (4, 16))  # 8 levels + 4 x 2 candidates: quick to code
    monkeypatch.setattr(ladder, "IMAGES", 1)
    params = {k: v for k, v in TINY.items() if k not in ("lambdas", "qualities")}
    codec = ImageCodec(**{**params, "stages": 2}, steps=2).fit(images)
    config = codec.net_.config
    assert [list(q) for q in codec.qualities_] == [[r["level"], r["bins"]] for r in config.extra["ladder"]]
    sizes = [r["payload_bytes"] for r in config.extra["ladder"]]
    assert sizes == sorted(sizes) and config.pixel_train_bins == ladder.TRAIN_BINS
    assert codec.default_quality == (len(codec.qualities_) + 1) // 2


def test_the_ladder_keeps_points_of_the_front_spread_over_the_psnr_range():
    rows = [{"level": 0, "bins": b, "payload_bytes": 100 - b, "psnr": 60 - b / 2} for b in range(2, 80, 2)]
    rows.append({"level": 1, "bins": 0, "payload_bytes": 200.0, "psnr": 30.0})  # dominated: never chosen
    chosen = ladder.choose(rows)
    assert len(chosen) == ladder.QUALITIES and all(r["level"] == 0 for r in chosen)
    psnrs = [r["psnr"] for r in chosen]
    assert psnrs == sorted(psnrs) and psnrs[0] >= ladder.PSNR_RANGE[0] - 1.5
