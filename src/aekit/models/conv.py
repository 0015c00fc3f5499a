"""Convolutional autoencoder: strided 3x3 convolutions down, transposed convolutions up.

Takes images of any size with any number of channels; ``hidden`` lists the channels of each stage
(Masci et al., "Stacked convolutional auto-encoders for hierarchical feature extraction", ICANN 2011).
"""

from dataclasses import dataclass
from typing import Literal

from aekit.models.base import AutoEncoderModel
from aekit.models.config import ModelConfig


@dataclass
class ConvConfig(ModelConfig):
    backbone: Literal["conv"] = "conv"


class ConvAutoEncoder(AutoEncoderModel):
    config_class = ConvConfig
