"""The coding passes at both ends of ``ImageCodec``: images -> coded bytes, and coded bytes -> images.

The estimator (``aekit.codec.codec``) checks its arguments, the items and the memory a batch needs; what
is here runs the network and the range coder. Everything a decoder runs on (the latent, then the pixel
groups) is computed by one code path (``pixels``), on one thread, over the same coding batch at both ends,
so the encoder and the decoder see bit-identical probabilities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aekit import threads
from aekit.codec import limits
from aekit.codec.coding import StreamDecoder, StreamEncoder
from aekit.codec.network import CodecNet
from aekit.codec.pixels import GROUPS, bin_values, group_map, subpixel_params, value_pmf_blocks
from aekit.codec.refine import refine_latent


def encode_payloads(
    net: CodecNet, x: Tensor, arrs: list[np.ndarray], level: int, bins: int, size: int, refine: int = 0
) -> list[bytes]:
    """Images of one shape (``arrs``; ``x`` (n, C, Hp, Wp) their padded batch) -> each one's coded bytes.

    ``level`` and ``bins`` are the mode (``ImageCodec._mode``), ``size`` the coding batch the decoder will
    run them in (the pixel passes fill it alike), ``refine`` the latent refinement's steps.
    """
    n = len(arrs)
    # the encoder alone decides the symbols: neither the analysis nor the refinement has to match
    # anything at the decoder (so they may use every thread)
    with torch.no_grad():
        y = net.analysis(x) * net.gain(level)  # (n, M, hp, wp)
    if refine:
        y = refine_latent(net, x, y, level, refine, arrs[0].shape[:2])
    with torch.no_grad(), _one_thread():
        encoders = [StreamEncoder() for _ in range(n)]
        latent = net.prior.encode(y, level, encoders, size)  # (size, M, hp, wp): the decoder's latent
        if bins:
            # the pixel passes must match the decoder's: the full batch, spare places filled alike
            values = np.ascontiguousarray(np.stack(arrs).reshape(n, *arrs[0].shape[:2], -1))
            io = _Encoding(encoders, torch.from_numpy(values).permute(0, 3, 1, 2))  # (n, C, H, W)
            pixels(net, latent, level, bins, arrs[0].shape[:2], io)
    return [enc.finish() for enc in encoders]


def decode_images(
    net: CodecNet,
    payloads: list[bytes],
    labels: list[str],
    level: int,
    bins: int,
    size: tuple[int, int],
    batch: int,
    channels: int,
) -> np.ndarray:
    """Coded bytes of items of one shape and mode (already checked) -> their images (n, h, w, C) uint8.

    ``size`` is the images' (h, w), ``batch`` the coding batch they were coded in, ``labels`` name the items
    in messages.
    """
    h, w = size
    stride = net.stride
    hp, wp = limits.padded_size(h, w, stride)
    shape = (batch, net.config.latent, hp // stride, wp // stride)
    decoders = [StreamDecoder(payload, label) for payload, label in zip(payloads, labels, strict=True)]
    with torch.no_grad():
        with _one_thread():  # everything the coder's probabilities come from must match the encoder's
            latent = net.prior.decode(decoders, level, shape)  # (B, M, hp, wp)
            if bins:
                coded = pixels(net, latent, level, bins, size, _Decoding(decoders))  # (n, C, H, W) int64
                return coded.numpy().astype(np.uint8).transpose(0, 2, 3, 1)
        # latent only: nothing left to match, so only the real items run, on every thread
        return synthesize(net, latent[: len(payloads)], level, h, w, channels)


def synthesize(net: CodecNet, latent: Tensor, level: int, h: int, w: int, channels: int) -> np.ndarray:
    """The lossy images (n, h, w, C) uint8 from their latents (n, M, hl, wl).

    A padded image above TILE_PIXELS runs in tiles with a margin of latent positions all round (the
    transposed convolutions' reach), so memory stays bounded whatever the size; smaller ones run whole.
    Nothing here has to match the encoder, so tiles may round differently from one whole pass.
    """
    s = net.stride
    n, _, hl, wl = latent.shape
    if hl * wl * s * s <= limits.TILE_PIXELS:
        x_hat, _ = net.synthesis(latent.contiguous(), level)  # (n, C, Hp, Wp)
        return _to_uint8(x_hat[:, :, :h, :w]).transpose(0, 2, 3, 1)
    out = np.empty((n, h, w, channels), np.uint8)
    side, margin = max(1, limits.TILE_SIDE // s), limits.halo(net.config)
    for top in range(0, hl, side):
        for left in range(0, wl, side):
            r0, c0 = max(0, top - margin), max(0, left - margin)
            tile = latent[:, :, r0 : top + side + margin, c0 : left + side + margin].contiguous()
            x_hat, _ = net.synthesis(tile, level)  # (n, C, rows * s, cols * s)
            rows, cols = min(side * s, h - top * s), min(side * s, w - left * s)
            y, x = (top - r0) * s, (left - c0) * s
            block = _to_uint8(x_hat[:, :, y : y + rows, x : x + cols]).transpose(0, 2, 3, 1)
            out[:, top * s : top * s + rows, left * s : left * s + cols] = block
    return out


def pixels(net: CodecNet, latent: Tensor, level: int, bins: int, size: tuple[int, int], io: Any) -> Tensor:
    """Code (or decode) the pixels group by group under the pixel head: the one path both ends run.

    ``latent`` (B, M, h, w) is the decoded latent of a whole coding batch (its unused places hold the
    same filler at both ends). Pixels outside the image (the padding) are never coded: they stay
    unknown (zero, known=0) at both ends. Returns the pixels (n, C, H, W) int64 of the n real items.
    """
    k = net.config.pixel_mixtures
    latent = latent.contiguous()  # the same memory layout at both ends: see EntropyBottleneck.values
    table = None if bins == 1 else bin_values(bins, net.config.value_histogram)
    x_hat, features = net.synthesis(latent, level)  # (B, C, Hp, Wp), (B, F, Hp/2, Wp/2)
    b, c, hp, wp = x_hat.shape
    n = io.count
    width = torch.full((b,), float(bins))
    h, w = size
    inside = torch.zeros(hp, wp, dtype=torch.bool)
    inside[:h, :w] = True
    gmap = group_map(hp, wp)
    context = torch.zeros(b, c, hp, wp)
    pixels = torch.zeros(n, c, hp, wp, dtype=torch.int64)
    base = net.pixel_head.prepare(x_hat, features)  # (B, width, Hp, Wp): shared by the four groups
    for g in range(GROUPS):
        known = ((gmap < g) & inside).float().view(1, 1, hp, wp).expand(b, 1, hp, wp)
        where = (gmap == g) & inside
        target = where.float().view(1, 1, hp, wp).expand(b, 1, hp, wp)
        params = net.pixel_head.step(base, x_hat, context, known, target, width)  # (B, C, 3K, Hp, Wp)
        rows = subpixel_params(params, k, where)  # (B * C * P, 3K): item-major
        per_item = len(rows) // b
        # the real items' probability rows, a chunk at a time (the spare places' are never needed)
        blocks = value_pmf_blocks(rows, k, bins, stop=n * per_item)
        # (n, C * P): the values themselves, or bin indices mapped to the values they decode to
        symbols = io.code(blocks, per_item, where, None if bins == 1 else bins)
        values = symbols if bins == 1 else table[symbols]
        values = torch.from_numpy(np.asarray(values, np.int64)).view(n, c, -1)
        pixels[:, :, where] = values
        context[:n, :, where] = values.float() / 255
    return pixels[:, :, :h, :w]


def _one_thread() -> contextlib.AbstractContextManager[None]:
    """Run the coding passes on one thread, then restore the caller's setting.

    The probabilities the decoder rebuilds must match the encoder's to the last bit; a fixed thread count
    keeps the order of every floating-point sum fixed whatever the machine's core count (and for the
    small per-item passes one thread is also much faster than waking a pool).
    """
    return threads.using(1)


class _Encoding:
    """The encoder's side of ``pixels``: it codes the pixels it knows and returns what the decoder sees."""

    def __init__(self, encoders: list[StreamEncoder], values: Tensor):
        self.encoders, self.values = encoders, values  # values (n, C, H, W) uint8
        self.count = len(encoders)

    def code(self, blocks: Iterable, per_item: int, where: Tensor, bins: int | None) -> np.ndarray:
        """Probability rows (first row, rows (r, L)) in order over the items' C * P rows each -> the symbols
        coded, (n, C * P)."""
        h, w = self.values.shape[-2:]
        v = self.values[:, :, where[:h, :w]].to(torch.int64).reshape(self.count, -1).numpy()  # (n, C * P)
        symbols = v if bins is None else v // bins
        flat = symbols.reshape(-1)
        for start, block in blocks:
            for k, lo, hi in _spans(start, len(block), per_item, self.count):
                self.encoders[k].encode(flat[lo:hi], block[lo - start : hi - start])
        return symbols


class _Decoding:
    def __init__(self, decoders: list[StreamDecoder]):
        self.decoders = decoders
        self.count = len(decoders)

    def code(self, blocks: Iterable, per_item: int, where: Tensor, bins: int | None) -> np.ndarray:
        out = np.empty(self.count * per_item, np.int64)
        for start, block in blocks:
            for k, lo, hi in _spans(start, len(block), per_item, self.count):
                out[lo:hi] = self.decoders[k].decode(block[lo - start : hi - start])
        return out.reshape(self.count, per_item)


def _spans(start: int, length: int, per_item: int, count: int) -> Iterator[tuple[int, int, int]]:
    """(item, first row, end row) of each of the ``count`` items' share of rows [start, start + length),
    item k owning rows [k * per_item, (k + 1) * per_item)."""
    lo, end = start, min(start + length, count * per_item)
    while lo < end:
        k = lo // per_item
        hi = min(end, (k + 1) * per_item)
        yield k, lo, hi
        lo = hi


def _to_uint8(x: Tensor) -> np.ndarray:
    return torch.round(x.clamp(0, 1) * 255).to(torch.uint8).numpy()
