"""Streaming batch inference for the verbs that apply a model to a file: read a chunk, apply, write, repeat.

The input is read through ``aekit.data.sources`` (a .npy is read with pread, tables in chunks, image
folders decoded as they come), the result goes to an incremental writer (``aekit.data.writers``), so
memory stays bounded by one chunk whatever the input's size. Chunks hold a whole number of the
estimators' prediction batches (``PREDICT_BATCH`` rows), so every row goes through the model in exactly
the batch it would meet in memory and the output is identical to applying the model to the whole array.

``--workers N`` farms the chunks out to N processes (each loads the model once); results are written in
input order, with at most two chunks per worker in flight. The engine behind ``aekit embed``, ``encode``,
``decode``, ``reconstruct`` and ``detect``; their options (``--chunk-rows``, ``--workers``) are
``aekit.cli.common.add_stream_options``.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from aekit.errors import DataError

# float32 bytes of model input per chunk: amortises the calls and bounds the memory. A run's peak is a few
# times this (the chunk, its scaled copy, the model's output and its conversion back; bench/streaming.py).
CHUNK_BYTES = 8 << 20
PREDICT_BATCH = 1024  # aekit.estimators.autoencoder.PREDICT_BATCH (not imported: that pulls in torch)
IN_FLIGHT_PER_WORKER = 2


def chunk_rows(sample_shape: tuple[int, ...], requested: int | None = None) -> int:
    """Rows per chunk: ``requested``, else whole prediction batches filling about CHUNK_BYTES of float32."""
    if requested:
        return requested
    row = 4 * max(1, math.prod(sample_shape))
    return max(1, CHUNK_BYTES // (row * PREDICT_BATCH)) * PREDICT_BATCH


# -- applying -----------------------------------------------------------------------------------------------


class Job:
    """What a worker does to a chunk: ``apply(model, chunk) -> {field: array}`` with the model at ``path``.

    Picklable by its recipe (the loader and apply functions are module-level names, the model a path), so
    a worker process loads the model itself; in this process the already loaded ``model`` is reused.
    """

    def __init__(self, load: Callable[[], Any], apply: Callable[[Any, Any], dict], model: Any = None) -> None:
        self.load, self.apply, self.model = load, apply, model

    def __call__(self, chunk) -> dict:
        if self.model is None:
            self.model = self.load()
        return self.apply(self.model, chunk)

    def __getstate__(self) -> dict:
        return {"load": self.load, "apply": self.apply, "model": None}


def _encode(est, x) -> dict:
    return {"x": est.transform(x)}  # (n, code size) float32; a VAE's posterior means


def _decode(est, z) -> dict:
    return {"x": est.inverse_transform(z)}


def _reconstruct(est, x) -> dict:
    return {"x": est.reconstruct(x)}


def _detect(det, x) -> dict:
    scores = det.decision_function(x)  # (n,) float64, higher = more anomalous
    return {"score": scores, "label": (scores > det.threshold_).astype("int64")}


APPLY: dict[str, Callable[[Any, Any], dict]] = {
    "embed": _encode,
    "encode": _encode,
    "decode": _decode,
    "reconstruct": _reconstruct,
    "detect": _detect,
}


def _load_autoencoder(path: str, device: str):
    from aekit import AutoEncoder

    return AutoEncoder.load(path, device=device)


def load_detector(
    path: str, device: str, contamination: float | None = None, percentile: float | None = None
):
    """An ``AnomalyDetector`` from ``path``, its threshold moved when either option is given. ``device`` is
    used as given: the front end checks it (``aekit.cli.common.check_device``) before the first load."""
    from aekit import AnomalyDetector

    det = AnomalyDetector.load(path, device=device)
    if contamination is not None or percentile is not None:
        det.set_threshold(contamination=contamination, percentile=percentile)
    return det


def _encode_typical(est, x) -> dict:
    codes, typical = est.transform(x, return_typicality=True)  # one pass gives both
    return {"x": codes, TYPICALITY: typical}


def _reconstruct_typical(est, x) -> dict:
    recon, typical = est.reconstruct(x, return_typicality=True)
    return {"x": recon, TYPICALITY: typical}


# The field of a result chunk that holds its aekit.typicality.Typicality: read by the verb (which says how
# typical the inputs were), never written to the output.
TYPICALITY = "typicality"
# The verbs whose results can carry their inputs' typicality, and the apply function that adds it.
APPLY_TYPICAL: dict[str, Callable[[Any, Any], dict]] = {
    "embed": _encode_typical,
    "encode": _encode_typical,
    "reconstruct": _reconstruct_typical,
}

LOADERS: dict[str, Callable[..., Any]] = {"detect": load_detector}  # the rest are autoencoder files


def apply_job(verb: str, path: str, device: str, model: Any, typicality: bool = False, **options: Any) -> Job:
    """The Job of ``verb`` for the model file at ``path``, already loaded here as ``model``; with
    ``typicality`` its results also hold the inputs' typicality (field TYPICALITY)."""
    import functools

    load = LOADERS.get(verb, _load_autoencoder)
    apply = APPLY_TYPICAL[verb] if typicality else APPLY[verb]
    return Job(functools.partial(load, path, device, **options), apply, model)


def check_suffix(out: Path) -> None:
    """Refuse an output suffix no incremental writer handles, before any work is done."""
    from aekit.data.writers import WRITERS

    if out.suffix.lower() not in WRITERS:
        raise DataError(
            f"cannot write {out}: aekit writes results to {', '.join(WRITERS)}; pick one of those suffixes"
        )


def ordered_map(job: Job, chunks: Iterable[Any], workers: int = 1) -> Iterator[tuple[int, dict]]:
    """(rows of the chunk, job(chunk)) for each chunk, in order; across ``workers`` processes when > 1."""
    if workers <= 1:
        for chunk in chunks:
            n, result = len(chunk), job(chunk)
            del chunk  # not held while the next one is read
            yield n, result
            del result
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from aekit.threads import usable_cores

    threads = max(1, usable_cores() // workers)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-flight
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(job, threads)
    ) as pool:
        pending: deque = deque()
        try:
            for chunk in chunks:
                pending.append((len(chunk), pool.submit(_worker_run, chunk)))
                while len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                    n, future = pending.popleft()
                    yield n, future.result()
            while pending:
                n, future = pending.popleft()
                yield n, future.result()
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise


_WORKER_JOB: Job | None = None
_WORKER_THREADS = 1


def _worker_init(job: Job, threads: int) -> None:
    global _WORKER_JOB, _WORKER_THREADS
    _WORKER_JOB, _WORKER_THREADS = job, threads


def _worker_run(chunk) -> dict:
    from aekit.threads import requested

    assert _WORKER_JOB is not None
    with requested(_WORKER_THREADS):  # N workers share the cores instead of each taking all of them
        return _WORKER_JOB(chunk)


# -- writing ------------------------------------------------------------------------------------------------


def write_stream(
    out: Path, results: Iterable[tuple[int, dict]], total: int, label: str, quiet: bool = False
) -> int:
    """Write each result chunk to ``out`` as it comes, with a progress bar over ``total`` input rows.

    Returns the rows written. Any error midway removes the partial output and leaves ``out`` untouched.
    """
    from aekit.data.writers import open_writer

    bar = Bar(label, total, enabled=not quiet)
    try:
        with open_writer(out) as writer:
            for consumed, fields in results:
                writer.write(fields)
                bar.advance(consumed)
    finally:
        bar.close()
    return writer.rows


class Bar:
    """A transient rich progress bar over input rows on stderr; only on a terminal, so logs stay clean."""

    def __init__(self, label: str, total: int, enabled: bool = True) -> None:
        self._bar = None
        if not (enabled and sys.stderr.isatty()):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeRemainingColumn(),
            transient=True,
            console=Console(file=sys.stderr),
        )
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
