"""How many threads torch's CPU kernels get for a job: one for small work, more only where they pay.

torch's default is one thread per core for every operation, whatever its size. A step of a small model is
hundreds of tiny operations, and each parallel one waits for all of its threads: on a machine whose
cores other processes are using, one of them is often descheduled, and the rest wait for it. The issue
that brought this in measured ``aekit train --task detect`` on ODDS cardio at 499 s with the default
threads and 11.4 s with one. So each job picks its own count from its work per step (``choose``), sets
it for as long as it runs and gives the caller's setting back afterwards (``for_work``).

Order of precedence: an explicit ``n_jobs`` (estimators), then ``requested`` (the CLI's ``--threads``),
then the ``OMP_NUM_THREADS`` the user set, then the work. Only the standard library at module level, so
the CLI can import it without importing torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import os
from collections.abc import Callable, Iterator
from typing import Any

from aekit.errors import ConfigError

# Multiply-adds per step (rows in a batch x one forward pass over one row) that each thread needs before
# another one pays for itself: 2 threads from twice this, 3 from three times, up to the usable cores.
# Measured by bench/threads.py sweep (bench/results/threads_sweep.md): training steps at 1 vs 2 threads on
# this project's 2-core machine, which others share. Quiet, a second thread breaks even at about 2e7 and
# gains 1.3-1.7x from 7e7 to 5e9 (1.9x at 1.7e10). With one core busy elsewhere it never pays: 3-5x slower
# below 1e8, 1.6-2.7x up to 6e8, 1.4x at 4.5e9 (the cardio run, on a busier machine: 44x). So
# the line is not where the quiet machine breaks even but where the best case outweighs the worst: below
# 2e9 a second thread gains at most 1.6x and risks several times that, which is how small jobs crawled.
WORK_PER_THREAD = 1_000_000_000

_REQUESTED: contextvars.ContextVar[int | None] = contextvars.ContextVar("aekit_threads", default=None)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's share), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def resolve(n_jobs: Any) -> int | None:
    """``n_jobs`` as a thread count, scikit-learn's way: None stays None (choose from the work), -1 is
    every usable core, -2 all but one, and so on; a positive number is that many, as given."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ConfigError(
            f"n_jobs={n_jobs!r} is not a thread count; give None (chosen from the size of the job), "
            f"-1 (all {usable_cores()} usable cores) or a whole number >= 1."
        )
    n_jobs = int(n_jobs)
    return n_jobs if n_jobs > 0 else max(1, usable_cores() + 1 + n_jobs)


def omp_threads() -> int | None:
    """The thread count the user set in OMP_NUM_THREADS, or None when it is unset or not a count.

    OpenMP reads "4" and also "4,2" (per nesting level: the first is ours); like OpenMP and torch, a value
    it cannot read is ignored rather than refused, since it may be meant for some other program.
    """
    text = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose(work: float, n_jobs: int | None = None) -> int:
    """Threads for a job of ``work`` multiply-adds per step: ``n_jobs`` when given, else what
    ``requested`` or OMP_NUM_THREADS asks for, else one per ``WORK_PER_THREAD``, within the usable cores."""
    explicit = _explicit(n_jobs)
    return explicit if explicit is not None else max(1, min(usable_cores(), int(work // WORK_PER_THREAD)))


def _explicit(n_jobs: int | None) -> int | None:
    n = resolve(n_jobs)
    return n if n is not None else _REQUESTED.get() or omp_threads()


@contextlib.contextmanager
def using(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block; the caller's count is restored after."""
    import torch

    before = torch.get_num_threads()
    if n != before:  # resizing the pool is not free: leave it be when it already fits
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def for_work(work: Callable[[], float], n_jobs: int | None = None, device: Any = "cpu") -> Iterator[None]:
    """Run the block on ``choose(work(), n_jobs)`` threads when it runs on the CPU; on a GPU, as it is.

    ``work`` is called only when the count is left to the work (``n_jobs`` and every request unset).
    """
    if str(device).split(":")[0] != "cpu":
        yield
        return
    explicit = _explicit(n_jobs)
    with using(explicit if explicit is not None else choose(work())):
        yield


@contextlib.contextmanager
def requested(n_jobs: int | None) -> Iterator[None]:
    """Inside the block torch runs on ``n_jobs`` threads (resolved as ``resolve`` does), and so does every
    job that is not given its own ``n_jobs``; None changes nothing. The CLI's ``--threads`` and the demo."""
    n = resolve(n_jobs)
    if n is None:
        yield
        return
    token = _REQUESTED.set(n)
    try:
        with using(n):
            yield
    finally:
        _REQUESTED.reset(token)


def macs_per_row(model: Any, sample_shape: tuple[int, ...], *args: Any) -> int:
    """Multiply-adds of ``model(x, *args)`` for one sample of ``sample_shape``: those of its linear and
    convolution layers, which hold nearly all of any aekit network's arithmetic.

    Counted in one pass over a zero sample, with gradients off, in eval mode (so no batch statistics
    move) and the global random streams forked (so no draw is spent): the model and the caller see no
    change. A pass over one row costs a fraction of a training step.
    """
    import torch
    from torch import nn

    transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    convolutions = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    total = 0

    def count(module: nn.Module, inputs: tuple, out: Any) -> None:
        nonlocal total
        if isinstance(module, transposed):  # every input position meets every weight
            total += module.weight.numel() * (inputs[0][0].numel() // module.in_channels)
        elif isinstance(module, convolutions):  # every output position does
            total += module.weight.numel() * (out[0].numel() // module.out_channels)
        elif isinstance(module, nn.Linear):  # once per row (per position for (B, ..., features) inputs)
            total += module.weight.numel() * (out[0].numel() // module.out_features)

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    modes = {module: module.training for module in model.modules()}
    hooks = [module.register_forward_hook(count) for module in modes]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            model(torch.zeros((1, *sample_shape), device=device), *args)
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training
    return total
