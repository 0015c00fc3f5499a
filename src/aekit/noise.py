"""Input corruptions for denoising training: the model sees the corrupted input, the loss the clean one.

Each takes a batch already scaled for the model, a level, and the data's value range, and returns a new
tensor (the clean batch is left untouched because it is the target).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def gaussian(x: Tensor, level: float, low: float | None, high: float | None) -> Tensor:
    """Add N(0, level^2) noise; clip to the data range when it is bounded, as a real sensor would."""
    noisy = x + level * torch.randn_like(x)
    return noisy.clamp(low, high) if low is not None else noisy


def salt_pepper(x: Tensor, level: float, low: float | None, high: float | None) -> Tensor:
    """Set a fraction ``level`` of the values to the minimum or the maximum, half each."""
    lo = x.min() if low is None else torch.tensor(low, dtype=x.dtype)
    hi = x.max() if high is None else torch.tensor(high, dtype=x.dtype)
    u = torch.rand_like(x)
    noisy = torch.where(u < level / 2, lo, x)
    return torch.where((u >= level / 2) & (u < level), hi, noisy)


def mask(x: Tensor, level: float, low: float | None, high: float | None) -> Tensor:
    """Zero a fraction ``level`` of the values (masking noise, Vincent et al. 2008)."""
    keep = torch.rand_like(x) >= level
    return x * keep


NOISES: dict[str, Callable[[Tensor, float, float | None, float | None], Tensor]] = {
    "gaussian": gaussian,
    "salt_pepper": salt_pepper,
    "mask": mask,
}
