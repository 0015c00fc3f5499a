"""The codec's training objective: every quality level and the pixel head, trained by the shared trainer.

Each step draws a batch and one quality level; the loss is Balle's rate + lambda * distortion for that
level (rate in bits per pixel from the entropy bottleneck's likelihoods, distortion 255^2 * MSE) plus the
pixel head's code length in bits per pixel. The pixel head reads the reconstruction and features detached,
so it learns to code pixels given the latent without pulling the latent away from the lossy optimum.
``RateDistortion`` wraps a ``CodecNet`` with that loss for ``aekit.training.Trainer`` (``ImageCodec.fit``
sets it up); ``estimate_bits`` gives the ideal code lengths that choosing levels and qualities compares.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aekit.codec.network import CodecNet
from aekit.codec.pixels import GROUPS, group_map, log_prob, quantise_context


def pixel_bits(
    net: CodecNet, x: Tensor, x_hat: Tensor, features: Tensor, group: Tensor, bins: Tensor | None = None
) -> Tensor:
    """Bits per pixel of the target group, one random group per item: x (B, C, H, W) exact 8-bit on [0, 1].

    ``group`` (B,) int64 says which group each item codes; the groups before it are its context, shown
    quantised to ``bins`` (B,) (near-lossless; None = exact). The target is always coded exactly: the
    bits of a bin are those of its values summed, which this trains too.
    """
    b, _, h, w = x.shape
    gmap = group_map(h, w, x.device).view(1, 1, h, w)  # (1, 1, H, W)
    g = group.view(b, 1, 1, 1)
    known = (gmap < g).to(x.dtype)  # (B, 1, H, W)
    target = (gmap == g).to(x.dtype)
    context = x if bins is None else quantise_context(x, bins, net.config.value_histogram)
    params = net.pixel_head(
        x_hat.detach(), features.detach(), context, known, target, bins
    )  # (B, C, 3K, H, W)
    lp = log_prob(params, x, net.config.pixel_mixtures).sum(dim=1, keepdim=True)  # (B, 1, H, W) nats
    return -(lp * target).sum() / target.sum() / math.log(2)


def rd_loss(
    net: CodecNet,
    x: Tensor,
    level: int,
    group: Tensor,
    pixel_weight: float = 1.0,
    bins: Tensor | None = None,
) -> dict[str, Tensor]:
    """The training loss and its parts for one batch x (B, C, H, W) on [0, 1] at one level; ``group``
    and ``bins`` (B,) as in ``pixel_bits`` (bins None: exact context)."""
    out = net(x, level)
    pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
    bpp = out.bits.sum() / pixels
    mse = torch.mean((out.x_hat - x) ** 2)
    lam = net.config.lambdas[level]
    pix = pixel_bits(net, x, out.x_hat, out.features, group, bins)
    loss = bpp + lam * 255**2 * mse + pixel_weight * pix
    return {"loss": loss, "bpp": bpp, "mse": mse, "pixel_bpp": pix}


class RateDistortion(nn.Module):
    """What the shared trainer (``aekit.training.Trainer``) trains for a codec: ``forward(x)`` returns the
    loss parts of a batch (``rd_loss``), so the whole step runs inside the module DDP would wrap.

    In training each batch draws its level, every item's pixel group and context bin width, and the
    quantisation noise from the global torch stream, which the trainer re-seeds every epoch: a resumed
    run draws what the uninterrupted one drew. In eval mode (validation) nothing is drawn: item i of a
    batch is scored at level i % L, with group and bin width cycling too, and the latent rounded as in
    coding, so every epoch's validation loss is the same function of the weights.
    """

    def __init__(self, net: CodecNet, pixel_weight: float = 1.0):
        super().__init__()
        self.net = net
        self.pixel_weight = pixel_weight

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        c = self.net.config
        choices = torch.tensor(c.pixel_train_bins)
        if self.training:
            level = int(torch.randint(c.levels, (1,)))
            group = torch.randint(GROUPS, (len(x),)).to(x.device)
            bins = choices[torch.randint(len(choices), (len(x),))] if len(choices) > 1 else None
            return rd_loss(self.net, x, level, group, self.pixel_weight, bins)
        i = torch.arange(len(x))
        levels, groups = i % c.levels, (i // c.levels) % GROUPS
        bins = choices[(i // (c.levels * GROUPS)) % len(choices)]
        sums: dict[str, Tensor] = {}
        for level in range(c.levels):
            rows = levels == level
            if not rows.any():
                continue
            parts = rd_loss(
                self.net,
                x[rows.to(x.device)],
                level,
                groups[rows].to(x.device),
                self.pixel_weight,
                bins[rows] if len(choices) > 1 else None,
            )
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * (int(rows.sum()) / len(x))
        return sums


def objective(model: RateDistortion, parts: dict[str, Tensor], target: Tensor) -> dict[str, Tensor]:
    """The trainer's ``objective`` for a ``RateDistortion``: its forward already gave the parts."""
    return parts


@torch.no_grad()
def estimate_bits(net: CodecNet, x: Tensor, level: int) -> tuple[float, float, float]:
    """Mean (latent bits, lossless pixel bits, MSE) per image of x (B, C, H, W) at ``level``, from the model.

    The ideal code lengths (what the coder achieves to within a few bytes), so choosing the lossless
    level or the near-lossless qualities costs forward passes only.
    """
    net.eval()
    out = net(x, level)
    latent = float(out.bits.sum()) / len(x)
    total = 0.0
    h, w = x.shape[-2:]
    gmap = group_map(h, w, x.device).view(1, 1, h, w)
    for g in range(GROUPS):
        known, target = (gmap < g).to(x.dtype), (gmap == g).to(x.dtype)
        params = net.pixel_head(
            out.x_hat, out.features, x, known.expand(len(x), -1, -1, -1), target.expand(len(x), -1, -1, -1)
        )
        lp = log_prob(params, x, net.config.pixel_mixtures).sum(dim=1, keepdim=True)
        total += float(-(lp * target).sum()) / math.log(2)
    mse = float(torch.mean((out.x_hat.clamp(0, 1) - x) ** 2))
    return latent, total / len(x), mse
