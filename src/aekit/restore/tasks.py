"""The restoration tasks by name: how each one degrades a clean image, and how the degraded image becomes
the network's input.

A task turns clean images into what a user would have (``observe``: a noisy photo, a grayscale one, a small
one, one with holes and their mask) and that into the network's input (``prepare``). Training pairs are
``(prepare(observe(clean)), clean)``, made on the fly from clean images only; the benchmark and
``ImageRestorer.restore`` use the same two steps, so what the model is tested on is what it learned.
All tensors are (B, C, H, W) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from aekit.restore.network import luma

SCALES = (2, 3, 4)
MASK_FILL = 0.5  # what the network sees in the holes; the mask channel tells it where they are
# Blind denoise training: the share of clean images (so a clean image passes unharmed), the share whose
# level the network is told rather than left to estimate, and the level that the map's value 1 stands for.
ZERO_SHARE = 0.08
KNOWN_SHARE = 0.25
LEVEL_UNIT = 50 / 255


@dataclass(frozen=True)
class Settings:
    """The knobs a task reads; stored with the model so that restore degrades exactly as training did."""

    scale: int = 2
    noise_sigma: float = 25 / 255  # denoise: the one level trained on; blind: the highest
    mask: str = "boxes"
    blind: bool = False  # denoise: levels 0..noise_sigma, and a noise-level map as an extra input channel
    grayscale: bool = False  # an RGB model also trained on gray images (as three equal channels)
    # inpaint: what the holes hold in the network's input. "smooth" (new models) fills them from the known
    # pixels around, so the network only corrects a fair guess; "grey" is what older files were trained on.
    fill: str = "grey"


def quantize(x: Tensor) -> Tensor:
    """What saving as 8-bit does to an image: the network trains on the inputs it will be given."""
    return torch.round(x.clamp(0, 1) * 255) / 255


# -- masks for inpainting: (B, 1, H, W) with 1 where pixels are missing --------------------------------------


def box_mask(b: int, h: int, w: int, gen: torch.Generator | None, device) -> Tensor:
    """One to three rectangles per image, each side 1/8 to 3/8 of the image's."""
    ys = torch.arange(h, device=device).view(1, h, 1)
    xs = torch.arange(w, device=device).view(1, 1, w)
    mask = torch.zeros(b, h, w, device=device)
    count = torch.randint(1, 4, (b,), generator=gen).to(device)
    for k in range(3):
        size = torch.rand(b, 2, generator=gen).to(device) * 0.25 + 0.125  # (B, 2) fractions of h, w
        bh, bw = (size[:, 0] * h).ceil(), (size[:, 1] * w).ceil()
        top = (torch.rand(b, generator=gen).to(device) * (h - bh + 1)).floor()
        left = (torch.rand(b, generator=gen).to(device) * (w - bw + 1)).floor()
        inside = (ys >= top.view(-1, 1, 1)) & (ys < (top + bh).view(-1, 1, 1))
        inside = inside & (xs >= left.view(-1, 1, 1)) & (xs < (left + bw).view(-1, 1, 1))  # (B, H, W)
        mask = torch.maximum(mask, (inside & (k < count).view(-1, 1, 1)).float())
    return mask[:, None]  # (B, 1, H, W)


def stroke_mask(b: int, h: int, w: int, gen: torch.Generator | None, device) -> Tensor:
    """Three thick straight strokes per image, like scratches or a brushed-out wire."""
    ys = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w)
    mask = torch.zeros(b, h, w, device=device)
    scale = torch.tensor([h, w], dtype=torch.float32)
    for _ in range(3):
        p = (torch.rand(b, 2, generator=gen) * scale).to(device)  # (B, 2) start (y, x)
        q = (torch.rand(b, 2, generator=gen) * scale).to(device)  # (B, 2) end
        radius = (torch.rand(b, generator=gen) * 0.05 + 0.03).to(device) * min(h, w) + 0.5  # (B,)
        d = q - p
        # distance of every pixel to the segment p-q
        t = (
            (ys - p[:, 0].view(-1, 1, 1)) * d[:, 0].view(-1, 1, 1)
            + (xs - p[:, 1].view(-1, 1, 1)) * d[:, 1].view(-1, 1, 1)
        ) / (d.pow(2).sum(dim=1).view(-1, 1, 1) + 1e-6)
        t = t.clamp(0, 1)  # (B, H, W)
        dy = ys - (p[:, 0].view(-1, 1, 1) + t * d[:, 0].view(-1, 1, 1))
        dx = xs - (p[:, 1].view(-1, 1, 1) + t * d[:, 1].view(-1, 1, 1))
        mask = torch.maximum(mask, ((dy.pow(2) + dx.pow(2)).sqrt() <= radius.view(-1, 1, 1)).float())
    return mask[:, None]  # (B, 1, H, W)


def mixed_mask(b: int, h: int, w: int, gen: torch.Generator | None, device) -> Tensor:
    """Boxes for some images, strokes for the others: what a general inpainter meets."""
    strokes = (torch.rand(b, generator=gen) < 0.5).to(device).view(-1, 1, 1, 1)
    return torch.where(strokes, stroke_mask(b, h, w, gen, device), box_mask(b, h, w, gen, device))


MASKS: dict[str, Callable[..., Tensor]] = {"boxes": box_mask, "strokes": stroke_mask, "mixed": mixed_mask}


# -- the tasks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What a user has: the degraded image, and for inpainting the mask of missing pixels."""

    image: Tensor  # (B, C_obs, h, w)
    mask: Tensor | None = None  # (B, 1, h, w), 1 = missing
    sigma: Tensor | None = None  # (B,) noise levels the user knows (blind denoise); NaN or None: estimate it


@dataclass(frozen=True)
class Task:
    summary: str
    observe: Callable[[Tensor, Settings, torch.Generator | None], Observed]  # clean -> what a user has
    prepare: Callable[[Observed, Settings], Tensor]  # what a user has -> network input at the output size
    observed_channels: Callable[[int], int]  # channels of the clean images -> channels a user brings
    extra_inputs: Callable[[Settings], int] = lambda s: 0  # input channels beyond the image's (mask, level)
    base: str = "input"
    keep_luma: bool = False
    keep_known: bool = False
    needs_colour: bool = False
    output_scale: Callable[[Settings], int] = lambda s: 1  # output size / observed size
    baseline: str = "the input"  # what the network's input is to a user, beside its output


def _noisy(clean: Tensor, s: Settings, gen: torch.Generator | None) -> Observed:
    noise = torch.randn(clean.shape, generator=gen).to(clean.device)
    if not s.blind:
        return Observed(quantize(clean + s.noise_sigma * noise))
    b = clean.shape[0]
    draw = torch.rand(b, 3, generator=gen).to(clean.device)  # (B, 3): level, clean or not, known or not
    sigma = torch.where(draw[:, 0] < ZERO_SHARE, 0.0, draw[:, 0] * s.noise_sigma)  # (B,)
    noisy = clean + sigma.view(-1, 1, 1, 1) * noise
    # Half the images as saved in 8 bits (clipped and rounded), half as the papers add noise (in float).
    noisy = torch.where((draw[:, 1] < 0.5).view(-1, 1, 1, 1), quantize(noisy), noisy)
    known = torch.where(draw[:, 2] < KNOWN_SHARE, sigma, torch.full_like(sigma, math.nan))
    return Observed(noisy, sigma=known)


def _with_level(obs: Observed, s: Settings) -> Tensor:
    """Blind denoise: the noisy image plus a plane holding its noise level, the one given or estimated."""
    if not s.blind:
        return obs.image
    x = obs.image
    if obs.sigma is None:
        sigma = estimate_noise(x)  # (B,)
    else:
        given = obs.sigma.to(x.device, x.dtype)
        sigma = torch.where(torch.isnan(given), estimate_noise(x), given) if given.isnan().any() else given
    level = (sigma / LEVEL_UNIT).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])  # (B, 1, H, W)
    return torch.cat([x, level.to(x.dtype)], dim=1)


def estimate_noise(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B,): the standard deviation of white Gaussian noise in each image.

    Donoho's estimator: the median absolute value of the finest diagonal Haar wavelet coefficients, over
    0.6745 (the median of |N(0, 1)|). Texture raises it a little on clean images, which the network sees
    in training too (it is given this estimate most of the time, so it learns how far to trust it).
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    if h == 0 or w == 0:
        return torch.zeros(x.shape[0], device=x.device)
    x = x[..., :h, :w]
    diagonal = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    return diagonal.abs().flatten(1).median(dim=1).values / 0.6745


def _gray(clean: Tensor, s: Settings, gen: torch.Generator | None) -> Observed:
    return Observed(quantize(luma(clean)))


def _small(clean: Tensor, s: Settings, gen: torch.Generator | None) -> Observed:
    h, w = clean.shape[-2] // s.scale, clean.shape[-1] // s.scale
    return Observed(quantize(F.interpolate(clean, size=(h, w), mode="bicubic", antialias=True)))


def bicubic_up(small: Tensor, scale: int) -> Tensor:
    """The classical upscaler: also the base the network corrects, and the benchmark's baseline."""
    return F.interpolate(small, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def _holes(clean: Tensor, s: Settings, gen: torch.Generator | None) -> Observed:
    b, _, h, w = clean.shape
    mask = MASKS[s.mask](b, h, w, gen, clean.device)
    return Observed(clean * (1 - mask) + MASK_FILL * mask, mask)


def _fill(obs: Observed, s: Settings) -> Tensor:
    mask = obs.mask
    guess = smooth_fill(obs.image, mask) if s.fill == "smooth" else MASK_FILL
    return torch.cat([obs.image * (1 - mask) + guess * mask, mask], dim=1)  # (B, C + 1, H, W)


def smooth_fill(image: Tensor, mask: Tensor) -> Tensor:
    """(B, C, H, W), mask (B, 1, H, W) with 1 = missing -> the image with its holes filled smoothly.

    Push-pull (Gortler et al. 1996): average the known pixels into ever coarser grids until every cell has
    some, then come back up, keeping each level's own average where it had known pixels and taking the
    coarser level's where it had few. Linear in the pixel count and batched, so it costs nothing beside the
    network, where the classical ``inpaint_biharmonic`` solves a linear system per image.
    """
    known = 1 - mask
    sums, weights = [image * known], [known]
    while min(sums[-1].shape[-2:]) > 1 and bool((weights[-1] == 0).any()):
        sums.append(F.avg_pool2d(sums[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    filled = sums[-1] / weights[-1].clamp_min(1e-8)
    for total, weight in zip(reversed(sums[:-1]), reversed(weights[:-1]), strict=True):
        coarse = F.interpolate(filled, size=total.shape[-2:], mode="bilinear", align_corners=False)
        # A cell a quarter known already trusts its own average fully: sharper than weighting by the share.
        trust = (weight * 4).clamp(max=1)
        filled = trust * total / weight.clamp_min(1e-8) + (1 - trust) * coarse
    return image * known + filled * mask


TASKS: dict[str, Task] = {
    "denoise": Task(
        "remove Gaussian noise (noise_sigma; blind: any level up to it, estimated or given)",
        observe=_noisy,
        prepare=_with_level,
        observed_channels=lambda c: c,
        extra_inputs=lambda s: int(s.blind),
        baseline="the noisy input",
    ),
    "colorize": Task(
        "grayscale -> colour (keeps the input's luminance, predicts the colour)",
        observe=_gray,
        prepare=lambda obs, s: obs.image,
        observed_channels=lambda c: 1,
        base="gray",
        keep_luma=True,
        needs_colour=True,
        baseline="the grayscale input",
    ),
    "upscale": Task(
        "enlarge by scale (2, 3 or 4): corrects a bicubic enlargement",
        observe=_small,
        prepare=lambda obs, s: bicubic_up(obs.image, s.scale),
        observed_channels=lambda c: c,
        output_scale=lambda s: s.scale,
        baseline="the bicubic enlargement",
    ),
    "inpaint": Task(
        "fill masked regions (mask: boxes or strokes while training; any mask when restoring)",
        observe=_holes,
        prepare=_fill,
        observed_channels=lambda c: c,
        extra_inputs=lambda s: 1,
        keep_known=True,
        baseline="the input with grey holes",
    ),
}


def training_input(task: Task, clean: Tensor, s: Settings, gen: torch.Generator | None = None) -> Tensor:
    """The network input for a clean batch (B, C, H, W): ``prepare(observe(clean))``. A gray batch given as
    three equal channels is degraded in one channel and repeated, as a gray photo's noise is the same in
    all three when it is given to an RGB model (``Settings.grayscale``)."""
    if s.grayscale and clean.shape[1] == 3 and not task.needs_colour and bool((clean[:, :1] == clean).all()):
        obs = task.observe(clean[:, :1], s, gen)
        return task.prepare(replace(obs, image=obs.image.expand(-1, 3, -1, -1)), s)
    return task.prepare(task.observe(clean, s, gen), s)


def augment(clean: Tensor) -> Tensor:
    """A random flip and (for square crops) quarter turn of the whole batch: 8x the views of each crop."""
    if torch.rand(()) < 0.5:
        clean = clean.flip(-1)
    if clean.shape[-1] == clean.shape[-2]:
        clean = torch.rot90(clean, int(torch.randint(0, 4, ())), dims=(-2, -1))
    return clean
