"""Settings of the one trainer every family shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from aekit.errors import ConfigError
from aekit.noise import NOISES

Schedule = Literal["onecycle", "cosine", "constant", "plateau"]
SCHEDULES = ("onecycle", "cosine", "constant", "plateau")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 6e-3  # peak learning rate of the schedule (Adam)
    weight_decay: float = 0.0
    schedule: Schedule = "onecycle"
    patience: int | None = (
        5  # epochs without a better validation loss before stopping; None = never stop early
    )
    noise: str | None = None  # denoising: a name in aekit.noise.NOISES
    noise_level: float = 0.2
    value_range: tuple[float | None, float | None] = (None, None)  # of the scaled data, for clipping noise
    # Turns each clean batch into (model input, target): restoration tasks (degrade the input), dynamic
    # binarisation (sample both), augmentation. None trains on (batch, batch). Applied before ``noise``,
    # and to validation batches too, with a fixed seed so validation losses compare across epochs.
    pairs: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
    # (model, model(inputs), target) -> {"loss": total, and each part}: what a model that is not an
    # autoencoder trains for (the codec's model returns its rate-distortion parts itself). None:
    # aekit.losses.objective. Used for validation batches too, with the model in eval mode.
    objective: Callable[[Any, Any, Tensor], dict[str, Tensor]] | None = None
    clip_grad_norm: float | None = None  # clip the gradients' global norm to this before every step
    # Weights whose name starts with a key learn at lr times its value (the codec's entropy models start
    # wide and must narrow fast: {"net.bottlenecks.": 10.0}). None: one learning rate for all.
    lr_scales: dict[str, float] | None = None
    seed: int = 0
    device: str = "cpu"
    verbose: int = 0  # 0 silent, 1 progress bar and an end-of-epoch line
    run_dir: Path | None = None  # where checkpoint, metrics.jsonl and run.json go; None keeps nothing on disk
    resume: bool = False
    # What run.json records of a run whose folder has none (a run started from Python): the estimator's
    # task, family, code size, ... for the dashboard's label. 'aekit train' writes its own first.
    run_info: dict[str, Any] | None = None

    def validate(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(
                f"epochs must be a positive integer (or 'auto' in AutoEncoder); got {self.epochs!r}."
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer; got {self.batch_size!r}.")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0; got {self.lr!r}. Try 6e-3.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule={self.schedule!r} is not one of {', '.join(map(repr, SCHEDULES))}.")
        if self.noise is not None and self.noise not in NOISES:
            raise ConfigError(f"noise={self.noise!r} is not one of {', '.join(map(repr, NOISES))} (or None).")
        if self.noise is not None and not self.noise_level >= 0:
            raise ConfigError(f"noise_level must be >= 0; got {self.noise_level!r}.")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ConfigError(f"clip_grad_norm must be > 0 (or None); got {self.clip_grad_norm!r}.")
        if self.lr_scales is not None and any(not v > 0 for v in self.lr_scales.values()):
            raise ConfigError(f"lr_scales must map name prefixes to factors > 0; got {self.lr_scales!r}.")
        if self.resume and self.run_dir is None:
            raise ConfigError(
                "resume=True needs run_dir: the folder holding the checkpoint to continue from."
            )
