"""How unlike its training images an image is, for a restorer (``aekit.typicality`` keeps the quantiles).

The statistic, "features", is a Mahalanobis distance of what the network's encoder makes of its input:
the mean and the spread over the image of each channel of its deepest activations
(``RestorationUNet.deepest``), against what it made of the training images. It reads the network's input,
after the task's degradation (the noisy image and its level map, the bicubic enlargement, the filled holes
and their mask), so it asks what the network itself sees: noise, a drawing or a screenshot given to a
model of photographs sits far from every training image.

At the end of ``fit`` (and in ``fit_typicality``) up to ``MAX_IMAGES`` training images are degraded as in
training, under a fixed seed, and measured on their centre (at most ``SIDE`` pixels a side, for a bounded
cost); an image to restore is measured whole, in tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aekit.restore.network import RestorationUNet
from aekit.restore.tasks import Settings, Task, training_input
from aekit.typicality import CodeGaussian, Reference

NAMES = ("features",)
GAUSSIAN_KEY = "features_gaussian"
MAX_IMAGES = 256  # one encoder pass each: seconds on a CPU, and enough for the 99.9% tail's neighbourhood
SIDE = 256  # training images are measured on their centre, at most this square
# Principal directions the distance whitens: a few hundred images estimate the covariance of a handful of
# directions, not of hundreds (in 256 directions every new image would lie farther out than the training
# images, whose own covariance it is). One direction per 8 images, at most 16.
WHITEN = 16
IMAGES_PER_DIRECTION = 8
MIN_HALF = 4  # images each half needs for the cross-fitted quantiles below


def measure(
    model: RestorationUNet, task: Task, settings: Settings, pictures: list[np.ndarray], seed: int
) -> tuple[Reference, FeatureGaussian]:
    """The training distribution of "features" from clean training images (H, W, C) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    if len(pictures) > MAX_IMAGES:
        pictures = [pictures[i] for i in np.sort(rng.choice(len(pictures), MAX_IMAGES, replace=False))]
    multiple = math.lcm(model.stride, task.output_scale(settings))
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    rows = []
    for im in pictures:
        clean = torch.from_numpy(_centre(im, multiple).transpose(2, 0, 1).copy())[None]  # (1, C, h, w)
        model_input = training_input(task, clean.to(device), settings, gen)  # (1, C_in, h', w')
        rows.append(pooled(model, model_input))
    features = np.stack(rows)  # (N, K)
    # Cross-fitted: each half's distances from the other half's Gaussian. A Gaussian fitted on a few
    # hundred images in hundreds of dimensions fits them better than any new image, and quantiles of its
    # own images' distances would call most new photographs atypical.
    gaussian = FeatureGaussian.fit(features)
    if len(features) < 2 * MIN_HALF:  # too few to halve: their own distances (typicality means little)
        return Reference.of({"features": gaussian.distance(features)}), gaussian
    half = rng.permutation(len(features)) < len(features) // 2
    distances = np.empty(len(features))
    for part in (half, ~half):
        distances[part] = FeatureGaussian.fit(features[~part]).distance(features[part])
    return Reference.of({"features": distances}), gaussian


@dataclass
class FeatureGaussian:
    """A Gaussian of the features (probabilistic PCA, Tipping & Bishop 1999): the leading principal
    directions whitened (``gaussian``), every other direction with their mean variance ``rest``. Atypical
    inputs often leave the training images' subspace, so the directions left out must still count."""

    gaussian: CodeGaussian
    rest: float

    @classmethod
    def fit(cls, features: np.ndarray) -> FeatureGaussian:
        full = CodeGaussian.fit(features)
        keep = max(1, min(WHITEN, len(features) // IMAGES_PER_DIRECTION, full.whiten.shape[1]))
        variances = 1.0 / np.sum(full.whiten**2, axis=0)  # of the principal directions, largest first
        total = float(np.sum((features - full.mean) ** 2) / max(1, len(features) - 1))
        left = max(1, features.shape[1] - keep)
        rest = max((total - float(variances[:keep].sum())) / left, 1e-3 * total / features.shape[1], 1e-12)
        return cls(CodeGaussian(full.mean, full.whiten[:, :keep]), rest)

    def distance(self, features: np.ndarray) -> np.ndarray:
        d = np.asarray(features, np.float64) - self.gaussian.mean  # (N, K)
        w = self.gaussian.whiten  # (K, R)
        inside = np.sum((d @ w) ** 2, axis=1)  # (N,)
        directions = w / np.linalg.norm(w, axis=0)  # (K, R) unit vectors
        outside = np.sum(d * d, axis=1) - np.sum((d @ directions) ** 2, axis=1)  # (N,)
        return np.sqrt(inside + np.maximum(outside, 0.0) / self.rest)

    def to_dict(self) -> dict[str, Any]:
        return {**self.gaussian.to_dict(), "rest": self.rest}

    @classmethod
    def from_dict(cls, entry: Any, size: int) -> FeatureGaussian:
        gaussian = CodeGaussian.from_dict(entry, size)
        rest = entry["rest"]
        if isinstance(rest, bool) or not isinstance(rest, int | float) or not 0 < rest < math.inf:
            raise ValueError(f"its residual variance {rest!r} is not a positive number")
        return cls(gaussian, float(rest))


@torch.no_grad()
def pooled(model: RestorationUNet, x: Tensor, tile: int = 256) -> np.ndarray:
    """The mean and the standard deviation over the image of each of ``model.deepest``'s channels, for
    one network input (1, C_in, H, W) of any size, in tiles of at most ``tile`` pixels a side: (2 K,)
    float64. The spread as well as the mean: noise and smooth images can share a mean activation, never
    its spread."""
    model.eval()
    stride = model.stride
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % stride, 0, -h % stride), mode="replicate")  # (1, C_in, Hp, Wp)
    side = max(stride, tile // stride * stride)
    first = second = 0.0
    count = 0
    for top in range(0, x.shape[-2], side):
        for left in range(0, x.shape[-1], side):
            a = model.deepest(x[..., top : top + side, left : left + side])[0].double()  # (K, h', w')
            first = first + a.sum(dim=(1, 2)).cpu()  # (K,)
            second = second + (a * a).sum(dim=(1, 2)).cpu()  # (K,)
            count += a.shape[1] * a.shape[2]
    mean = first / count
    spread = (second / count - mean * mean).clamp_min(0).sqrt()
    return torch.cat([mean, spread]).numpy()


def size(model: RestorationUNet) -> int:
    """How many numbers ``pooled`` gives for ``model``."""
    return 2 * model.deepest_width


def header(reference: Reference, gaussian: FeatureGaussian) -> dict[str, Any]:
    return {**reference.to_dict(), GAUSSIAN_KEY: gaussian.to_dict()}


def read(entry: Any, size: int) -> tuple[Reference, FeatureGaussian]:
    """(Reference, FeatureGaussian) from a restorer file's typicality entry, each field checked."""
    reference = Reference.from_dict(entry, NAMES)
    return reference, FeatureGaussian.from_dict(entry[GAUSSIAN_KEY], size)


def _centre(image: np.ndarray, multiple: int) -> np.ndarray:
    """The centre of an (H, W, C) image, at most SIDE a side, cut to a multiple of ``multiple`` (the
    network's stride and the upscale factor); one smaller than that is padded by repeating its edge."""
    h, w = image.shape[:2]
    ch = max(multiple, min(h, SIDE) // multiple * multiple)
    cw = max(multiple, min(w, SIDE) // multiple * multiple)
    top, left = max(0, (h - ch) // 2), max(0, (w - cw) // 2)
    out = image[top : top + ch, left : left + cw]
    if out.shape[:2] != (ch, cw):
        out = np.pad(out, ((0, ch - out.shape[0]), (0, cw - out.shape[1]), (0, 0)), mode="edge")
    return out
