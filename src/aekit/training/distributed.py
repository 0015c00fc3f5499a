"""Training in several processes with PyTorch's DistributedDataParallel, launched by torchrun.

torchrun gives every process RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
From them the trainer joins the process group (gloo for the CPU, nccl for CUDA GPUs: chosen from the
training device), takes the GPU of its LOCAL_RANK, and wraps the model in DDP, which averages the
gradients of every step over the processes. Without those variables everything runs in one process.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aekit.errors import ConfigError

# What torchrun sets in every process; a process with some of them but not all was not started by it.
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# The training device's type -> the collective backend that serves it.
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}
TORCHRUN = "torchrun --nproc-per-node N -m aekit train ..."


@dataclass(frozen=True)
class Launch:
    """Where this process stands: its rank among ``world`` processes and among those of its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch() -> Launch:
    """This process's place, read from torchrun's environment variables; one process when they are absent."""
    env = os.environ
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return Launch()
    missing = [name for name in LAUNCH_ENV if not env.get(name)]
    if missing:
        raise ConfigError(
            f"RANK/WORLD_SIZE are set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
            f"start distributed training with torchrun ({TORCHRUN}), or unset RANK and WORLD_SIZE to "
            "train in one process."
        )
    try:
        rank, world, local_rank = (int(env[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise ConfigError(
            f"RANK={env['RANK']!r}, WORLD_SIZE={env['WORLD_SIZE']!r}, LOCAL_RANK={env['LOCAL_RANK']!r} must "
            f"be whole numbers; let torchrun set them ({TORCHRUN})."
        ) from None
    if not (world >= 1 and 0 <= rank < world and 0 <= local_rank < max(local_world, 1)):
        raise ConfigError(
            f"RANK={rank} and LOCAL_RANK={local_rank} do not fit WORLD_SIZE={world} and "
            f"LOCAL_WORLD_SIZE={local_world}; let torchrun set them ({TORCHRUN})."
        )
    return Launch(rank, world, local_rank, local_world)


def is_main() -> bool:
    """Whether this process should write files and print: rank 0, or the only process. Never raises, so
    an error about a broken launch is still printed by someone."""
    try:
        return int(os.environ.get("RANK") or 0) == 0
    except ValueError:
        return True


def check_launch(device: str, batch_size: int) -> Launch:
    """This process's ``Launch``, after checking that the launch can train on ``device`` (a resolved
    device name: cpu, cuda, cuda:N, mps) with global batches of ``batch_size`` rows.

    Every check depends only on what all processes share (the command, the environment, the machine), so
    a bad launch fails the same way everywhere.
    """
    where = launch()
    if where.world == 1:
        return where
    kind = torch.device(device).type
    if kind not in BACKENDS:
        raise ConfigError(
            f"distributed training runs on CPUs (gloo) or CUDA GPUs (nccl), not on --device {device}; "
            "use --device cpu or cuda, or train in one process."
        )
    if kind == "cuda":
        if torch.device(device).index is not None:
            raise ConfigError(
                f"under torchrun give --device cuda (or auto), not {device}: each process takes the GPU "
                "of its LOCAL_RANK. Choose the GPUs with CUDA_VISIBLE_DEVICES."
            )
        gpus = torch.cuda.device_count()
        if where.local_world > gpus:
            raise ConfigError(
                f"torchrun started {where.local_world} processes on this machine but it has {gpus} CUDA "
                f"GPU(s): use --nproc-per-node {gpus} (one process per GPU), or --device cpu."
            )
    if batch_size < where.world:
        raise ConfigError(
            f"--batch-size {batch_size} is the global batch, shared by the {where.world} processes, and "
            f"each needs at least one row of it: use --batch-size {where.world} or more (or fewer processes)."
        )
    return where


@dataclass(frozen=True)
class Group:
    """The processes training together (one, unless launched by torchrun) and this one's device."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call in the training loop: DDP over ``model`` when there are several processes.
        DDP copies rank 0's weights to every process here, and averages gradients in every backward."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, values: Tensor) -> Tensor:
        """``values`` summed over the processes, in place (the same result in every process)."""
        if self.world > 1:
            torch.distributed.all_reduce(values)
        return values


def join(device: str, batch_size: int) -> Group:
    """Join torchrun's process group (once per process) and return it; a lone process gets a group of one.

    ``device``: the resolved training device. Under torchrun a CUDA device becomes cuda:LOCAL_RANK.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # a caller's own group, or an earlier fit's
        where = check_launch(device, batch_size)
        return Group(_own_device(device, where), dist.get_rank(), dist.get_world_size())
    where = check_launch(device, batch_size)
    if where.world == 1:
        return Group(torch.device(device))
    own = take_gpu(device, where)
    dist.init_process_group(backend=BACKENDS[own.type])
    atexit.register(leave)
    return Group(own, where.rank, where.world)


def leave() -> None:
    """Leave the process group, if this process is in one (at exit: torch warns about groups left open)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def take_gpu(device: str, where: Launch) -> torch.device:
    """This process's training device; under torchrun on CUDA, the GPU of its LOCAL_RANK, made current so
    that "cuda" means that GPU from here on. Call it before anything else touches CUDA, or every process
    opens a context on GPU 0 as well."""
    own = _own_device(device, where)
    if own.type == "cuda" and where.world > 1:
        torch.cuda.set_device(own)
    return own


def _own_device(device: str, where: Launch) -> torch.device:
    if torch.device(device).type == "cuda" and where.world > 1:
        return torch.device("cuda", where.local_rank)
    return torch.device(device)
