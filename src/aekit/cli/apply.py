"""``aekit encode`` / ``decode`` / ``reconstruct``: apply a saved model to the data in a file.

Inputs are anything ``aekit.data.read_array`` reads, streamed chunk by chunk (``aekit.streaming``);
outputs are written as they come (.npy, .npz, .csv, .parquet), or for ``reconstruct`` to a PNG grid of
inputs over reconstructions. Every output is written atomically, and never over the model or the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.common import (
    add_device_option,
    add_key_option,
    add_stream_options,
    check_output,
    grid_zoom,
    load_estimator,
)
from aekit.cli.typicality import Watch, add_strict_option
from aekit.errors import DataError
from aekit.streaming import apply_job, check_suffix

VERBS = ("encode", "decode", "reconstruct")
TYPICAL_VERBS = ("encode", "reconstruct")  # those that see samples: they say how typical each one is
GRID_IMAGES = 32  # at most this many inputs in a PNG grid
GRID_GAP = 2  # pixels between tiles
GRID_BACKGROUND = 128
_DOING = {"encode": "encoding", "decode": "decoding", "reconstruct": "reconstructing"}  # progress bar labels

_HELP = {
    "encode": (
        "encode samples to codes",
        "samples: .npy/.npz/.csv/.parquet, a PNG/JPEG image or a folder of them",
        "codes file (N, code size): .npy, .npz, .csv or .parquet",
    ),
    "decode": (
        "decode codes back to samples",
        "codes (N, code size), e.g. written by 'aekit encode'",
        "samples file: .npy, .npz, .csv or .parquet",
    ),
    "reconstruct": (
        "encode and decode samples in one pass",
        "samples: .npy/.npz/.csv/.parquet, a PNG/JPEG image or a folder of them",
        "reconstructions: .npy, .npz, .csv or .parquet; or .png for a grid of up to 32 inputs (top) "
        "over their reconstructions (bottom), for image models",
    ),
}


def add_parser(subparsers) -> None:
    for verb, (summary, input_help, out_help) in _HELP.items():
        p = subparsers.add_parser(
            verb,
            help=summary,
            description=summary[0].upper() + summary[1:] + " with a model "
            "file. Outputs keep the training data's layout, value range and dtype.",
        )
        p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
        p.add_argument("input", help=input_help)
        p.add_argument("-o", "--out", required=True, metavar="OUT", help=out_help)
        add_key_option(p)
        add_device_option(p)
        add_stream_options(p)
        if verb in TYPICAL_VERBS:
            add_strict_option(p)


def run(args: argparse.Namespace) -> int:
    from aekit.cli.common import open_input
    from aekit.streaming import chunk_rows, ordered_map, write_stream

    out = check_output(args.out, args.input, args.model)
    grid = out.suffix.lower() == ".png"
    if grid and args.command != "reconstruct":
        raise DataError(
            f"'aekit {args.command}' writes arrays, not images; use -o with .npy, .npz, .csv or .parquet"
        )
    if not grid:
        check_suffix(out)
    est = load_estimator(args.model, args.device)
    if grid and not est.spec_.is_image:
        raise DataError(
            f"a PNG grid shows images, but {args.model} was trained on tables of "
            f"{est.spec_.n_features} features; "
            "use -o with .npy, .npz, .csv or .parquet"
        )
    typical = args.command in TYPICAL_VERBS
    watch = Watch(est, args.model, args.strict) if typical else None
    one = (est.code_size_,) if args.command == "decode" else est.spec_.sample_shape
    source = open_input(args.input, args.key, one)
    rows = chunk_rows(source.sample_shape, args.chunk_rows)
    if grid:  # only the first images are shown: reconstruct the first chunk, batched as in a full run
        x = next(source.iter_chunks(rows))
        fields = apply_job("reconstruct", args.model, args.device, est, typicality=watch.stored)(x)
        [(_, fields)] = list(watch.results([(len(x), fields)]))  # --strict refuses here: no picture
        n, zoom = _write_grid(out, x, fields["x"])
        enlarged = f", enlarged {zoom}x" if zoom > 1 else ""
        print(f"wrote {out}: {n} inputs (top) over their reconstructions (bottom){enlarged}")
        watch.report()
        return 0
    job = apply_job(args.command, args.model, args.device, est, typicality=typical and watch.stored)
    results = ordered_map(job, source.iter_chunks(rows), args.workers)
    if watch is not None:
        results = watch.results(results)
    n = write_stream(out, results, len(source), _DOING[args.command], args.quiet)
    shape, dtype = _result_layout(est, args.command)
    print(f"wrote {out}: array of shape {(n, *shape)}, {dtype}")
    if watch is not None:
        watch.report()
    return 0


def _result_layout(est, verb: str) -> tuple[tuple[int, ...], str]:
    """One result row's shape and dtype: codes for encode, the training data's layout otherwise."""
    if verb == "encode":
        return (est.code_size_,), "float32"
    return tuple(est.spec_.sample_shape), est.spec_.dtype


def _write_grid(path: Path, inputs, recons) -> tuple[int, int]:
    """One PNG: a row of the first inputs over a row of their reconstructions, small images enlarged;
    returns how many, and the enlargement."""
    import numpy as np
    from PIL import Image

    from aekit.atomic import atomic_path

    n = min(GRID_IMAGES, len(inputs))
    tiles = np.stack([inputs[:n], recons[:n]]).astype(np.float32)  # (2, n, H, W[, C])
    if tiles.ndim == 4:
        tiles = tiles[..., None]
    if tiles.shape[-1] != 3:  # grey, or channels that are not RGB: show their mean
        tiles = tiles.mean(axis=-1, keepdims=True)
    if inputs.dtype != np.uint8:  # stretch the inputs' value range to 0..255, the same for both rows
        low, high = float(tiles[0].min()), float(tiles[0].max())
        tiles = np.clip((tiles - low) / max(high - low, 1e-12), 0.0, 1.0) * 255.0
    tiles = np.rint(tiles).astype(np.uint8)
    zoom = grid_zoom(*tiles.shape[2:4])
    tiles = tiles.repeat(zoom, axis=2).repeat(zoom, axis=3)  # (2, n, zoom * H, zoom * W, C)
    _, _, h, w, c = tiles.shape
    canvas = np.full((2 * h + 3 * GRID_GAP, n * w + (n + 1) * GRID_GAP, c), GRID_BACKGROUND, np.uint8)
    for row in range(2):
        for i in range(n):
            top, left = GRID_GAP + row * (h + GRID_GAP), GRID_GAP + i * (w + GRID_GAP)
            canvas[top : top + h, left : left + w] = tiles[row, i]
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return n, zoom
