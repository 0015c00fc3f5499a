"""Reconstruction losses and regularisers, composed by name.

A regulariser lives with the family that adds it (the sparsity penalties in ``aekit.models.sparse``, the
VAE's KL on its ``DiagonalGaussian``); ``objective`` sums whatever ``model.regularizers`` returns.

Every reconstruction loss is element-wise, so its mean is "per pixel / per feature" whatever the input
shape. Given a learned log-scale (as a VAE has), MSE and L1 become the exact negative log-likelihood of a
Gaussian and a Laplace distribution; BCE is already the Bernoulli one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from aekit.models.output import AEOutput
from aekit.models.sparse import SPARSITY, kl_sparsity, l1_activity  # noqa: F401  (the sparse family's own)


def _mse(logits: Tensor, recon: Tensor, target: Tensor, log_scale: Tensor | None) -> Tensor:
    err = (recon - target).pow(2)
    if log_scale is None:
        return err
    return 0.5 * err * torch.exp(-2.0 * log_scale) + log_scale + 0.5 * math.log(2 * math.pi)


def _l1(logits: Tensor, recon: Tensor, target: Tensor, log_scale: Tensor | None) -> Tensor:
    err = (recon - target).abs()
    if log_scale is None:
        return err
    return err * torch.exp(-log_scale) + log_scale + math.log(2.0)


def _bce(logits: Tensor, recon: Tensor, target: Tensor, log_scale: Tensor | None) -> Tensor:
    # From the logits, not the sigmoid output: numerically stable where the sigmoid saturates.
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


ElementLoss = Callable[[Tensor, Tensor, Tensor, "Tensor | None"], Tensor]
RECONSTRUCTION: dict[str, ElementLoss] = {"mse": _mse, "l1": _l1, "bce": _bce}


def objective(model, out: AEOutput, target: Tensor) -> dict[str, Tensor]:
    """The training loss of ``model``: {"loss": total, "recon": ..., and each regulariser by name}."""
    log_scale = getattr(model, "log_scale", None)
    recon = RECONSTRUCTION[model.config.loss](out.logits, out.recon, target, log_scale).mean()
    parts = {"recon": recon, **model.regularizers(out)}
    parts["loss"] = sum(parts.values())
    return parts


def per_sample_error(loss: str, out: AEOutput, target: Tensor) -> Tensor:
    """Mean element-wise reconstruction error of each sample: (B,). Lower = better reconstructed."""
    err = RECONSTRUCTION[loss](out.logits, out.recon, target, None)
    return err.flatten(1).mean(dim=1)
