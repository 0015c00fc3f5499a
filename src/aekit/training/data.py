"""What the trainer reads: any ``TrainData``, and ``TensorData``, the fast path for data held in memory.

The trainer never indexes data itself. It asks for the batches of an epoch, in the order a seed gives,
and under torchrun for its own rank's share of each of them; so data in memory, memory-mapped files and
streamed tables (``aekit.data.lazy``) all train through the same loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class TrainData(Protocol):
    """Samples the trainer can draw batches from (already scaled for the model).

    ``batches`` yields float32 tensors of shape (b, *sample_shape), on the CPU or on the training device.
    seed None: the samples in order (validation, inference); else shuffled by that seed, the same order
    in every process. With ``world`` > 1 every *global* batch of ``batch_size`` rows is cut into ``world``
    near-equal slices (``torch.tensor_split``: the first ``rows % world`` slices one row longer) and rank
    r gets slice r, so the ranks together see exactly what one process with ``batch_size`` sees. Every
    rank yields the same number of batches, ceil(len / batch_size); a slice of a last, short global batch
    may have 0 rows, and is still yielded (the trainer keeps the processes in step on it).
    """

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1
    ) -> Iterator[Tensor]: ...


class TensorData:
    """A tensor in memory: one gather per epoch, then every batch is a view (no per-batch copy)."""

    def __init__(self, x: Tensor):
        self.x = x  # (N, *sample_shape), scaled

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> TensorData:
        """The same samples on ``device``, moved once rather than batch by batch."""
        return TensorData(self.x.to(device))

    def batches(self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1) -> Iterator[Tensor]:
        x = self.x
        if seed is not None:
            # A generator of our own: the caller's global random state is left alone, and every rank
            # draws the same permutation from the same seed.
            generator = torch.Generator(device=x.device)
            generator.manual_seed(seed)
            x = x[torch.randperm(len(x), generator=generator, device=x.device)]  # one gather per epoch
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]  # (B, *sample_shape), a view
            yield batch if world == 1 else torch.tensor_split(batch, world)[rank]


def as_train_data(data: Tensor | TrainData, device: torch.device) -> TrainData:
    """Tensors become ``TensorData`` on ``device``; anything else must follow the ``TrainData`` protocol."""
    if isinstance(data, Tensor):
        return TensorData(data.to(device))
    if isinstance(data, TensorData):
        return data.to(device)
    if not isinstance(data, TrainData):
        raise TypeError(
            f"the trainer takes a torch Tensor or an object with __len__ and batches(batch_size, seed, "
            f"rank, world) (aekit.training.data.TrainData); got {type(data).__name__}."
        )
    return data
