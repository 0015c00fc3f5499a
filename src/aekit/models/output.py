"""What a model's forward pass returns, and the diagonal Gaussian a VAE's encoder produces."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class DiagonalGaussian:
    """q(z|x) = N(mean, exp(logvar)), one independent Gaussian per code dimension."""

    mean: Tensor  # (B, K)
    logvar: Tensor  # (B, K)

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self) -> Tensor:
        """Reparameterised sample (Kingma & Welling 2014): gradients flow through mean and std."""
        return self.mean + self.std * torch.randn_like(self.mean)

    def kl(self) -> Tensor:
        """KL(q || N(0, I)) per sample, summed over code dimensions: (B,)."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).sum(dim=1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z) summed over code dimensions; ``z`` is (..., B, K), broadcast against (B, K): (..., B)."""
        return -0.5 * (((z - self.mean) ** 2) * torch.exp(-self.logvar) + self.logvar + LOG_2PI).sum(dim=-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension: the VAE's prior density. (..., K) -> (...)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)


@dataclass
class AEOutput:
    logits: Tensor  # decoder output before the output activation, shaped like the input
    recon: Tensor  # after the output activation: in data space (scaled)
    code: Tensor  # (B, K) the code the decoder saw
    posterior: DiagonalGaussian | None = None  # only for variational models
