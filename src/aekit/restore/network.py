"""The image-to-image network every restoration task trains: a small U-Net that predicts a residual.

Fully convolutional, so one model restores images of any size (padded to a multiple of ``stride``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aekit.errors import ConfigError
from aekit.models.registry import NETWORKS

# ITU-R BT.601 luma, the weights Pillow's convert("L") uses: the "grayscale image" of a colour one.
LUMA = (0.299, 0.587, 0.114)


def luma(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) luminance."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


@dataclass
class RestoredOutput:
    """What the shared trainer's loss reads from a forward pass, as from an autoencoder's AEOutput.

    Its own small type: importing aekit.models here would be circular (models' registry lists this network).
    """

    logits: Tensor  # (B, C, H, W): the restored image; there is no output activation
    recon: Tensor  # the same tensor


@dataclass
class RestorationNetConfig:
    in_channels: int  # what the network sees: the degraded image, plus a mask channel for inpainting
    out_channels: int  # 1 (grayscale) or 3 (RGB)
    width: int = 32  # channels at full resolution, doubled at each level down
    depth: int = 2  # levels of 2x downsampling: the input is padded to a multiple of 2**depth
    blocks: int = (
        2  # 3x3 convolutions (or residual blocks) per level, on the way down and again on the way up
    )
    residual: bool = False  # blocks of two convolutions plus a skip (deeper networks train faster so)
    unshuffle: int = 1  # 2: the network works on 2x2 pixel groups (FFDNet), 4x less arithmetic per pixel
    base: Literal["input", "gray"] = "input"  # what the residual is added to (input channels, or gray x 3)
    keep_luma: bool = False  # colorize: the output keeps the input's luminance, only chroma is predicted
    # colorize: the predicted chroma times this. A network trained on a pixel loss predicts the middle of
    # the colours a thing may have, which is greyer than any of them; the built-in sets it so its colours
    # are as strong as its training photographs' (bench/train_restore_builtin.py --export).
    chroma_gain: float = 1.0
    keep_known: bool = False  # inpaint: pixels outside the mask (last input channel) pass through unchanged
    loss: Literal["mse", "l1"] = "mse"

    def validate(self) -> None:
        for name in ("in_channels", "out_channels", "width", "blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        if not isinstance(self.depth, int) or not 0 <= self.depth <= 6:
            raise ConfigError(
                f"depth must be an integer from 0 to 6 (levels of downsampling); got {self.depth!r}."
            )
        if self.unshuffle not in (1, 2, 4):
            raise ConfigError(
                f"unshuffle must be 1, 2 or 4 (pixels per side of a group); got {self.unshuffle!r}."
            )
        choices = {"base": ("input", "gray"), "loss": ("mse", "l1")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} is not one of {', '.join(map(repr, allowed))}."
                )
        if not isinstance(self.chroma_gain, float | int) or not 0 < self.chroma_gain <= 4:
            raise ConfigError(f"chroma_gain must be a number in (0, 4]; got {self.chroma_gain!r}.")
        if self.keep_luma and self.out_channels != 3:
            raise ConfigError("keep_luma needs RGB output (out_channels=3).")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RestorationNetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(names)}."
            )
        return cls(**data)


def _convs(width: int, n: int, residual: bool) -> nn.Sequential:
    if residual:
        return nn.Sequential(*[ResidualBlock(width) for _ in range(n)])
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))): EDSR's block (Lim et al. 2017), without batch norm (it hurts restoration)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class RestorationUNet(nn.Module):
    """An encoder-decoder of 3x3 convolutions with symmetric (additive) skip connections between levels.

    After RED-Net (Mao, Shen & Yang, "Image Restoration Using Very Deep Convolutional Encoder-Decoder
    Networks with Symmetric Skip Connections", NeurIPS 2016) with U-Net's strided levels (Ronneberger
    et al. 2015); like DnCNN (Zhang et al. 2017) it predicts a residual over the degraded input.
    """

    config_class: ClassVar[type[RestorationNetConfig]] = RestorationNetConfig

    def __init__(self, config: RestorationNetConfig):
        super().__init__()
        config.validate()
        self.config = config
        widths = [config.width * 2**i for i in range(config.depth + 1)]
        group = config.unshuffle**2  # channels per input channel after pixel-unshuffle
        self.head = nn.Sequential(
            nn.Conv2d(config.in_channels * group, widths[0], 3, padding=1), nn.LeakyReLU(0.1)
        )
        self.enc = nn.ModuleList([_convs(widths[0], config.blocks, config.residual)])
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(1, config.depth + 1):
            self.down.append(nn.Conv2d(widths[i - 1], widths[i], 3, stride=2, padding=1))
            self.enc.append(_convs(widths[i], config.blocks, config.residual))
            self.up.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2))
            self.dec.append(_convs(widths[i - 1], config.blocks, config.residual))
        self.tail = nn.Conv2d(widths[0], config.out_channels * group, 3, padding=1)
        # A zero last layer makes the untrained network output its base (the degraded input itself): training
        # starts at the classical answer and only has to learn the correction.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def stride(self) -> int:
        """Height and width of an input must be multiples of this."""
        return 2**self.config.depth * self.config.unshuffle

    def base(self, x: Tensor) -> Tensor:
        c = self.config
        if c.base == "gray":
            return x[:, :1].expand(-1, c.out_channels, -1, -1)  # (B, C_out, H, W)
        return x[:, : c.out_channels]  # (B, C_out, H, W)

    def deepest(self, x: Tensor) -> Tensor:
        """The deepest encoder activations (B, W * 2^depth, H / (u 2^depth), W / (u 2^depth)) of an input
        (B, C_in, H, W): what the network makes of it, for typicality (``aekit.restore.typicality``)."""
        c = self.config
        h = F.pixel_unshuffle(x, c.unshuffle) if c.unshuffle > 1 else x  # (B, C_in * u^2, H / u, W / u)
        h = self.enc[0](self.head(h))  # (B, W, H / u, W / u)
        for down, enc in zip(self.down, self.enc[1:], strict=True):
            h = enc(down(h))  # (B, W * 2^i, H / (u 2^i), W / (u 2^i))
        return h

    @property
    def deepest_width(self) -> int:
        return self.config.width * 2**self.config.depth

    def forward(self, x: Tensor) -> RestoredOutput:
        c = self.config
        h = F.pixel_unshuffle(x, c.unshuffle) if c.unshuffle > 1 else x  # (B, C_in * u^2, H / u, W / u)
        h = self.enc[0](self.head(h))  # (B, W, H / u, W / u)
        skips = [h]
        for down, enc in zip(self.down, self.enc[1:], strict=True):
            h = enc(down(h))  # (B, W * 2^i, H / (u 2^i), W / (u 2^i))
            skips.append(h)
        for i in reversed(range(c.depth)):
            h = self.dec[i](self.up[i](h) + skips[i])  # (B, W * 2^i, H / (u 2^i), W / (u 2^i))
        correction = self.tail(h)  # (B, C_out * u^2, H / u, W / u)
        if c.unshuffle > 1:
            correction = F.pixel_shuffle(correction, c.unshuffle)  # (B, C_out, H, W)
        y = self.base(x) + correction  # (B, C_out, H, W)
        if c.keep_luma:  # adding d to R, G and B adds d to the luma (its weights sum to 1)
            y = y + (x[:, :1] - luma(y))
            if c.chroma_gain != 1:  # scaling the difference from gray keeps the luma too
                y = x[:, :1] + c.chroma_gain * (y - x[:, :1])
        if c.keep_known:
            mask = x[:, -1:]  # (B, 1, H, W), 1 = missing
            y = mask * y + (1 - mask) * x[:, : c.out_channels]
        return RestoredOutput(logits=y, recon=y)

    def regularizers(self, out: RestoredOutput) -> dict[str, Tensor]:
        return {}


# Model files name their network by this key; aekit.io imports this module before it reads one.
NETWORKS["restore-unet"] = RestorationUNet
