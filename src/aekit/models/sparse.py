"""Sparse autoencoder: a penalty on the code's activity makes only a few units fire for each input.

``sparsity="l1"`` adds weight * mean|z|; ``sparsity="kl"`` squashes the code with a sigmoid and adds
weight * sum_j KL(rho || mean activation of unit j) (Ng, "Sparse autoencoder", CS294A notes 2011).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aekit.errors import ConfigError
from aekit.models.base import AutoEncoderModel
from aekit.models.config import Backbone, Downsample, ModelConfig
from aekit.models.output import AEOutput


def l1_activity(code: Tensor, rho: float) -> Tensor:
    """Mean absolute code value: pushes most units to exactly zero."""
    return code.abs().mean()


def kl_sparsity(code: Tensor, rho: float) -> Tensor:
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)), rho_hat_j = unit j's mean activation in the batch."""
    rho_hat = code.mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (K,)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


SPARSITY: dict[str, Callable[[Tensor, float], Tensor]] = {"l1": l1_activity, "kl": kl_sparsity}


@dataclass
class SparseConfig(ModelConfig):
    backbone: Backbone = "dense"
    sparsity: Literal["l1", "kl"] = "l1"
    sparsity_weight: float = 1e-3
    rho: float = 0.05  # target mean activation of each code unit, for sparsity="kl"
    downsample: Downsample = "stride"  # for backbone="conv"

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.rho < 1.0:
            raise ConfigError(
                f"rho is a target firing rate and must lie in (0, 1); got {self.rho}. Try 0.05."
            )
        if self.sparsity_weight < 0:
            raise ConfigError(f"sparsity_weight must be >= 0; got {self.sparsity_weight}.")


class SparseAutoEncoder(AutoEncoderModel):
    config_class = SparseConfig

    @property
    def restrains_code(self) -> bool:
        return self.config.sparsity_weight > 0

    def encode(self, x: Tensor) -> Tensor:
        code = self.encoder(x)  # (B, K)
        return torch.sigmoid(code) if self.config.sparsity == "kl" else code

    def regularizers(self, out: AEOutput) -> dict[str, Tensor]:
        penalty = SPARSITY[self.config.sparsity](out.code, self.config.rho)
        return {"sparsity": self.config.sparsity_weight * penalty}
