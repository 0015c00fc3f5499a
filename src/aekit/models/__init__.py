"""nn.Modules only: one family per file, listed in ``registry.FAMILIES``."""

from aekit.models.base import AutoEncoderModel
from aekit.models.config import ModelConfig
from aekit.models.output import AEOutput, DiagonalGaussian
from aekit.models.registry import FAMILIES, build_model, family_of

__all__ = [
    "FAMILIES",
    "AEOutput",
    "AutoEncoderModel",
    "DiagonalGaussian",
    "ModelConfig",
    "build_model",
    "family_of",
]
