"""``aekit encode`` / ``decode`` / ``reconstruct``: apply a saved model to the data in a file.

Inputs are anything ``aekit.data.read_array`` reads; outputs go through ``write_array`` (.npy, .npz, .csv,
.parquet), or for ``reconstruct`` to a PNG grid of inputs over reconstructions. Every output is written
atomically, and never over the model or the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.common import add_device_option, check_output, load_estimator, read_samples
from aekit.errors import DataError

VERBS = ("encode", "decode", "reconstruct")
GRID_IMAGES = 32  # at most this many inputs in a PNG grid
GRID_GAP = 2  # pixels between tiles
GRID_BACKGROUND = 128

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
        p.add_argument(
            "--key", help="which array to read from a .npz holding several (default: x, x_test, x_train)"
        )
        add_device_option(p)


def run(args: argparse.Namespace) -> int:
    from aekit.data import read_array, write_array

    out = check_output(args.out, args.input, args.model)
    grid = out.suffix.lower() == ".png"
    if grid and args.command != "reconstruct":
        raise DataError(
            f"'aekit {args.command}' writes arrays, not images; use -o with .npy, .npz, .csv or .parquet"
        )
    est = load_estimator(args.model, args.device)
    if grid and not est.spec_.is_image:
        raise DataError(
            f"a PNG grid shows images, but {args.model} was trained on tables of "
            f"{est.spec_.n_features} features; "
            "use -o with .npy, .npz, .csv or .parquet"
        )
    if args.command == "decode":
        codes = read_array(args.input, key=args.key)
        result = est.inverse_transform(codes[None] if codes.shape == (est.code_size,) else codes)
    else:
        x = read_samples(args.input, est.spec_, key=args.key)
        result = est.transform(x) if args.command == "encode" else est.reconstruct(x)
    if grid:
        n = _write_grid(out, x, result)
        print(f"wrote {out}: {n} inputs (top) over their reconstructions (bottom)")
        return 0
    write_array(out, result)
    print(f"wrote {out}: array of shape {result.shape}, {result.dtype}")
    return 0


def _write_grid(path: Path, inputs, recons) -> int:
    """One PNG: a row of the first inputs over a row of their reconstructions; returns how many."""
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
    _, _, h, w, c = tiles.shape
    canvas = np.full((2 * h + 3 * GRID_GAP, n * w + (n + 1) * GRID_GAP, c), GRID_BACKGROUND, np.uint8)
    for row in range(2):
        for i in range(n):
            top, left = GRID_GAP + row * (h + GRID_GAP), GRID_GAP + i * (w + GRID_GAP)
            canvas[top : top + h, left : left + w] = tiles[row, i]
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return n
