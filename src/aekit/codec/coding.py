"""Entropy coding through constriction: blocks of symbols, each under its own per-symbol distributions.

One item is one range-coder stream: the latent symbols first, then (lossless or near-lossless) the pixel
groups, so an item pays the coder's end-of-stream cost once. The coder emits whole 32-bit words; ``finish``
then drops the trailing bytes the decoder does not need (it reads missing bytes as zeros), checking by
decoding that every symbol still comes back: exact, and about 2 bytes per item saved on average.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

from aekit.errors import DataError

# constriction is one native module: its submodules are attributes, not importable packages
Categorical = constriction.stream.model.Categorical
QuantizedGaussian = constriction.stream.model.QuantizedGaussian
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder

# One model object serves every block: with the probabilities given per call, constriction quantises each
# row to fixed point the same way at both ends (perfect=False is its fast, deterministic quantiser).
_MODEL = Categorical(perfect=False)
# Never try to cut more than this many bytes: a range coder's end costs at most one or two words.
_MAX_CUT = 8
# Trimming re-decodes the stream for each byte cut; above this size the 1-2 bytes are not worth it.
TRIM_BELOW = 4096
# constriction's categorical models hold probabilities as integers out of 2**PRECISION, and its quantiser
# is leaky: every symbol of an alphabet of L keeps at least 1, so the likeliest has at most 2**24 - (L - 1)
# and no symbol is free. That floor on the cost of a symbol bounds how short an honest payload can be.
PRECISION = 24


def fixed_model(pmf: np.ndarray):
    """A constriction model for i.i.d. symbols under one pmf (L,): one latent channel's table."""
    pmf = np.ascontiguousarray(pmf, dtype=np.float64)
    if pmf.size == 1:
        # A channel the training switched off keeps all its mass on one value; constriction refuses a
        # one-symbol alphabet, so a second, never-used symbol of probability 0 goes beside it.
        pmf = np.append(pmf, 0.0)
    return Categorical(pmf, perfect=False)


def gaussian_model(bound: int):
    """A constriction quantized Gaussian over the integers -bound..bound, mean 0, its scale given per symbol
    (the hyperprior's residuals: ``aekit.codec.priors``). Cached: one object serves every call."""
    model = _GAUSSIANS.get(bound)
    if model is None:
        model = _GAUSSIANS[bound] = QuantizedGaussian(-bound, bound, 0.0)
    return model


_GAUSSIANS: dict[int, object] = {}


def least_bits(pmfs: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """The fewest bits the coder can spend on one symbol coded under each row of ``pmfs`` (R, L): (R,).

    Rows are as ``fixed_model`` and ``encode`` take them (``lengths``: how many leading entries of each row
    are its alphabet; default all). The quantiser gives a symbol of probability p at most
    p * (2**24 - L) / sum + 2 (two floors) of the 2**24, and never more than 2**24 - (L - 1); one more
    for float rounding keeps the result a lower bound.
    """
    pmfs = np.atleast_2d(np.asarray(pmfs, np.float64))
    alphabet = np.full(len(pmfs), pmfs.shape[1]) if lengths is None else np.asarray(lengths)
    alphabet = np.maximum(alphabet, 2)  # fixed_model codes a one-value channel with two symbols
    inside = np.arange(pmfs.shape[1]) < alphabet[:, None]
    rows = np.where(inside, np.maximum(pmfs, 0.0), 0.0)
    total = 2.0**PRECISION
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.nan_to_num(rows.max(axis=1) * (total - alphabet) / rows.sum(axis=1), nan=total)
    likeliest = np.minimum(total - alphabet + 1, share + 3)
    return np.log2(total / likeliest)


def alphabet_bits(alphabet: int) -> float:
    """The fewest bits the coder can spend on a symbol of an alphabet of this size, whatever its row."""
    return float(np.log2(2.0**PRECISION / (2.0**PRECISION - max(alphabet, 2) + 1)))


def least_payload(bits: float) -> int:
    """The fewest bytes ``StreamEncoder.finish`` returns for symbols that cost at least ``bits`` in all.

    The range coder keeps a 64-bit range of at least 2**32 and writes one 32-bit word each time the range
    has narrowed by 32 bits more, then one or two words when sealed: 4 * ceil(bits / 32) >= bits / 8 bytes
    in all, of which ``finish`` cuts at most _MAX_CUT. A shorter payload cannot be the encoder's.
    """
    return max(0, math.floor(bits * (1 - 1e-9) / 8) - _MAX_CUT)


def _as_block(symbols: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.ascontiguousarray(np.asarray(symbols).reshape(-1), dtype=np.int32)
    p = np.ascontiguousarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != s.size:
        raise ValueError(f"need one probability row per symbol; got {s.size} symbols, rows {p.shape}")
    return s, p


def _words(data: bytes) -> np.ndarray:
    data = data + bytes(-len(data) % 4)
    return np.frombuffer(data, dtype=">u4").astype(np.uint32)


class StreamEncoder:
    """Collect blocks of symbols, each coded under its rows of probabilities; ``finish()`` gives the bytes."""

    def __init__(self) -> None:
        self._encoder = RangeEncoder()
        self._blocks: list[tuple[np.ndarray, np.ndarray]] | None = []

    def encode(self, symbols: np.ndarray, probabilities: np.ndarray) -> None:
        """symbols (n,) ints in [0, L), probabilities (n, L) non-negative (rows need not sum to 1)."""
        s, p = _as_block(symbols, probabilities)
        if s.size == 0:
            return
        self._encoder.encode(s, _MODEL, p)
        self._keep((s, p))

    def encode_iid(self, symbols: np.ndarray, model) -> None:
        """symbols (n,) all under one ``fixed_model``: no per-symbol rows, much faster for big latents."""
        s = np.ascontiguousarray(np.asarray(symbols).reshape(-1), dtype=np.int32)
        if s.size == 0:
            return
        self._encoder.encode(s, model)
        self._keep((s, model))

    def encode_gaussian(self, symbols: np.ndarray, model, scales: np.ndarray) -> None:
        """symbols (n,) integers under ``gaussian_model``, each with its own scale (n,) float64."""
        s = np.ascontiguousarray(np.asarray(symbols).reshape(-1), dtype=np.int32)
        if s.size == 0:
            return
        scales = np.ascontiguousarray(scales, dtype=np.float64)
        self._encoder.encode(s, model, scales)
        self._keep((s, (model, scales)))

    def _keep(self, block: tuple) -> None:
        """Keep what ``finish`` re-decodes to trim the stream, until it is too long to be trimmed: then the
        probability rows go (a large image's would otherwise all stay in memory until the end)."""
        if self._blocks is not None:
            self._blocks.append(block)
            # the seal may take back one word of the count: past this, finish() keeps the stream whole
            if 4 * (self._encoder.num_words() - 1) >= TRIM_BELOW:
                self._blocks = None

    def finish(self) -> bytes:
        """The shortest byte string that still decodes to every symbol encoded (streams under 4 KB)."""
        full = self._encoder.get_compressed().astype(">u4").tobytes()
        if len(full) >= TRIM_BELOW or self._blocks is None:  # (None only ever with long streams)
            return full
        best = full
        for cut in range(1, min(_MAX_CUT, len(full)) + 1):
            candidate = full[: len(full) - cut]
            if not self._decodes(candidate):
                break
            best = candidate
        return best

    def _decodes(self, data: bytes) -> bool:
        try:
            decoder = RangeDecoder(_words(data))
            return all(np.array_equal(_decode(decoder, s.size, p), s) for s, p in self._blocks)
        except Exception:  # constriction raises on streams that run dry: that cut is too deep
            return False


def _decode(decoder, n: int, rows_or_model) -> np.ndarray:
    if isinstance(rows_or_model, np.ndarray):
        return decoder.decode(_MODEL, rows_or_model)
    if isinstance(rows_or_model, tuple):  # (gaussian model, scales)
        return decoder.decode(*rows_or_model)
    return decoder.decode(rows_or_model, n)


class StreamDecoder:
    """Decode blocks in the order they were encoded, each under the same probability rows."""

    def __init__(self, data: bytes, what: str = "item") -> None:
        self._what = what
        try:
            self._decoder = RangeDecoder(_words(bytes(data)))
        except Exception as exc:
            raise DataError(f"{what} is not a valid coded stream ({exc}).") from None

    def decode(self, probabilities: np.ndarray, alphabet: int | None = None) -> np.ndarray:
        """The next len(probabilities) symbols (int64). A damaged stream gives DataError, never a crash."""
        p = np.ascontiguousarray(probabilities, dtype=np.float64)
        if p.shape[0] == 0:
            return np.zeros(0, np.int64)
        return self._run(self._decoder.decode, _MODEL, p)

    def decode_iid(self, model, n: int) -> np.ndarray:
        """The next n symbols, all under one ``fixed_model`` (int64)."""
        if n == 0:
            return np.zeros(0, np.int64)
        return self._run(self._decoder.decode, model, n)

    def decode_gaussian(self, model, scales: np.ndarray) -> np.ndarray:
        """The next len(scales) symbols, each under ``gaussian_model`` with its scale (int64)."""
        if len(scales) == 0:
            return np.zeros(0, np.int64)
        return self._run(self._decoder.decode, model, np.ascontiguousarray(scales, dtype=np.float64))

    def _run(self, fn, *args) -> np.ndarray:
        try:
            return np.asarray(fn(*args), dtype=np.int64)
        except Exception as exc:
            raise DataError(
                f"{self._what} could not be decoded: its coded bytes are damaged ({exc})."
            ) from None
