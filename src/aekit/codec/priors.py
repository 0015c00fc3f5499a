"""The entropy models of the latent: how its rate is measured in training and how it is coded.

A ``CodecNet`` names its prior in its config (``PRIORS``, one entry per kind):

- "factorized" (Balle et al. 2017): every latent channel has one learned density (``EntropyBottleneck``)
  shared by all positions. Format 1's codecs.
- "hyperprior" (Balle et al. 2018, "Variational image compression with a scale hyperprior", with the
  mean-scale Gaussian of Minnen et al. 2018): a small side latent z, computed from the latent y by the
  hyper-analysis and coded under a factorized density, is decoded first; the hyper-synthesis turns it into
  a mean and a scale for every element of y, which is coded as the integer residual round(y - mean) under
  a quantized Gaussian of that scale (constriction's ``QuantizedGaussian``). The decoder adds the mean
  back. Edges, textures and flat areas each get the spread they need, where a factorized prior pays one
  spread for the whole image.

Each prior works on the *gained* latent of a quality level (``CodecNet.gain``) and keeps one factorized
bottleneck per level (for y itself, or for z), named ``bottlenecks.<level>`` in the weights.

Coding: the scales are snapped to a fixed table (``SCALES``) before coding, so the range coder sees the
same model at both ends whenever the hyper-synthesis gives the same table index there; the means never
reach the coder (only the residuals do), so a mean that differs in its last bit only nudges the picture.
The hyper-synthesis runs on one thread over a whole coding batch at both ends (``aekit.codec.passes``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aekit.codec.coding import StreamDecoder, StreamEncoder, gaussian_model
from aekit.codec.entropy import LIKELIHOOD_FLOOR, EntropyBottleneck

# The coded residuals round(y - mean) are clamped to +-RESIDUAL_RANGE: far beyond any trained latent's
# spread (a clamped value is a small distortion, never a coding failure).
RESIDUAL_RANGE = 1023
# Scales of the Gaussian conditional: below SCALE_MIN the model would promise more certainty than the
# range coder can use (CompressAI's bound, 0.11); SCALE_STEPS log-spaced values up to SCALE_MAX.
SCALE_MIN, SCALE_MAX, SCALE_STEPS = 0.11, 256.0, 64
SCALES = np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_STEPS))
HYPER_STAGES = 2  # z is 4x smaller per side than y
_LOG2 = math.log(2)


class FactorizedPrior:
    """One learned density per latent channel and level (``EntropyBottleneck``)."""

    def __init__(self, net: nn.Module):
        c = net.config
        net.bottlenecks = nn.ModuleList(EntropyBottleneck(c.latent) for _ in range(c.levels))
        self.net = net

    def __call__(self, y: Tensor, level: int, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(y_hat for the synthesis, bits per item (B,)) of the gained latent y (B, M, h, w).

        ``noise`` (y's shape, uniform on +-1/2), if given, is the rate's training proxy, and y_hat rounds
        straight-through (gradients pass as if it did not); without it everything is rounded.
        """
        bottleneck = self.net.bottlenecks[level]
        rounded = y + (torch.round(y) - y).detach()
        p = bottleneck.likelihood(y + noise if noise is not None else torch.round(y))
        return rounded, -torch.log2(p).flatten(1).sum(1)

    def least_bits(self, level: int, h: int, w: int) -> float:
        """The fewest bits the coder can spend on a latent of h x w positions at ``level``."""
        return h * w * self.net.bottlenecks[level].least_bits()

    def encode(self, y: Tensor, level: int, encoders: list[StreamEncoder], batch: int) -> Tensor:
        """Code each real item's latent (y: (n, M, h, w), gained) into its stream; return the decoded latent
        of the whole coding batch (batch, M, h, w), its spare places filled as the decoder fills them."""
        return _encode_factorized(self.net.bottlenecks[level], torch.round(y), encoders, batch)

    def decode(self, decoders: list[StreamDecoder], level: int, shape: tuple[int, int, int, int]) -> Tensor:
        """The decoded latent (batch, M, h, w) of ``shape``; places beyond the decoders hold the filler."""
        return _decode_factorized(self.net.bottlenecks[level], decoders, shape)


class HyperPrior:
    """A side latent z (factorized prior) predicts a mean and a scale for every element of y."""

    def __init__(self, net: nn.Module):
        c = net.config
        m, n, z = c.latent, c.hyper_hidden, c.hyper_latent
        net.hyper_analysis = nn.Sequential(
            nn.Conv2d(m, n, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(n, n, 5, stride=2, padding=2),
            nn.LeakyReLU(),
            nn.Conv2d(n, z, 5, stride=2, padding=2),
        )
        net.hyper_synthesis = nn.Sequential(
            nn.ConvTranspose2d(z, n, 5, 2, 2, output_padding=1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(n, n * 3 // 2, 5, 2, 2, output_padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(n * 3 // 2, 2 * m, 3, padding=1),
        )
        net.bottlenecks = nn.ModuleList(EntropyBottleneck(z) for _ in range(c.levels))
        self.net = net

    # -- the model --------------------------------------------------------------------------------------
    def side(self, y: Tensor) -> Tensor:
        """z (B, Z, ceil(h/4), ceil(w/4)) of the gained latent y (B, M, h, w), padded to a multiple of 4."""
        h, w = y.shape[-2:]
        step = 2**HYPER_STAGES
        if h % step or w % step:
            y = F.pad(y, (0, -w % step, 0, -h % step), mode="replicate")
        return self.net.hyper_analysis(y)

    def parameters_of(self, z_hat: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(means, scales), each (B, M, h, w), from the decoded side latent; scales >= SCALE_MIN."""
        out = self.net.hyper_synthesis(z_hat)[:, :, : size[0], : size[1]]
        means, raw = out.chunk(2, dim=1)
        return means, F.softplus(raw).clamp_min(SCALE_MIN)

    def __call__(self, y: Tensor, level: int, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(y_hat for the synthesis, bits per item (B,)); see ``FactorizedPrior.__call__``. The side
        latent's noise is drawn from the global generator (training only)."""
        bottleneck = self.net.bottlenecks[level]
        z = self.side(y)
        z_rounded = z + (torch.round(z) - z).detach()
        if noise is not None:
            z_bits = -torch.log2(bottleneck.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5)))
        else:
            z_bits = -torch.log2(bottleneck.likelihood(torch.round(z)))
        means, scales = self.parameters_of(z_rounded, y.shape[-2:])
        residual = y - means
        r = residual + noise if noise is not None else torch.round(residual)
        y_bits = -gaussian_log2_likelihood(r, scales)
        y_hat = means + residual + (torch.round(residual) - residual).detach()
        return y_hat, z_bits.flatten(1).sum(1) + y_bits.flatten(1).sum(1)

    def side_shape(self, latent_shape: tuple[int, ...]) -> tuple[int, ...]:
        *lead, h, w = latent_shape
        step = 2**HYPER_STAGES
        return (*lead[:-1], self.net.config.hyper_latent, -(-h // step), -(-w // step))

    def least_bits(self, level: int, h: int, w: int) -> float:
        """The fewest bits an item's coded side latent takes (the residuals may cost almost nothing)."""
        step = 2**HYPER_STAGES
        return -(-h // step) * -(-w // step) * self.net.bottlenecks[level].least_bits()

    # -- coding -----------------------------------------------------------------------------------------
    def encode(self, y: Tensor, level: int, encoders: list[StreamEncoder], batch: int) -> Tensor:
        bottleneck = self.net.bottlenecks[level]
        n, _, h, w = y.shape
        z_hat = _encode_factorized(bottleneck, torch.round(self.side(y)), encoders, batch)  # (batch, Z, ., .)
        means, indices = self._conditionals(z_hat, (h, w))  # (batch, M, h, w) each
        residual = torch.round(y - means[:n]).clamp_(-RESIDUAL_RANGE, RESIDUAL_RANGE)  # (n, M, h, w)
        symbols = residual.to(torch.int32).numpy()
        model = gaussian_model(RESIDUAL_RANGE)
        for enc, item, idx in zip(encoders, symbols, indices, strict=False):
            enc.encode_gaussian(item.reshape(-1), model, SCALES[idx.reshape(-1)])
        full = torch.zeros_like(means)
        full[:n] = residual
        return (full + means).contiguous()

    def decode(self, decoders: list[StreamDecoder], level: int, shape: tuple[int, int, int, int]) -> Tensor:
        bottleneck = self.net.bottlenecks[level]
        batch, m, h, w = shape
        z_hat = _decode_factorized(bottleneck, decoders, self.side_shape(shape))
        means, indices = self._conditionals(z_hat, (h, w))
        model = gaussian_model(RESIDUAL_RANGE)
        full = torch.zeros_like(means)
        for k, (dec, idx) in enumerate(zip(decoders, indices, strict=False)):
            values = dec.decode_gaussian(model, SCALES[idx.reshape(-1)])
            full[k] = torch.from_numpy(values.astype(np.float32)).view(m, h, w)
        return (full + means).contiguous()

    def _conditionals(self, z_hat: Tensor, size: tuple[int, int]) -> tuple[Tensor, np.ndarray]:
        """(means (B, M, h, w), scale-table indices (B, M, h, w) int64) of a decoded side latent."""
        means, scales = self.parameters_of(z_hat.contiguous(), size)
        return means, scale_indices(scales)


def _encode_factorized(bottleneck: EntropyBottleneck, y: Tensor, encoders: list, batch: int) -> Tensor:
    """Code each real item's rounded latent (n, C, h, w) channel by channel under the bottleneck's tables;
    return the decoded latent of the whole coding batch (batch, C, h, w), spare places filled as the
    decoder fills them."""
    symbols = bottleneck.symbols(y)  # (n, C, h, w)
    models = bottleneck.coding_models()
    for enc, item in zip(encoders, symbols, strict=True):
        for channel, model in zip(item, models, strict=True):
            enc.encode_iid(channel.reshape(-1), model)
    filler = bottleneck.symbols(torch.zeros(1, *y.shape[1:]))
    return bottleneck.values(np.concatenate([symbols, np.repeat(filler, batch - len(y), axis=0)]))


def _decode_factorized(bottleneck: EntropyBottleneck, decoders: list, shape: tuple[int, ...]) -> Tensor:
    """The decoded latent (batch, C, h, w) of ``shape``; places beyond the decoders hold the filler."""
    batch, c, h, w = shape
    filler = bottleneck.symbols(torch.zeros(1, c, h, w))[0]
    models = bottleneck.coding_models()
    items = [np.stack([d.decode_iid(model, h * w) for model in models]).reshape(c, h, w) for d in decoders]
    return bottleneck.values(np.stack(items + [filler] * (batch - len(decoders))))


def scale_indices(scales: Tensor) -> np.ndarray:
    """The index in ``SCALES`` of each scale: the nearest table entry on the log scale."""
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_STEPS - 1)
    position = (torch.log(scales.double()) - math.log(SCALE_MIN)) / step
    return torch.round(position).clamp_(0, SCALE_STEPS - 1).to(torch.int64).numpy()


def gaussian_log2_likelihood(r: Tensor, scales: Tensor) -> Tensor:
    """log2 of the probability of [r - 1/2, r + 1/2] under N(0, scale), floored; the tail is mirrored to
    the side where the difference of two CDFs keeps its precision."""
    with torch.autocast(device_type=r.device.type, enabled=False):
        r, scales = r.float(), scales.float()
        a = r.abs()
        upper = torch.special.ndtr((0.5 - a) / scales)
        lower = torch.special.ndtr((-0.5 - a) / scales)
        return torch.log2((upper - lower).clamp_min(LIKELIHOOD_FLOOR))


# kind -> the prior's class; CodecNetConfig.prior names one. Format 1 files are all "factorized".
PRIORS = {"factorized": FactorizedPrior, "hyperprior": HyperPrior}

__all__ = ["PRIORS", "SCALES", "FactorizedPrior", "HyperPrior"]
