"""Training data larger than memory: ``LazyData`` reads, shuffles and scales batches from a ``Source``.

It implements the trainer's data protocol (``aekit.training.data.TrainData``): ``len`` and
``batches(batch_size, seed, rank, world)``. Shuffling is by blocks so reads stay sequential: the rows are
cut into blocks of contiguous rows, the blocks are visited in a random order, and the rows of a window of
several blocks are shuffled among themselves. Only one window (of the rows this rank needs) is in memory
at a time, and each batch is scaled on its own. ``streaming_spec`` fits the data scaling in one chunked
pass, and ``memory_budget``/``fits_in_memory`` decide when the data is small enough not to bother.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from aekit.data.scaling import (
    IQR_TO_STD,
    DataSpec,
    check_scaling,
    check_series_shape,
    choose_scaling,
    spec_dtype,
)
from aekit.data.sources import Source
from aekit.errors import ConfigError, DataError

BLOCK_BYTES = 1 << 20  # contiguous rows read at a time: large enough for sequential reads to be fast
WINDOW_BYTES = 64 << 20  # rows shuffled together (per process): the memory a training window holds
STATS_CHUNK_BYTES = 16 << 20  # float64 bytes per chunk of the statistics pass
ROBUST_SAMPLE = 200_000  # rows sampled for the quantiles of scaling="robust" (see streaming_spec)
BUDGET_ENV = "AEKIT_MEMORY_BUDGET_MB"


# ------------------------------------------------------------------------------------- memory budget


def memory_budget() -> int:
    """Bytes that data may take in memory: $AEKIT_MEMORY_BUDGET_MB, else a quarter of the available RAM
    (or of this process's memory limit, RLIMIT_DATA / RLIMIT_AS, when that is lower).

    A quarter leaves room for the model, the optimizer, the libraries and other programs.
    """
    text = os.environ.get(BUDGET_ENV)
    if text is not None:
        try:
            mb = float(text)
        except ValueError:
            mb = -1.0
        if not mb >= 0:
            raise ConfigError(f"{BUDGET_ENV}={text!r} must be a number of megabytes >= 0, e.g. 2048")
        return int(mb * (1 << 20))
    return min(_available_memory(), _process_limit()) // 4


def _process_limit() -> int:
    """The lowest soft limit on this process's memory (setrlimit, ulimit -d / -v); huge when none."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 1 << 62
    limits = [resource.getrlimit(r)[0] for r in (resource.RLIMIT_DATA, resource.RLIMIT_AS)]
    return min([limit for limit in limits if limit != resource.RLIM_INFINITY] or [1 << 62])


def _available_memory() -> int:
    try:  # Linux: MemAvailable counts the page cache the kernel can drop, unlike MemFree
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - neither Linux nor POSIX sysconf
        return 4 << 30


def working_bytes() -> int:
    """Bytes of data to hold at a time when reading lazily: an eighth of the budget, 1 to 64 MB."""
    return min(WINDOW_BYTES, max(1 << 20, memory_budget() // 8))


def in_memory_bytes(source: Source) -> int:
    """What training in memory costs in data: the raw rows, the float32 scaled copy and the train/val
    gather of it (the fast path's ``spec.to_model`` and ``_split``)."""
    scaled = len(source) * int(np.prod(source.sample_shape, dtype=np.int64)) * 4
    return source.nbytes + 2 * scaled


def fits_in_memory(source: Source) -> bool:
    return in_memory_bytes(source) <= memory_budget()


# ----------------------------------------------------------------------------------- streaming scaling


def streaming_spec(source: Source, scaling: str, loss: str, series: bool = False) -> DataSpec:
    """The ``DataSpec`` that ``fit_spec`` would choose for all of ``source``, from one chunked pass.

    Means and variances are merged chunk by chunk (Chan et al.'s pairwise update, float64), so they match
    the in-memory statistics to rounding. scaling="robust" needs quantiles, which have no exact one-pass
    form in bounded memory: they come from ROBUST_SAMPLE rows drawn uniformly (seed 0), read in one pass.
    """
    check_scaling(scaling)
    _check_source(source)
    dtype = spec_dtype(source.dtype)
    shape = tuple(int(s) for s in source.sample_shape)
    if series:
        check_series_shape(shape)
    if dtype == "uint8" and scaling == "auto":  # no per-feature statistics: uint8 is finite and bounded
        spec = DataSpec(shape, dtype, "divide255", series=series)
        lo, hi = 255, 0  # the range alone, which new data is checked against (aekit.data.scaling.conform)
        for x in source.iter_chunks(max(1, STATS_CHUNK_BYTES // max(1, source.row_bytes))):
            lo, hi = min(lo, int(x.min())), max(hi, int(x.max()))
        spec.low, spec.high = float(lo), float(hi)
        return spec
    stats = _Stats(int(np.prod(shape)))
    chunk = max(1, STATS_CHUNK_BYTES // (8 * stats.features))
    for start, x in _enumerate_chunks(source, chunk):
        stats.add(x.reshape(len(x), -1), start, source.name)
    lo, hi = float(stats.low.min()), float(stats.high.max())
    scaling = choose_scaling(scaling, loss, dtype, lo, hi)
    spec = DataSpec(shape, dtype, scaling, series=series)
    std = np.sqrt(stats.m2 / stats.n)
    if scaling == "standard":
        spec.offset = stats.mean.tolist()
        spec.scale = np.where(std > 1e-12, std, 1.0).tolist()
    elif scaling == "robust":
        rows = np.random.default_rng(0).choice(len(source), min(len(source), ROBUST_SAMPLE), replace=False)
        sample = source.read(np.sort(rows)).reshape(len(rows), -1)
        q1, median, q3 = np.percentile(sample, [25, 50, 75], axis=0).astype(np.float64)
        iqr = (q3 - q1) / IQR_TO_STD
        spec.offset = median.tolist()
        spec.scale = np.where(iqr > 1e-12, iqr, np.where(std > 1e-12, std, 1.0)).tolist()
    elif scaling == "minmax":
        spread = stats.high - stats.low
        spec.offset = stats.low.tolist()
        spec.scale = np.where(spread > 1e-12, spread, 1.0).tolist()
    spec.unit_range = scaling == "none" and lo >= 0 and hi <= 1
    spec.low, spec.high = lo, hi
    return spec


class _Stats:
    """Per-feature count, mean, sum of squared deviations (M2), minimum and maximum, merged by chunk."""

    def __init__(self, features: int):
        self.features, self.n = features, 0
        self.mean = np.zeros(features)
        self.m2 = np.zeros(features)
        self.low = np.full(features, np.inf)
        self.high = np.full(features, -np.inf)

    def add(self, x: np.ndarray, first_row: int, name: str) -> None:
        x = x.astype(np.float64, copy=False)  # (k, D)
        if not np.isfinite(x).all():
            row = first_row + int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise DataError(f"{name} contains NaN or inf (the first in row {row}); remove or impute them")
        k = len(x)
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        total = self.n + k
        delta = mean - self.mean
        self.mean += delta * (k / total)
        self.m2 += m2 + delta**2 * (self.n * k / total)
        self.n = total
        np.minimum(self.low, x.min(axis=0), out=self.low)
        np.maximum(self.high, x.max(axis=0), out=self.high)


def _enumerate_chunks(source: Source, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    start = 0
    for chunk in source.iter_chunks(rows):
        yield start, chunk
        start += len(chunk)


def _check_source(source: Source) -> None:
    """What ``check_array`` checks of an array, for the parts a source knows without reading it."""
    if not 1 <= len(source.sample_shape) <= 3:
        raise DataError(
            f"{source.name} must be 2-D (N, D) for tables or 3-D/4-D (N, H, W[, C]) for images; "
            f"got shape {source.shape}. Re-save it with that layout."
        )
    if len(source) == 0 or int(np.prod(source.sample_shape)) == 0:
        raise DataError(f"{source.name} has no data (shape {source.shape}); give at least one sample")


# --------------------------------------------------------------------------------------------- LazyData


class LazyData:
    """Scaled batches read on demand from ``source`` (rows ``rows`` of it, sorted; default all).

    ``block_rows`` and ``window_rows`` default to about BLOCK_BYTES and ``window_bytes`` of raw rows.
    """

    def __init__(
        self,
        source: Source,
        spec: DataSpec,
        rows: np.ndarray | None = None,
        block_rows: int | None = None,
        window_bytes: int = WINDOW_BYTES,
    ):
        if not source.random_access:
            raise DataError(
                f"{source.name} can only be read from its start (it is compressed), so it cannot be "
                "shuffled for training without holding it in memory. Save it uncompressed for lazy "
                "reading: np.save('data.npy', x) (or np.savez), or raise AEKIT_MEMORY_BUDGET_MB to "
                "train on it in memory."
            )
        self.source, self.spec = source, spec
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        row_bytes = max(1, source.row_bytes)
        self.block_rows = int(block_rows or max(1, BLOCK_BYTES // row_bytes))
        self.window_blocks = max(1, int(window_bytes) // (self.block_rows * row_bytes))

    def __len__(self) -> int:
        return len(self.source) if self.rows is None else len(self.rows)

    def split(self, fraction: float, seed: int) -> tuple[LazyData, LazyData | None]:
        """(train, validation) parts: the same rows as the in-memory split under the same seed (the same
        torch permutation picks them), each kept in file order so reads stay sequential."""
        import torch

        n = len(self)
        n_val = int(round(n * fraction))
        if n_val < 1 or n - n_val < 1:
            return self, None
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        mine = np.arange(n) if self.rows is None else self.rows
        return self._subset(np.sort(mine[order[n_val:]])), self._subset(np.sort(mine[order[:n_val]]))

    def _subset(self, rows: np.ndarray) -> LazyData:
        part = LazyData.__new__(LazyData)
        part.__dict__.update(self.__dict__)
        part.rows = rows
        return part

    # -- batches ---------------------------------------------------------------------------------------
    def batches(self, batch_size: int, seed: int | None, rank: int = 0, world: int = 1) -> Iterator:
        """Scaled float32 CPU tensors (b, *input_shape); see ``aekit.training.data.TrainData``."""
        if not 0 <= rank < world:
            raise ConfigError(f"rank {rank} is not in [0, world={world})")
        pending = np.empty(0, np.int64)
        for window in self._windows(seed):
            pending = np.concatenate([pending, window])
            full = len(pending) // batch_size * batch_size
            if full:
                yield from self._read_batches(pending[:full].reshape(-1, batch_size), rank, world)
                pending = pending[full:]
        if len(pending):
            yield from self._read_batches(pending[None], rank, world)

    def _windows(self, seed: int | None) -> Iterator[np.ndarray]:
        """Positions 0..len-1 a window at a time: in order, or block-shuffled by ``seed``."""
        n, size = len(self), self.block_rows
        window = size * self.window_blocks
        if seed is None:
            for start in range(0, n, window):
                yield np.arange(start, min(n, start + window), dtype=np.int64)
            return
        rng = np.random.default_rng(seed)
        blocks = rng.permutation(-(-n // size))
        for w in range(0, len(blocks), self.window_blocks):
            positions = (blocks[w : w + self.window_blocks, None] * size + np.arange(size)).ravel()
            positions = positions[positions < n]  # the last block may be short
            rng.shuffle(positions)
            yield positions

    def _read_batches(self, batches: np.ndarray, rank: int, world: int) -> Iterator:
        """Global batches (k, b) of positions -> this rank's slice of each, read in one pass, scaled."""
        import torch

        b = batches.shape[1]
        lo, hi = _slice(b, rank, world)
        mine = batches[:, lo:hi]  # (k, hi - lo)
        rows = mine.ravel() if self.rows is None else self.rows[mine.ravel()]
        order = np.argsort(rows, kind="stable")
        data = self.source.read(rows[order])  # in file order: one sequential pass over the window's blocks
        where = np.empty_like(order)
        where[order] = np.arange(len(order))  # where each wanted row landed in data
        width = hi - lo
        for i in range(len(mine)):
            raw = data[where[i * width : (i + 1) * width]]  # (width, *sample_shape): one gather per batch
            yield torch.from_numpy(self.spec.to_model(raw))  # (width, *input_shape)

    def __repr__(self) -> str:
        return f"LazyData({self.source!r}, rows={len(self)})"


def _slice(b: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s share of a global batch of ``b`` rows: near-equal parts in rank order, the first
    b % world ranks one row larger (numpy's array_split)."""
    base, extra = divmod(b, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)
