"""The learned image codec's network: analysis/synthesis transforms with GDN, gain units, entropy bottlenecks.

After Balle, Laparra, Simoncelli, "End-to-end optimized image compression" (ICLR 2017) and Balle et al. 2018:
the analysis transform maps an image (B, C, H, W) to a latent (B, M, H/2^s, W/2^s) through strided 5x5
convolutions and GDN; the synthesis transform mirrors it with transposed convolutions and inverse GDN.
Quality levels follow Cui et al., "Asymmetric gained deep image compression with continuous rate
adaptation" (CVPR 2021): one network, a gain vector per level multiplies the latent before rounding and an
inverse gain divides it after, and each level has its own entropy bottleneck. ``pixel_head`` (see
``aekit.codec.pixels``) predicts a distribution per pixel for lossless and near-lossless coding.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from aekit.codec.pixels import PixelHead
from aekit.codec.priors import PRIORS
from aekit.errors import ConfigError

# Rate + lambda * 255^2 * MSE (MSE on the [0, 1] scale), the convention of CompressAI's model zoo, so these
# values read like theirs: the smallest gives low quality, the largest near-transparent quality.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932, 0.18)


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al. 2016): y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)

    ``inverse=True`` multiplies instead (IGDN, used in the synthesis transform). beta and gamma must stay
    non-negative: they are stored as raw parameters and used through abs (beta also floored), so the
    gradient never dies at zero as it would behind a clamp.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(gamma_init * torch.eye(channels) + 1e-3)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta.abs() + self.beta_min  # (C,)
        gamma = self.gamma.abs().view(c, c, 1, 1)  # (C, C, 1, 1): a 1x1 convolution over x^2
        norm = torch.sqrt(nn.functional.conv2d(x * x, gamma, beta))  # (B, C, H, W)
        return x * norm if self.inverse else x / norm


@dataclass
class CodecNetConfig:
    """Everything that shapes a ``CodecNet``; stored in the model file and covered by the fingerprint."""

    channels: int = 1  # 1 grayscale, 3 RGB
    hidden: int = 64  # N: channels inside the transforms
    latent: int = 64  # M: channels of the coded latent
    stages: int = 2  # stride-2 stages: the latent is 2**stages times smaller per side
    kernel: int = 5
    # channels of the inner stages, image side first (stages - 1 values): a decoder that stays narrow at
    # the finest stages runs several times faster (docs/codec.md). None: ``hidden`` everywhere.
    widths: tuple[int, ...] | None = None
    prior: str = "factorized"  # the latent's entropy model: a name in aekit.codec.priors.PRIORS
    hyper_hidden: int = 96  # hyperprior: channels inside the hyper-analysis and -synthesis
    hyper_latent: int = 64  # hyperprior: channels of the side latent z
    default_quality: int | None = None  # what compress uses when no quality is given; None: the best
    lambdas: tuple[float, ...] = (
        DEFAULT_LAMBDAS  # one rate-distortion weight (and gain, bottleneck) per level
    )
    # quality q (1-based) codes the latent at level qualities[q-1][0] and, when qualities[q-1][1] = D > 0,
    # the pixels too, in bins of width D under the pixel head (near-lossless: max error D - 1).
    # None: quality q = latent level q - 1, no pixel coding.
    qualities: tuple[tuple[int, int], ...] | None = None
    lossless_level: int = 0  # the latent level lossless mode codes under the pixels (fit picks the best)
    pixel_width: int = 32  # channels of the pixel head's convolutions
    pixel_layers: int = 3  # 3x3 convolutions in the pixel head
    pixel_mixtures: int = 5  # logistic components per pixel (PixelCNN++'s discretized logistic mixture)
    # Near-lossless training: each item's pixel-head context is quantised to bins of a width drawn from
    # this tuple (1 = exact), and the head is told the width (an extra input channel), so it learns to
    # read the coarse context near-lossless decoding gives it. (1,) = lossless only, no extra channel.
    pixel_train_bins: tuple[int, ...] = (1,)
    # How often each value 0..255 occurs in the training images: a bin of a near-lossless quality decodes
    # to the mean value of the training pixels in it. None = uniform (bins decode to their centres).
    value_histogram: tuple[float, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. what it was trained on)

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    @property
    def stride(self) -> int:
        return 2**self.stages

    def stage_widths(self) -> tuple[int, ...]:
        """Channels after each inner stage of the analysis, image side first (stages - 1 values)."""
        return tuple(self.widths) if self.widths is not None else (self.hidden,) * (self.stages - 1)

    def quality_table(self) -> tuple[tuple[int, int], ...]:
        if self.qualities is None:
            return tuple((level, 0) for level in range(self.levels))
        return tuple((int(a), int(b)) for a, b in self.qualities)

    def validate(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB); got {self.channels!r}.")
        if self.prior not in PRIORS:
            raise ConfigError(f"prior must be one of {', '.join(map(repr, PRIORS))}; got {self.prior!r}.")
        if self.widths is not None and (
            len(self.widths) != self.stages - 1
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in self.widths)
        ):
            raise ConfigError(
                f"widths must be {self.stages - 1} positive integers (one per inner stage); "
                f"got {self.widths!r}."
            )
        if self.default_quality is not None and not 1 <= self.default_quality <= len(self.quality_table()):
            raise ConfigError(
                f"default_quality must be 1..{len(self.quality_table())}; got {self.default_quality!r}."
            )
        for name in (
            "hidden",
            "latent",
            "stages",
            "kernel",
            "pixel_width",
            "pixel_layers",
            "pixel_mixtures",
            "hyper_hidden",
            "hyper_latent",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be odd (5 is the usual); got {self.kernel}.")
        if not self.lambdas or any(not (isinstance(v, int | float) and v > 0) for v in self.lambdas):
            raise ConfigError(
                f"lambdas must be positive numbers, one per quality level; got {self.lambdas!r}."
            )
        for q, (level, bins) in enumerate(self.quality_table(), start=1):
            if not 0 <= level < self.levels or not 0 <= bins <= 255:
                raise ConfigError(
                    f"quality {q} = ({level}, {bins}) is invalid: the level must be 0..{self.levels - 1} "
                    "and the bin width 0 (latent only) to 255."
                )
        if not self.pixel_train_bins or any(not 1 <= int(b) <= 255 for b in self.pixel_train_bins):
            raise ConfigError(f"pixel_train_bins must be bin widths 1..255; got {self.pixel_train_bins!r}.")
        if self.value_histogram is not None and len(self.value_histogram) != 256:
            raise ConfigError("value_histogram must hold 256 counts, one per 8-bit value.")
        if not 0 <= self.lossless_level < self.levels:
            raise ConfigError(f"lossless_level must be 0..{self.levels - 1}; got {self.lossless_level}.")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values. Settings added after format 1 are left out while they hold their
        defaults, so a format-1 codec's dict, its fingerprint and its archives stay as they were."""
        d = dataclasses.asdict(self)
        for name, default in ADDED_SETTINGS.items():
            if d[name] == default:
                del d[name]
        d["lambdas"] = list(self.lambdas)
        d["qualities"] = None if self.qualities is None else [list(q) for q in self.qualities]
        d["pixel_train_bins"] = list(self.pixel_train_bins)
        d["value_histogram"] = None if self.value_histogram is None else list(self.value_histogram)
        if self.widths is not None:
            d["widths"] = list(self.widths)
        return d

    @property
    def bins_input(self) -> bool:
        """Whether the pixel head reads the bin width (trained for near-lossless context)."""
        return tuple(self.pixel_train_bins) != (1,)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecNetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(names)}."
            )
        data = dict(data)
        if "lambdas" in data:
            data["lambdas"] = tuple(float(v) for v in data["lambdas"])
        if data.get("qualities") is not None:
            data["qualities"] = tuple((int(a), int(b)) for a, b in data["qualities"])
        if "pixel_train_bins" in data:
            data["pixel_train_bins"] = tuple(int(b) for b in data["pixel_train_bins"])
        if data.get("value_histogram") is not None:
            data["value_histogram"] = tuple(float(v) for v in data["value_histogram"])
        if data.get("widths") is not None:
            data["widths"] = tuple(int(v) for v in data["widths"])
        return cls(**data)


# Settings format 2 added (the hyperprior, stage widths, the default quality) and their defaults.
ADDED_SETTINGS = {
    f.name: f.default
    for f in dataclasses.fields(CodecNetConfig)
    if f.name in ("widths", "prior", "hyper_hidden", "hyper_latent", "default_quality")
}


@dataclass
class CodecOutput:
    x_hat: Tensor  # (B, C, H, W) reconstruction on the [0, 1] scale (not clamped)
    bits: Tensor  # (B,) the latent's code length under the level's prior (noisy proxy in training)
    y_hat: Tensor  # (B, M, h, w) the rounded gained latent the synthesis saw
    features: Tensor  # (B, F, H/2, W/2) the synthesis features the pixel head reads


class CodecNet(nn.Module):
    """Analysis/synthesis with GDN, per-level gain units, the latent's prior (``priors``), a pixel head."""

    def __init__(self, config: CodecNetConfig):
        super().__init__()
        config.validate()
        self.config = config
        c, n, m, k, s = config.channels, config.hidden, config.latent, config.kernel, config.stages
        del n
        sizes = (c, *config.stage_widths(), m)  # channels between the stages, image side first
        down: list[nn.Module] = []
        up: list[nn.Module] = []
        for i in range(s):
            down.append(nn.Conv2d(sizes[i], sizes[i + 1], k, stride=2, padding=k // 2))
            if i < s - 1:
                down.append(GDN(sizes[i + 1]))
        for i in reversed(range(s)):
            up.append(nn.ConvTranspose2d(sizes[i + 1], sizes[i], k, 2, k // 2, output_padding=1))
            if i > 0:
                up.append(GDN(sizes[i], inverse=True))
        self.analysis_net = nn.Sequential(*down)
        self.synthesis_body = nn.Sequential(*up[:-1])
        self.synthesis_out = up[-1]
        # Gains start spread geometrically so the levels differ from the first step (Cui et al. learn them).
        start = torch.linspace(math.log(0.5), math.log(4.0), config.levels) if config.levels > 1 else None
        log_gain = (start if start is not None else torch.zeros(1)).view(-1, 1).repeat(1, m)  # (L, M)
        self.log_gain = nn.Parameter(log_gain.clone())
        self.log_inv_gain = nn.Parameter(-log_gain.clone())
        self.prior = PRIORS[config.prior](self)  # adds its modules (bottlenecks, ...) to this network
        feature_channels = sizes[1] if s > 1 else m
        self.pixel_head = PixelHead(
            config.channels,
            feature_channels,
            config.pixel_width,
            config.pixel_layers,
            config.pixel_mixtures,
            bins_input=config.bins_input,
        )

    @property
    def stride(self) -> int:
        return self.config.stride

    def analysis(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1], H and W multiples of ``stride`` -> latent (B, M, H/stride, W/stride)."""
        return self.analysis_net(x)

    def gain(self, level: int) -> Tensor:
        return self.log_gain[level].exp().view(1, -1, 1, 1)  # (1, M, 1, 1)

    def inv_gain(self, level: int) -> Tensor:
        return self.log_inv_gain[level].exp().view(1, -1, 1, 1)  # (1, M, 1, 1)

    def synthesis_features(self, y_hat: Tensor, level: int) -> Tensor:
        """The gained, quantised latent (B, M, h, w) -> features (B, F, H/2, W/2) before the last layer."""
        return self.synthesis_body(y_hat * self.inv_gain(level))

    def synthesis(self, y_hat: Tensor, level: int) -> tuple[Tensor, Tensor]:
        """The gained, quantised latent -> (x_hat (B, C, H, W), features (B, F, H/2, W/2))."""
        features = self.synthesis_features(y_hat, level)
        return self.synthesis_out(features), features

    def forward(self, x: Tensor, level: int) -> CodecOutput:
        """Training pass: noise for the rate, straight-through rounding for the distortion (Minnen 2020);
        in eval mode everything is rounded."""
        y = self.analysis(x) * self.gain(level)  # (B, M, h, w)
        noise = torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else None
        y_hat, bits = self.prior(y, level, noise)
        x_hat, features = self.synthesis(y_hat, level)
        return CodecOutput(x_hat, bits, y_hat, features)

    @torch.no_grad()
    def update_tables(self) -> None:
        """Refresh every level's coding tables from its density (call after training, before coding)."""
        for bottleneck in self.bottlenecks:
            bottleneck.update_tables()
