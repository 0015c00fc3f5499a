"""What decoding one item may cost: no more than its file can honestly ask for.

An item declares its image size in a few bytes, so a decoder that took the size on trust could be made
to allocate tens of GB, or to run for minutes, by a file of 70 bytes. Three checks stand in the way, each
made from the declared size and mode before anything is decoded (docs/codec.md, "Limits"):

- size: at most MAX_PIXELS pixels once padded to the stride, since the network runs on the padded image;
- payload: no symbol is free to the range coder (``aekit.codec.coding.least_bits``), so an item of a given
  size and mode has a least number of coded bytes, and a shorter payload cannot be the encoder's;
- memory: the decoder's peak memory, estimated from the padded size and mode, must fit the budget. The
  latent-only (lossy) synthesis runs in tiles, so only the pixel-coded modes, whose arithmetic must stay
  exactly the encoder's, ever come near it.
"""

from __future__ import annotations

import os

from aekit.codec.network import CodecNetConfig
from aekit.codec.pixels import CHUNK
from aekit.errors import DataError

# The largest image coded in one piece, counted after padding: 4096 x 4096.
MAX_PIXELS = 1 << 24
# The lossy synthesis of a padded image larger than this runs in tiles of TILE_SIDE x TILE_SIDE pixels
# (plus a margin that covers the transposed convolutions' reach); smaller images run whole, as always.
TILE_PIXELS = 1 << 20
TILE_SIDE = 1024
# Bytes per padded pixel and per coding-batch place of each part of the decoder (float32 activations),
# read off the code paths and checked against measured peaks (docs/codec.md): an over-estimate by design.
# per latent symbol: decoded int64, stacked, indices, float32 values; a hyperprior adds the mean, the
# scale, its table index (int64) and the float64 scale handed to the coder
LATENT_BYTES = 56
WORKING_BYTES = 64 << 20  # whatever the size: the allocator's arenas, the libraries' scratch space (measured)


def padded_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """The size the network works on: height and width rounded up to multiples of the stride."""
    return height + -height % stride, width + -width % stride


def check_size(height: int, width: int, stride: int, what: str) -> None:
    hp, wp = padded_size(height, width, stride)
    if hp * wp > MAX_PIXELS:
        padded = f", which the stride {stride} pads to {hp} x {wp}" if (hp, wp) != (height, width) else ""
        raise DataError(
            f"{what} is {height} x {width} pixels{padded} = {hp * wp:,}, more than the {MAX_PIXELS:,} "
            "pixels this codec codes in one piece; cut the image into tiles of at most 4096 x 4096 and "
            "compress those"
        )


def halo(config: CodecNetConfig) -> int:
    """Latent positions of margin a synthesis tile needs. A transposed convolution of kernel k reaches
    (k // 2) / 2 positions of its input around an output, plus one of rounding; each stage's input is
    twice as fine as the one before, so in latent units the stages add up to less than twice the first's
    reach: k // 2 + 2 (tests/test_codec.py checks tiles against one pass for kernels 3, 5 and 7)."""
    return config.kernel // 2 + 2


def decode_memory(config: CodecNetConfig, hp: int, wp: int, places: int, items: int, bins: int) -> int:
    """Bytes the decoder holds at its peak for a coding batch of ``places`` (``items`` of them real) of
    padded size hp x wp, coded with pixel bins of width ``bins`` (0: the latent alone)."""
    c, m = config.channels, config.latent
    f = config.stage_widths()[0] if config.stages > 1 else config.latent  # the synthesis features' channels
    pixels = hp * wp
    latent = places * pixels * m // config.stride**2 * LATENT_BYTES
    synthesis = 4 * (6 * f // 4 + 4 * c)  # per pixel: a few copies of the features at half size, x_hat
    if not bins:
        if pixels > TILE_PIXELS:
            side = TILE_SIDE + 2 * halo(config) * config.stride
            pixels_at_once = min(pixels, side * side)
        else:
            pixels_at_once = pixels
        return WORKING_BYTES + latent + items * (pixels * c + pixels_at_once * synthesis)
    k, width = config.pixel_mixtures, config.pixel_width
    head = 4 * ((2 * f + c) + (4 * width + 9 * k * c + 2 * c + 4))  # prepare's inputs, then one group's pass
    # the probability rows are made and coded a chunk at a time (pixels.value_pmf_blocks): float64 rows
    # and the (CHUNK, K, n_bins) float32 mixture terms behind them
    rows = CHUNK * -(-256 // bins) * (4 * k + 16)
    return WORKING_BYTES + latent + places * pixels * (synthesis + head + 8 * c) + rows


def memory_budget() -> int:
    """Bytes the codec may hold at once: $AEKIT_MEMORY_BUDGET_MB (the knob aekit's data loading reads too),
    else half the available memory, or of this process's limit (RLIMIT_DATA / RLIMIT_AS) when lower."""
    from aekit.data.lazy import BUDGET_ENV
    from aekit.data.lazy import memory_budget as data_budget

    # the data budget is a quarter of what is available: room for the model and the libraries beside the
    # data; decoding's estimate counts everything it allocates, so it may take half
    return data_budget() if os.environ.get(BUDGET_ENV) is not None else 2 * data_budget()


def check_memory(need: int, what: str, hint: str = "") -> None:
    """Refuse work whose estimated peak memory ``need`` exceeds the budget, naming both."""
    from aekit.data.lazy import BUDGET_ENV

    budget = memory_budget()
    if need > budget:
        source = (
            f"set by {BUDGET_ENV}"
            if os.environ.get(BUDGET_ENV) is not None
            else f"half the available memory; set {BUDGET_ENV} to change it"
        )
        raise DataError(
            f"{what} takes about {_size(need)} of memory at its peak, more than the budget of "
            f"{_size(budget)} ({source}){hint}"
        )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(1, round(n / 2**20))} MB"
