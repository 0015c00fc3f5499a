"""A series detector's per-step scores for a series read chunk by chunk, equal to ``decision_function``.

Windows cross chunk boundaries: the last ``window - 1`` steps (more with a stride) are kept and joined to
the next chunk, so every window is scored exactly once. Windows are scored in blocks that start at a
multiple of the prediction batch, so each goes through the models in the batch it meets in memory. The
per-step spread (``windows.spread_scores``: a difference array summed cumulatively) is continued from
chunk to chunk with its running sums carried over, adding the same numbers in the same order, so the
scores are the in-memory ones to the last bit. Memory: one chunk plus one block of windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from aekit.errors import DataError
from aekit.estimators.autoencoder import PREDICT_BATCH


def series_scores(
    detector: Any,
    chunks: Iterable[np.ndarray],
    n_steps: int,
    block: int,
    read_steps: Callable[[int, int], np.ndarray] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(steps read, scores of the steps now final) per chunk of the (T,) or (T, D) series, in order.

    ``n_steps`` is the series length T; ``block`` (a multiple of PREDICT_BATCH) windows are scored at a time.
    With a stride longer than the window, steps between windows take the last window's score (as in
    memory), so the last batch of windows is scored first, from ``read_steps(start, stop)``.
    """
    size, stride = int(detector.window), int(detector.stride)
    if block % PREDICT_BATCH:
        raise ValueError(f"block must be a multiple of {PREDICT_BATCH}; got {block}")
    if n_steps < size:
        raise DataError(
            f"the series has {n_steps} time steps, fewer than the window of {size}; "
            f"give a longer series or a window of at most {n_steps}."
        )
    n_windows = (n_steps - size) // stride + 1
    spread = _Spread(size, stride, n_steps)
    if stride > size:
        if read_steps is None:
            raise ValueError(
                "a stride longer than the window needs read_steps to score the last windows first"
            )
        a = (n_windows - 1) // PREDICT_BATCH * PREDICT_BATCH  # the last batch, as it is batched in memory
        rows, _ = detector._rows(read_steps(a * stride, (n_windows - 1) * stride + size))
        spread.gap = float(detector._combine(rows, None)[-1])
    buffer, first_step, next_window = None, 0, 0  # buffer holds steps first_step, first_step + 1, ...

    def score(stop: int) -> None:
        nonlocal next_window
        a, b = next_window, stop
        local = buffer[a * stride - first_step : (b - 1) * stride + size - first_step]
        rows, _ = detector._rows(local)  # (b - a, window * D), strided views
        spread.add(a, detector._combine(rows, None))
        next_window = b

    for chunk in chunks:
        chunk = np.asarray(chunk)
        buffer = chunk if buffer is None else np.concatenate([buffer, chunk])
        ready = max(0, (first_step + len(buffer) - size) // stride + 1)  # windows wholly read
        while ready - next_window >= block:
            score(next_window + block)
        keep = next_window * stride - first_step  # steps before the next window's start are done with
        buffer, first_step = buffer[keep:], first_step + keep
        yield len(chunk), spread.emit(next_window * stride)
    if buffer is None or first_step + len(buffer) != n_steps:
        raise DataError(f"the series ended after {first_step + (0 if buffer is None else len(buffer))} steps")
    while next_window < n_windows:
        score(min(next_window + block, n_windows))
    yield 0, spread.emit(n_steps)


class _Spread:
    """``spread_scores`` continued chunk by chunk: the same difference array, the same cumulative sums."""

    def __init__(self, size: int, stride: int, n_steps: int) -> None:
        self.size, self.stride, self.n_steps = size, stride, n_steps
        self.scores = np.zeros(0)  # window scores still needed, from window self.first on
        self.first = 0
        self.done = 0  # steps emitted
        self.total, self.count = 0.0, 0.0  # the cumulative sums at step done - 1
        self.last = np.nan  # the latest window's score: what the steps after the last window take
        self.gap: float | None = None  # the last window's score, set up front where windows leave gaps

    def add(self, first_window: int, scores: np.ndarray) -> None:
        assert first_window == self.first + len(self.scores)
        self.scores = np.concatenate([self.scores, np.asarray(scores, dtype=np.float64)])
        if len(scores):
            self.last = float(self.scores[-1])

    def emit(self, stop: int) -> np.ndarray:
        """Scores of steps done..stop-1, which no window not yet added covers."""
        start = self.done
        if stop <= start:
            return np.zeros(0)
        starts = (self.first + np.arange(len(self.scores))) * self.stride  # (n,)
        total, count = np.zeros(stop - start), np.zeros(stop - start)
        # The same order as spread_scores: every window's +score at its start, then its -score past its end.
        on = (starts >= start) & (starts < stop)
        np.add.at(total, starts[on] - start, self.scores[on])
        np.add.at(count, starts[on] - start, 1.0)
        ends = starts + self.size
        on = (ends >= start) & (ends < stop)
        np.add.at(total, ends[on] - start, -self.scores[on])
        np.add.at(count, ends[on] - start, -1.0)
        total = np.cumsum(np.concatenate([[self.total], total]))[1:]  # carried on from the last chunk
        count = np.cumsum(np.concatenate([[self.count], count]))[1:]
        self.total, self.count, self.done = float(total[-1]), float(count[-1]), stop
        covered = count > 0.5
        out = np.full(stop - start, self.last if self.gap is None else self.gap)
        out[covered] = total[covered] / count[covered]
        # windows ending before stop have given everything they give to later steps
        keep = np.flatnonzero(ends >= stop)
        drop = int(keep[0]) if len(keep) else len(self.scores)
        self.scores, self.first = self.scores[drop:], self.first + drop
        return out
