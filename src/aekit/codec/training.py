"""Rate-distortion training of a ``CodecNet``: every quality level and the pixel head, in one loop.

Each step draws a batch and one quality level; the loss is Balle's rate + lambda * distortion for that
level (rate in bits per pixel from the entropy bottleneck's likelihoods, distortion 255^2 * MSE) plus the
pixel head's code length in bits per pixel. The pixel head reads the reconstruction and features detached,
so it learns to code pixels given the latent without pulling the latent away from the lossy optimum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from aekit.codec.network import CodecNet
from aekit.codec.pixels import GROUPS, group_map, log_prob, quantise_context
from aekit.errors import TrainingError

Batches = Tensor | Callable[[torch.Generator], Tensor]


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
    net: CodecNet, x: Tensor, level: int, group: Tensor, pixel_weight: float = 1.0
) -> dict[str, Tensor]:
    """The training loss and its parts for one batch x (B, C, H, W) on [0, 1] at one level."""
    out = net(x, level)
    pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
    bpp = -torch.log2(out.likelihoods).sum() / pixels
    mse = torch.mean((out.x_hat - x) ** 2)
    lam = net.config.lambdas[level]
    choices = torch.tensor(net.config.pixel_train_bins)
    bins = choices[torch.randint(len(choices), (x.shape[0],))] if len(choices) > 1 else None
    pix = pixel_bits(net, x, out.x_hat, out.features, group, bins)
    loss = bpp + lam * 255**2 * mse + pixel_weight * pix
    return {"loss": loss, "bpp": bpp, "mse": mse, "pixel_bpp": pix}


def train_codec(
    net: CodecNet,
    data: Batches,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    pixel_weight: float = 1.0,
    density_lr: float = 10.0,
    log_every: int = 100,
    verbose: int = 0,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``net`` in place for ``steps`` optimizer steps; returns the logged history.

    ``data`` is a tensor (N, C, H, W) of 8-bit images on [0, 1] (H, W multiples of ``net.stride``), from
    which batches are drawn at random, or a function ``batch(generator) -> (B, C, H, W)`` for data that
    does not fit a tensor (random crops of photos). Adam with a short warm-up and cosine decay; gradients
    clipped at norm 1 (the entropy model's first steps can spike); the entropy models learn ``density_lr``
    times faster. Every ``log_every`` steps the mean loss parts are appended to the history (printed
    when ``verbose``, passed to ``on_log``). Ends by refreshing the coding tables. The quantisation
    noise comes from the global torch RNG: seed it (or wrap the call in ``torch.random.fork_rng``) for a
    reproducible run.
    """
    gen = torch.Generator().manual_seed(seed)
    net.to(device).train()
    # The densities start wide and must narrow fast in a short run: they learn at ten times the rate.
    density = [p for name, p in net.named_parameters() if name.startswith("bottlenecks.")]
    others = [p for name, p in net.named_parameters() if not name.startswith("bottlenecks.")]
    opt = torch.optim.Adam([{"params": others, "lr": lr}, {"params": density, "lr": lr * density_lr}])
    warmup = max(1, steps // 50)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    history: list[dict[str, Any]] = []
    sums: dict[str, float] = {}
    count, start = 0, time.perf_counter()
    for step in range(steps):
        x = data(gen) if callable(data) else data[torch.randint(len(data), (batch_size,), generator=gen)]
        x = x.to(device)
        level = int(torch.randint(net.config.levels, (1,), generator=gen))
        group = torch.randint(GROUPS, (x.shape[0],), generator=gen).to(device)
        parts = rd_loss(net, x, level, group, pixel_weight)
        if not torch.isfinite(parts["loss"]):
            raise TrainingError(
                f"the codec's training loss became {parts['loss'].item()} at step {step}; "
                "lower lr (e.g. lr=3e-4) or check the data for constant or empty images"
            )
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        count += 1
        if count == log_every or step == steps - 1:
            row = {"step": step + 1, "seconds": round(time.perf_counter() - start, 1)}
            row.update({k: round(v / count, 6) for k, v in sums.items()})
            history.append(row)
            if verbose:
                print(
                    f"step {row['step']}/{steps}  loss {row['loss']:.4f}  bpp {row['bpp']:.4f}  "
                    f"mse {row['mse']:.6f}  pixel bpp {row['pixel_bpp']:.4f}  {row['seconds']}s",
                    flush=True,
                )
            if on_log is not None:
                on_log(row)
            sums, count = {}, 0
    net.eval()
    net.update_tables()
    return history


@torch.no_grad()
def estimate_bits(net: CodecNet, x: Tensor, level: int) -> tuple[float, float, float]:
    """Mean (latent bits, lossless pixel bits, MSE) per image of x (B, C, H, W) at ``level``, from the model.

    The ideal code lengths (what the coder achieves to within a few bytes), so choosing the lossless
    level or the near-lossless qualities costs forward passes only.
    """
    net.eval()
    out = net(x, level)
    latent = float(-torch.log2(out.likelihoods).sum()) / len(x)
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
