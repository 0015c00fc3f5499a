"""The "plateau" learning-rate schedule: train at full rate while the validation loss improves, then lower it.

For runs that end when the loss stops improving rather than after a budget fixed in advance (the codec's
epochs="auto"): a budget-shaped schedule (onecycle, cosine) would still be at a high rate when early
stopping ends the run, and a rate-distortion model gains most from its last, low-rate epochs. As in
CompressAI's training examples (ReduceLROnPlateau), the rate drops tenfold after ``patience`` epochs
without a better loss; after ``cuts`` drops a further stall ends the run (``done``).
"""

from __future__ import annotations

import math
from typing import Any

import torch


class Plateau:
    """Linear warm-up over ``warmup`` steps, then the peak rate times 0.1 per cut. ``step()`` after every
    optimizer step, ``end_epoch(loss)`` after every epoch; its state goes into the checkpoint."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup: int,
        patience: int = 2,
        cuts: int = 2,
        factor: float = 0.1,
        threshold: float = 1e-3,  # an epoch improves on the best only by more than this, relative
    ):
        self.optimizer = optimizer
        self.peaks = [group["lr"] for group in optimizer.param_groups]
        self.warmup, self.patience, self.cuts, self.factor = max(1, warmup), patience, cuts, factor
        self.threshold = threshold
        self.steps, self.cut, self.bad, self.best, self.done = 0, 0, 0, math.inf, False
        self._apply()

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def end_epoch(self, loss: float) -> None:
        if loss < self.best * (1 - self.threshold):
            self.best, self.bad = loss, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.bad = 0
            if self.cut == self.cuts:
                self.done = True
            else:
                self.cut += 1
                self._apply()

    def _apply(self) -> None:
        scale = min(1.0, (self.steps + 1) / self.warmup) * self.factor**self.cut
        for group, peak in zip(self.optimizer.param_groups, self.peaks, strict=True):
            group["lr"] = peak * scale

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_steps": self.steps,
            "plateau_cut": self.cut,
            "plateau_bad": self.bad,
            "plateau_best": self.best,
            "plateau_done": self.done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.cut, self.bad = state["plateau_steps"], state["plateau_cut"], state["plateau_bad"]
        self.best, self.done = state["plateau_best"], state["plateau_done"]
        self._apply()
