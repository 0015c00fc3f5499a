"""Helpers the verb modules share: option types, devices, reading inputs, guarding outputs, notes.

Only the standard library at module level: anything heavy is imported inside the function that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aekit.errors import ConfigError, DataError

# -- option types (argparse turns their ArgumentTypeError into a one-line usage error) -------------------


def _whole_number(minimum: int):
    """An option type for whole numbers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = _whole_number(1)
non_negative_int = _whole_number(0)


def epochs_or_auto(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def sizes(text: str) -> tuple[int, ...]:
    """'256,128' -> (256, 128)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes >= 1 such as 256,128, got {text!r}")
    return values


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """--device, and --threads with it: every verb that runs a model takes both."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="cpu, cuda, cuda:N, mps, or auto: the first of cuda, mps, cpu that is present (default: auto)",
    )
    add_threads_option(parser)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """--threads N: main() runs the verb under ``aekit.threads.requested(N)``."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for the model's arithmetic (default: OMP_NUM_THREADS when set, else chosen from "
        "the model's size: one for small models, which more threads only slow down)",
    )


def check_device(device: str) -> str:
    """The device name, checked against what this machine has, before any model is moved there."""
    import torch

    if device == "auto":
        return device
    try:
        kind, index = torch.device(device).type, torch.device(device).index
    except RuntimeError:
        raise ConfigError(
            f"--device {device!r} is not a device name; use cpu, cuda, cuda:N, mps or auto."
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device!r}: no CUDA GPU is available here (torch {torch.__version__}); "
            "use --device cpu."
        )
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0."
        )
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and not (mps is not None and mps.is_available()):
        raise ConfigError(f"--device {device!r}: Apple's MPS is not available here; use --device cpu.")
    return device


# -- files ------------------------------------------------------------------------------------------------


def load_estimator(path: str, device: str):
    """An ``AutoEncoder`` read from ``path``; a missing or damaged file is one ModelFileError."""
    from aekit import AutoEncoder

    return AutoEncoder.load(path, device=check_device(device))


def read_samples(path: str, spec, key: str | None = None):
    """The array in ``path`` (any file ``aekit.data.read_array`` reads); one sample gains a batch axis.

    A single PNG, or a 1-D row, has exactly the shape of one training sample: treat it as a batch of one.
    """
    from aekit.data import read_array

    x = read_array(path, key=key)
    if tuple(x.shape) == tuple(spec.sample_shape):
        x = x[None]
    return x


def check_output(out: str, *inputs: str, option: str = "-o") -> Path:
    """Refuse an output that would replace one of the inputs or that is a folder; return it as a Path."""
    target = Path(out).expanduser()
    if target.is_dir():
        raise DataError(f"{option} {out} is a folder; give a file name in it instead")
    for source in inputs:
        if source and _same_file(target, Path(source).expanduser()):
            raise DataError(
                f"refusing to overwrite the input file {source} with the output; give another {option} path"
            )
    check_writable(target, option)
    return target


def check_writable(target: Path, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written (checked again when written)."""
    folder = target.parent
    while not folder.exists() and folder != folder.parent:  # the folders to be made: the first that exists
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"{option} {target}: {folder} is a file, so nothing can be written under it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(
            f"{option} {target}: the folder {folder} is not writable (read-only, or owned by someone "
            "else); give a path in a folder you can write to"
        )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def fit_settings(args: argparse.Namespace, device: str, run_dir: Path) -> dict[str, Any]:
    """The training options every ``aekit train`` task passes to its estimator under the same names.

    --lr is passed only when given, so each estimator keeps its own default (they differ: restoration
    networks diverge at the autoencoders' 6e-3).
    """
    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "validation_fraction": args.validation_fraction,
        "patience": args.patience or None,
        "random_state": args.seed,
        "device": device,
        "verbose": 0 if args.quiet else 1,
        "run_dir": run_dir,
        "resume": args.resume,
    }
    if args.lr is not None:
        settings["lr"] = args.lr
    return settings


def training_split(source: str) -> Any:
    """The training samples of a data set name or path (``aekit.data.load``)."""
    from aekit.data import load

    ds = load(source)
    if ds.x_train is None or len(ds.x_train) == 0:
        raise DataError(f"data set {ds.name!r} has no training samples; give data with an x_train part")
    return ds.x_train


def training_data(source: str) -> Any:
    """--data for an autoencoder: a file or folder ``aekit.data.sources`` reads row by row becomes a
    Source, which ``AutoEncoder.fit`` reads into memory when it fits the memory budget and lazily when
    not; a data set name (or any other file) is its training split in memory, as ``training_split``."""
    from aekit.data.datasets import DATASETS
    from aekit.data.sources import can_open, npz_keys, open_source

    path = Path(source).expanduser()
    if source in DATASETS or not can_open(path):
        return training_split(source)
    key = None
    if path.suffix.lower() == ".npz":  # a data set archive: its x_train (or x), as load() would take
        keys = npz_keys(path)
        key = next((k for k in ("x_train", "x") if k in keys), None)
        if key is None and len(keys) != 1:
            return training_split(source)  # its error names the arrays a data set needs
    return open_source(path, key=key)


def stopped_early(history: list[dict[str, Any]], patience: int | None) -> bool:
    """Whether early stopping ended the run: its last ``patience`` epochs never beat the best val_loss."""
    val = [(r["val_loss"], r["epoch"]) for r in history if "val_loss" in r]
    return bool(patience and val) and history[-1]["epoch"] - min(val)[1] >= patience


# -- output ------------------------------------------------------------------------------------------------


# Images smaller than this (pixels, the longer side) are enlarged in a PNG grid, by a whole factor with
# nearest-neighbour pixels: an 8x8 digit drawn 8 px wide cannot be seen.
GRID_MIN_TILE = 48


def grid_zoom(h: int, w: int) -> int:
    """The whole factor that shows an h x w image at least GRID_MIN_TILE pixels wide or high in a grid."""
    return max(1, -(-GRID_MIN_TILE // max(h, w, 1)))


def note(message: str) -> None:
    """A remark for the user that is not part of the result: stderr, so stdout stays parseable."""
    print(f"aekit: note: {message}", file=sys.stderr)


def console():
    from rich.console import Console

    return Console()


def fmt(value: Any) -> str:
    """Numbers to 5 significant digits, the rest as str."""
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)
