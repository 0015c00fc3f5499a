"""How unlike its training images an image is, for a codec (``aekit.typicality`` keeps the quantiles).

The statistic, "rate", is the bits per pixel the codec's entropy model assigns to the image's latent at its
finest level (``-log2`` of each rounded latent value's probability under the learned prior, summed, over
the image's pixels): the model's own measure of surprise. An image unlike the photographs it learned (noise,
dense text, a screenshot's hard edges) costs more bits than nearly all of them, and its files come out
larger and its reconstructions worse than the codec's benchmarks say. An image that costs fewer bits (a
flat or blurred one) is not called atypical: it only compresses better.

At the end of ``fit`` (and in ``fit_typicality``) up to ``MAX_IMAGES`` training images are measured on their
centre (at most ``SIDE`` pixels a side, for a bounded cost); an image to compress is measured whole, in
tiles, so memory stays bounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aekit.codec.network import CodecNet
from aekit.typicality import Reference

NAMES = ("rate",)
MAX_IMAGES = 256  # one analysis pass each: seconds on a CPU
SIDE = 256  # training images are measured on their centre, at most this square
TILE = 512  # an image to compress is measured in tiles of at most this side: the analysis's memory


def measure(net: CodecNet, pictures: list[np.ndarray], seed: int) -> tuple[Reference, int]:
    """The training distribution of "rate" from uint8 training images (H, W[, C]), and the level it is
    measured at (the finest)."""
    rng = np.random.default_rng(seed)
    if len(pictures) > MAX_IMAGES:
        pictures = [pictures[i] for i in np.sort(rng.choice(len(pictures), MAX_IMAGES, replace=False))]
    level = net.config.levels - 1
    values = [rate(net, tensor(_centre(p)), level) for p in pictures]
    return Reference.of({"rate": np.asarray(values)}), level


@torch.no_grad()
def rate(net: CodecNet, x: Tensor, level: int) -> float:
    """Bits per pixel of one image (1, C, H, W) on [0, 1]'s latent at ``level`` under the level's prior."""
    net.eval()
    stride = net.stride
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % stride, 0, -h % stride), mode="replicate")  # (1, C, Hp, Wp)
    side = max(stride, TILE // stride * stride)
    bits = 0.0
    for top in range(0, x.shape[-2], side):
        for left in range(0, x.shape[-1], side):
            y = net.analysis(x[..., top : top + side, left : left + side]) * net.gain(level)  # (1, M, h, w)
            bits += float(net.prior(y, level)[1].sum())
    return bits / (h * w)


def header(reference: Reference, level: int) -> dict[str, Any]:
    return {**reference.to_dict(), "level": level}


def read(entry: Any, levels: int) -> tuple[Reference, int]:
    """(Reference, level) from a codec file's typicality entry, each field checked."""
    reference = Reference.from_dict(entry, NAMES)
    level = entry["level"]
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < levels:
        raise ValueError(f"its level {level!r} is not one of the codec's levels 0..{levels - 1}")
    return reference, level


def tensor(image: np.ndarray) -> Tensor:
    """uint8 (H, W[, C]) -> (1, C, H, W) on [0, 1]."""
    arr = image.reshape(*image.shape[:2], -1)  # (H, W, C)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())[None].float() / 255  # a copy: may be read-only


def _centre(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - SIDE) // 2), max(0, (w - SIDE) // 2)
    return image[top : top + SIDE, left : left + SIDE]
