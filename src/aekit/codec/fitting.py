"""How ``ImageCodec.fit`` trains: the held-out images, the length of the run, the shared trainer's settings.

The codec trains through ``aekit.training.Trainer`` like every other model: batches of whole images or
random crops (``aekit.codec.data``), the rate-distortion loss (``aekit.codec.training.RateDistortion``),
validation on held-out images with early stopping that keeps the best weights, atomic checkpoints in a
run folder that a killed run resumes from bit-identically, and a progress bar with the time left.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aekit.codec import ladder
from aekit.codec.data import CodecImages
from aekit.codec.training import objective
from aekit.errors import ConfigError
from aekit.training import TrainConfig, distributed

# epochs="auto" and steps=N train in epochs of this many steps (N itself when smaller): short enough that
# validation follows the loss closely (~16k images at the default batch), long enough to cost little.
EPOCH_STEPS = 512
# epochs="auto" trains until the held-out loss stops improving (the "plateau" schedule: the rate drops
# tenfold after two epochs without a better loss, and after two drops a further stall ends the run), or
# at most this many epochs.
AUTO_MAX_EPOCHS = 100
HOLD_OUT_FROM = 10  # with at least this many images one or more is held out, whatever the fraction gives
VALIDATION_CROPS = 64  # crops cut once from the held-out images of a photo codec (at least one of each)
# The entropy models start wide and must narrow fast: they learn at ten times the rate of the rest.
DENSITY_LR = {"net.bottlenecks.": 10.0}
CLIP_GRAD_NORM = 1.0  # the entropy model's first steps can spike


def check_settings(codec: Any) -> None:
    """The training settings of an ``ImageCodec``, each a clear error when it cannot work."""
    if distributed.launch().world > 1:
        raise ConfigError(
            "ImageCodec trains in one process: each step trains one quality level's entropy model, and DDP "
            "needs every weight in every step. Start it without torchrun."
        )
    for name in ("batch_size", "crop"):
        value = getattr(codec, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
    if codec.epochs != "auto" and (
        isinstance(codec.epochs, bool) or not isinstance(codec.epochs, int | np.integer) or codec.epochs < 1
    ):
        raise ConfigError(f"epochs must be 'auto' or a positive integer; got {codec.epochs!r}.")
    if codec.steps is not None and (
        isinstance(codec.steps, bool) or not isinstance(codec.steps, int | np.integer) or codec.steps < 1
    ):
        raise ConfigError(f"steps must be a positive integer (or None); got {codec.steps!r}.")
    if not (isinstance(codec.validation_fraction, float | int) and 0 <= codec.validation_fraction < 1):
        raise ConfigError(
            f"validation_fraction must lie in [0, 1); got {codec.validation_fraction!r}. Try 0.05."
        )
    patience = codec.patience
    if patience is not None and (
        isinstance(patience, bool) or not isinstance(patience, int | np.integer) or patience < 1
    ):
        raise ConfigError(
            f"patience must be a positive integer or None (never stop early); got {patience!r}."
        )


def hold_out(pictures: list[np.ndarray], fraction: float, seed: int) -> tuple[list, list]:
    """(training, held-out) images: a seeded random ``fraction`` held out, at least one from
    ``HOLD_OUT_FROM`` images on, none below (too few to spare)."""
    n = len(pictures)
    count = round(n * fraction)
    if fraction > 0 and n >= HOLD_OUT_FROM:
        count = max(1, count)
    if count < 1 or n - count < 1:
        return pictures, []
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [pictures[i] for i in order[count:]], [pictures[i] for i in sorted(order[:count])]


def budget(epochs: int | str, steps: int | None, n_train: int, batch_size: int) -> tuple[int, int, str]:
    """(samples per epoch, epochs, schedule). ``steps`` N: N steps (rounded up to equal epochs of at most
    EPOCH_STEPS), warm-up and cosine decay over them; ``epochs`` N: N passes over the images (one crop of
    each per pass), the same; "auto": EPOCH_STEPS-step epochs under the plateau schedule, at most
    AUTO_MAX_EPOCHS of them."""
    if steps is not None:
        count = math.ceil(int(steps) / EPOCH_STEPS)
        return math.ceil(int(steps) / count) * batch_size, count, "onecycle"
    if epochs == "auto":
        return EPOCH_STEPS * batch_size, AUTO_MAX_EPOCHS, "plateau"
    return n_train, int(epochs), "onecycle"


def validation(pictures: list[np.ndarray], crop: int, stride: int, seed: int) -> Tensor | None:
    """The held-out samples, fixed for the whole run: every image whole, or VALIDATION_CROPS crops."""
    if not pictures:
        return None
    images = CodecImages(pictures, crop, stride, len(pictures))
    count = len(pictures) if images.whole is not None else max(VALIDATION_CROPS, len(pictures))
    return images.fixed(count, seed)


def pick_ladder(codec_class: type, net: Any, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """The qualities of ``aekit.codec.ladder`` for ``net`` (its tables up to date): every candidate (level,
    bin width) really coded and decoded on ``images`` (held-out ones), the chosen points, smallest first."""
    trial = codec_class.from_network(net)  # once: the candidates differ only in the one quality they code

    def code(level: int, bins: int) -> tuple[float, float]:
        trial.qualities_ = ((level, bins),)
        items = trial.compress(images, quality=1)
        decoded = trial.decompress(items)
        size = float(np.mean([len(item.payload) for item in items]))
        return size, ladder.mean_psnr(np.stack(images), decoded)

    return ladder.choose(ladder.measure(net.config.levels, code))


def train_config(codec: Any, epochs: int, schedule: str, seed: int, device: str) -> TrainConfig:
    """The shared trainer's settings for an ``ImageCodec``."""
    return TrainConfig(
        epochs=epochs,
        batch_size=int(codec.batch_size),
        lr=codec.lr,
        schedule=schedule,
        patience=codec.patience,
        objective=objective,
        clip_grad_norm=CLIP_GRAD_NORM,
        lr_scales=DENSITY_LR,
        seed=seed,
        device=device,
        verbose=codec.verbose,
        run_dir=Path(codec.run_dir) if codec.run_dir is not None else None,
        resume=codec.resume,
        run_info={"task": "compress"},
    )
