"""``aekit sample`` (new samples and latent traversals from a VAE) and ``aekit interpolate`` (a path between
the codes of two inputs, for any autoencoder). Outputs: a PNG grid, or an array file (.npy, .npz, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.common import (
    add_device_option,
    add_key_option,
    check_output,
    grid_zoom,
    load_estimator,
    non_negative_int,
    positive_float,
    positive_int,
    read_samples,
)
from aekit.errors import ConfigError, DataError

VERBS = ("sample", "interpolate")
GRID_GAP = 2  # pixels between tiles
GRID_BACKGROUND = 128


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="draw new samples (or a latent traversal) from a VAE",
        description="Decode codes drawn from a VAE's prior N(0, I): a grid of new samples or, with "
        "--traverse DIM, one row per drawn code and one column per value of code dimension DIM "
        "(from -RANGE to +RANGE prior standard deviations). What is shown is the likelihood's mean "
        "(pixel probabilities for a Bernoulli VAE).",
    )
    p.add_argument("model", help="a VAE model file (kind vae) written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "-n", type=positive_int, default=64, help="samples, or traversal rows (default: %(default)s)"
    )
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="OUT",
        help=".png for a grid of images (image models); .npy or .npz for the array: (n, *sample shape), "
        "or (n, steps, *sample shape) with --traverse",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the drawn codes (default: 0)")
    p.add_argument("--traverse", type=non_negative_int, metavar="DIM", help="code dimension to sweep")
    p.add_argument(
        "--range",
        type=positive_float,
        default=3.0,
        dest="value_range",
        metavar="R",
        help="traversal values run from -R to +R (default: 3)",
    )
    p.add_argument("--steps", type=positive_int, default=7, help="traversal columns (default: 7)")
    p.add_argument("--cols", type=positive_int, default=8, help="columns of a sample grid (default: 8)")
    add_device_option(p)

    p = subparsers.add_parser(
        "interpolate",
        help="decode a path between the codes of two inputs",
        description="Encode two inputs, walk from one code to the other in --steps steps (straight, "
        "or along the great circle with --method slerp) and decode each step. Give two files holding "
        "one sample each (e.g. two PNG images), or one data file and --index I J. Works for every "
        "kind of autoencoder.",
    )
    p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="two one-sample files, or one data file with --index"
    )
    p.add_argument(
        "--index", type=non_negative_int, nargs=2, metavar=("I", "J"), help="samples I and J of the file"
    )
    add_key_option(p)
    p.add_argument(
        "--steps", type=positive_int, default=8, help="decoded steps, both ends included (default: 8)"
    )
    p.add_argument("--method", choices=("linear", "slerp"), default="linear", help="(default: linear)")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="OUT",
        help=".png for one row: input, the decoded steps, input (image models); .npy/.npz/.csv/.parquet "
        "for the decoded steps, (steps, *sample shape)",
    )
    add_device_option(p)


def run(args: argparse.Namespace) -> int:
    return {"sample": _sample, "interpolate": _interpolate}[args.command](args)


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    out = check_output(args.out, args.model)
    est = load_estimator(args.model, args.device)
    grid = _wants_grid(out, est)
    if args.traverse is None:
        result = est.sample(args.n, random_state=args.seed)  # (n, *shape)
        what = f"{args.n} samples"
        rows = [result[i : i + args.cols] for i in range(0, len(result), args.cols)]
    else:
        values = np.linspace(-args.value_range, args.value_range, args.steps)
        result = est.traverse(None, dim=args.traverse, values=values, n=args.n, random_state=args.seed)
        what = f"a traversal of code dimension {args.traverse}: {args.n} rows x {args.steps} values"
        rows = list(result)
    if grid:
        _write_grid(out, rows, stretch=_stretch(est))
    else:
        _write_array(out, result)
    print(f"wrote {out}: {what}" + ("" if grid else f", array of shape {result.shape}, {result.dtype}"))
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    import numpy as np

    out = check_output(args.out, args.model, *args.inputs)
    if args.steps < 2:
        raise ConfigError(
            f"--steps {args.steps}: a path needs at least 2 steps (its two ends); try --steps 8"
        )
    est = load_estimator(args.model, args.device)
    grid = _wants_grid(out, est)
    a, b = _two_inputs(args, est.spec_)
    result = est.interpolate(a, b, steps=args.steps, method=args.method)  # (steps, *shape)
    if grid:
        row = np.concatenate([a.astype(result.dtype), result, b.astype(result.dtype)])
        _write_grid(out, [row], stretch=_stretch(est), inputs_at_ends=True)
    else:
        _write_array(out, result)
    print(f"wrote {out}: {args.steps} steps ({args.method}), array of shape {result.shape}, {result.dtype}")
    return 0


def _two_inputs(args: argparse.Namespace, spec):
    """The two samples to join, each (1, *sample shape), from two files or from one file and --index."""
    if len(args.inputs) == 2 and args.index is None:
        pair = [_read(path, args.key, spec) for path in args.inputs]
        for path, x in zip(args.inputs, pair, strict=True):
            if len(x) != 1:
                raise DataError(
                    f"{path} holds {len(x)} samples; give one sample per file, or one data file and "
                    "--index I J to pick two of its samples"
                )
        return pair
    if len(args.inputs) == 1 and args.index is not None:
        x = _read(args.inputs[0], args.key, spec)
        for i in args.index:
            if i >= len(x):
                raise DataError(
                    f"--index {i} is out of range: {args.inputs[0]} holds {len(x)} samples, "
                    f"numbered 0 to {len(x) - 1}"
                )
        return [x[i : i + 1] for i in args.index]
    raise ConfigError(
        f"interpolate needs two one-sample files, or one data file and --index I J; got {len(args.inputs)} "
        f"input(s){' and --index' if args.index is not None else ''}"
    )


def _read(path: str, key: str | None, spec):
    x = read_samples(path, spec, key=key)
    if tuple(x.shape[1:]) != tuple(spec.sample_shape):
        raise DataError(
            f"{path} holds an array of shape {tuple(x.shape)}, but the model takes samples of shape "
            f"{tuple(spec.sample_shape)}; give one such sample per file, or a data file of them"
        )
    return x


def _wants_grid(out: Path, est) -> bool:
    if out.suffix.lower() != ".png":
        return False
    if not est.spec_.is_image:
        raise DataError(
            f"a PNG grid shows images, but this model was trained on tables of {est.spec_.n_features} "
            "features; use -o with .npy or .npz"
        )
    return True


def _stretch(est) -> bool:
    """Only 8-bit pixels (scaled by 1/255 in training) are shown as they are; other data is stretched."""
    return est.spec_.scaling != "divide255"


def _write_array(out: Path, array) -> None:
    from aekit.data import write_array

    if array.ndim > 2 and out.suffix.lower() in (".csv", ".parquet"):
        raise DataError(
            f"{out.suffix} holds tables, and this result has shape {array.shape}; use -o with .npy or .npz"
        )
    write_array(out, array)


def _write_grid(path: Path, rows, stretch: bool, inputs_at_ends: bool = False) -> None:
    """Rows of images (each (n, H, W) or (n, H, W, C), as the model outputs them) tiled into one PNG;
    small images are enlarged by a whole factor (``grid_zoom``).

    ``stretch`` maps the values' range to 0..255 (for data that is not 8-bit pixels). With
    ``inputs_at_ends`` the first and last tile of each row are set apart by a wider gap: the inputs.
    """
    import numpy as np
    from PIL import Image

    from aekit.atomic import atomic_path

    stacked = np.concatenate([np.asarray(r, np.float32) for r in rows])
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    if stacked.shape[-1] != 3:  # grey, or channels that are not RGB: show their mean
        stacked = stacked.mean(axis=-1, keepdims=True)
    low, high = float(stacked.min()), float(stacked.max())
    if stretch:
        scale = 255.0 / max(high - low, 1e-12)
    else:
        low, scale = 0.0, 1.0
    _, h, w, c = stacked.shape
    zoom = grid_zoom(h, w)
    h, w = zoom * h, zoom * w
    n_cols = max(len(r) for r in rows)
    extra = 2 * GRID_GAP if inputs_at_ends else 0
    canvas = np.full(
        (len(rows) * (h + GRID_GAP) + GRID_GAP, n_cols * (w + GRID_GAP) + GRID_GAP + 2 * extra, c),
        GRID_BACKGROUND,
        np.uint8,
    )
    for r, row in enumerate(rows):
        for i, tile in enumerate(np.asarray(row, np.float32)):
            tile = tile[..., None] if tile.ndim == 2 else tile
            tile = tile if tile.shape[-1] == c else tile.mean(axis=-1, keepdims=True)
            tile = tile.repeat(zoom, axis=0).repeat(zoom, axis=1)  # (h, w, c), whole pixels
            shift = extra * (i > 0) + extra * (i == len(row) - 1) if inputs_at_ends else 0
            top, left = GRID_GAP + r * (h + GRID_GAP), GRID_GAP + i * (w + GRID_GAP) + shift
            canvas[top : top + h, left : left + w] = np.clip(np.rint((tile - low) * scale), 0, 255)
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
