"""1-D convolutional autoencoder for series: convolutions along time down, transposed convolutions up.

Takes series of any length T with any number of channels, (N, T) or channels last (N, T, C) as users hold
them; ``hidden`` lists the channels of each stage, each of which halves the length (kernel 3), and odd
lengths come back exact. ``downsample="pool"`` halves by max-pooling and doubles by up-sampling instead.
The 1-D form of the convolutional autoencoder of Masci et al., "Stacked convolutional auto-encoders for
hierarchical feature extraction" (ICANN 2011); the stacks are ``layers.ConvEncoder``/``ConvDecoder``.
"""

from dataclasses import dataclass
from typing import Literal

from aekit.models.base import AutoEncoderModel
from aekit.models.config import Downsample, ModelConfig


@dataclass
class Conv1dConfig(ModelConfig):
    backbone: Literal["conv1d"] = "conv1d"  # input_shape is (C, T): channels first, as torch convolves
    downsample: Downsample = "stride"


class Conv1dAutoEncoder(AutoEncoderModel):
    config_class = Conv1dConfig
