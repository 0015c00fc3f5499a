"""The base class every family derives from: encode, decode, forward and the family's regularisers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from aekit.models import custom
from aekit.models.config import ModelConfig
from aekit.models.layers import BACKBONES, init_weights
from aekit.models.output import AEOutput


class AutoEncoderModel(nn.Module):
    """An encoder to a ``code_size`` code and a decoder back to the input shape.

    Subclasses set ``config_class`` and, where they differ, ``backbone``, ``encoder_out`` and
    ``regularizers``. The decoder returns logits; ``config.output`` says how they map to data space.
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig, modules: Sequence[type[nn.Module]] = ()):
        """``modules``: the classes of the user's own networks, for a config naming them (``networks``)."""
        super().__init__()
        config.validate()
        self.config = config
        if config.networks is not None:  # the user's networks keep their own initial weights
            networks = config.networks
            self.encoder, self.decoder = custom.build(networks, modules, self.encoder_out, config.code_size)
            return
        self.encoder, self.decoder = BACKBONES[self.backbone](
            tuple(config.input_shape),
            config.hidden,
            config.decoder_hidden,
            self.encoder_out,
            config.code_size,
            config.activation,
            downsample=getattr(config, "downsample", "stride"),  # only conv-capable families have it
        )
        init_weights(self)

    @property
    def backbone(self) -> str:
        return getattr(self.config, "backbone", "dense")

    @property
    def restrains_code(self) -> bool:
        """Whether a penalty on the code (sparsity, a KL term) stops a code as wide as the input from just
        copying it; without one AutoEncoder warns about such codes (CopyWarning)."""
        return False

    @property
    def encoder_out(self) -> int:
        """Width of the encoder's last layer: the code itself, or more for models that derive the code."""
        return self.config.code_size

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, K)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, *input_shape)

    def activate(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.config.output == "sigmoid" else logits

    def decode(self, z: Tensor) -> Tensor:
        return self.activate(self.decode_logits(z))

    def forward(self, x: Tensor) -> AEOutput:
        code = self.encode(x)
        logits = self.decode_logits(code)
        return AEOutput(logits=logits, recon=self.activate(logits), code=code)

    def regularizers(self, out: AEOutput) -> dict[str, Tensor]:
        """Weighted penalty terms added to the reconstruction loss, by name (none for a plain autoencoder)."""
        return {}
