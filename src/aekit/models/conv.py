"""Convolutional autoencoder: strided 3x3 convolutions down, transposed convolutions up.

Takes images of any size with any number of channels; ``hidden`` lists the channels of each stage
(Masci et al., "Stacked convolutional auto-encoders for hierarchical feature extraction", ICANN 2011).
``downsample="pool"`` halves by max-pooling and doubles by up-sampling instead (``layers.ConvEncoder``).
"""

from dataclasses import dataclass
from typing import Literal

from aekit.models.base import AutoEncoderModel
from aekit.models.config import Downsample, ModelConfig


@dataclass
class ConvConfig(ModelConfig):
    backbone: Literal["conv"] = "conv"
    downsample: Downsample = "stride"  # files from before the field load as the strided model they are


class ConvAutoEncoder(AutoEncoderModel):
    config_class = ConvConfig
