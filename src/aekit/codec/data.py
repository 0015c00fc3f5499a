"""The codec's training samples, as the shared trainer reads them (``aekit.training.TrainData``).

Images that share one shape no larger than the training crop train whole (MNIST digits, CIFAR
thumbnails); any others (photos) train on random square crops. Crops are cut afresh every epoch from the
epoch's seed rather than once up front: a few large photos hold far more distinct crops than one epoch
can use, and a new draw each epoch keeps the network from learning a fixed set of them. An epoch holds
``per_epoch`` samples: the images in a fresh random order, repeated when the epoch is longer than one
pass; a resumed run, or another process under torchrun, draws the same ones from the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def trains_whole(pictures: list[np.ndarray], crop: int) -> bool:
    """Whether the images share one shape no larger than ``crop``: they train (and validate) whole."""
    return len({p.shape for p in pictures}) == 1 and max(pictures[0].shape[:2]) <= crop


def stack(pictures: list[np.ndarray], stride: int) -> Tensor:
    """Same-shape uint8 images -> (N, C, H, W) float on [0, 1], replicate-padded to multiples of stride."""
    x = torch.from_numpy(np.stack([p.reshape(*p.shape[:2], -1) for p in pictures])).permute(0, 3, 1, 2)
    x = x.float() / 255  # (N, C, H, W)
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        x = F.pad(x, (0, -w % stride, 0, -h % stride), mode="replicate")
    return x


class CodecImages:
    """``per_epoch`` samples an epoch: whole images (``trains_whole``) or random ``crop`` x ``crop`` crops."""

    def __init__(self, pictures: list[np.ndarray], crop: int, stride: int, per_epoch: int):
        self.whole = stack(pictures, stride) if trains_whole(pictures, crop) else None
        self.pictures = pictures
        self.crop, self.per_epoch = crop, per_epoch

    def __len__(self) -> int:
        return self.per_epoch

    def batches(self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1) -> Iterator[Tensor]:
        # seed None (in order) never happens in training; a fixed draw keeps the protocol's promise
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        n = len(self.pictures)
        passes = -(-self.per_epoch // n)
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(passes)])[: self.per_epoch]
        for start in range(0, self.per_epoch, batch_size):
            rows = order[start : start + batch_size]
            # every rank draws the whole global batch's offsets (the same stream), then cuts its own slice
            offsets = torch.rand(len(rows), 2, generator=gen)
            if world > 1:
                part = torch.tensor_split(torch.arange(len(rows)), world)[rank]
                rows, offsets = rows[part], offsets[part]
            yield self._samples(rows, offsets)

    def fixed(self, count: int, seed: int) -> Tensor:
        """``count`` samples drawn once from ``seed``, the images in turn (validation's)."""
        gen = torch.Generator().manual_seed(seed)
        rows = torch.arange(count) % len(self.pictures)
        return self._samples(rows, torch.rand(len(rows), 2, generator=gen))

    def _samples(self, rows: Tensor, offsets: Tensor) -> Tensor:
        """(B, C, crop, crop) (or whole images) for image indices ``rows``, crops at ``offsets`` in [0, 1)."""
        if self.whole is not None:
            return self.whole[rows]  # (B, C, H, W)
        c = self.crop
        if len(rows) == 0:  # this process's slice of a last, short global batch
            return torch.zeros(0, 3 if self.pictures[0].ndim == 3 else 1, c, c)
        out = []
        for i, (dy, dx) in zip(rows.tolist(), offsets.tolist(), strict=True):
            p = self.pictures[i]
            h, w = p.shape[:2]
            top, left = int(dy * max(0, h - c + 1)), int(dx * max(0, w - c + 1))
            piece = p[top : top + c, left : left + c].reshape(min(c, h), min(c, w), -1)
            t = torch.from_numpy(np.ascontiguousarray(piece)).permute(2, 0, 1).float() / 255  # (C, h', w')
            if t.shape[1] < c or t.shape[2] < c:  # an image smaller than the crop: replicate its edges
                t = F.pad(t[None], (0, c - t.shape[2], 0, c - t.shape[1]), mode="replicate")[0]
            out.append(t)
        return torch.stack(out)  # (B, C, crop, crop)
