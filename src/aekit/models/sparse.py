"""Sparse autoencoder: a penalty on the code's activity makes only a few units fire for each input.

``sparsity="l1"`` adds weight * mean|z|; ``sparsity="kl"`` squashes the code with a sigmoid and adds
weight * sum_j KL(rho || mean activation of unit j) (Ng, "Sparse autoencoder", CS294A notes 2011).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aekit import losses
from aekit.errors import ConfigError
from aekit.models.base import AutoEncoderModel
from aekit.models.config import Backbone, ModelConfig
from aekit.models.output import AEOutput


@dataclass
class SparseConfig(ModelConfig):
    backbone: Backbone = "dense"
    sparsity: Literal["l1", "kl"] = "l1"
    sparsity_weight: float = 1e-3
    rho: float = 0.05  # target mean activation of each code unit, for sparsity="kl"

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

    def encode(self, x: Tensor) -> Tensor:
        code = self.encoder(x)  # (B, K)
        return torch.sigmoid(code) if self.config.sparsity == "kl" else code

    def regularizers(self, out: AEOutput) -> dict[str, Tensor]:
        penalty = losses.SPARSITY[self.config.sparsity](out.code, self.config.rho)
        return {"sparsity": self.config.sparsity_weight * penalty}
