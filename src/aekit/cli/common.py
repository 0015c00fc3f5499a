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
from aekit.streaming import CHUNK_BYTES, PREDICT_BATCH

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


def add_stream_options(p: argparse.ArgumentParser) -> None:
    """--chunk-rows, --workers and --quiet, for the verbs that stream a file through a model
    (``aekit.streaming``)."""
    group = p.add_argument_group("streaming (inputs of any size: read, apply and written chunk by chunk)")
    group.add_argument(
        "--chunk-rows",
        type=_whole_batches,
        metavar="N",
        help=f"rows per chunk, a multiple of {PREDICT_BATCH} (default: about {CHUNK_BYTES >> 20} MB of "
        "model input); memory grows with it, results do not change",
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="processes applying the model to chunks, in order (default: %(default)s: this process)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _whole_batches(text: str) -> int:
    value = positive_int(text)
    if value % PREDICT_BATCH:
        raise argparse.ArgumentTypeError(
            f"expected a multiple of {PREDICT_BATCH} (the model's batch, so results match an in-memory run), "
            f"got {text!r}; try {max(1, round(value / PREDICT_BATCH)) * PREDICT_BATCH}"
        )
    return value


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
    """An ``AutoEncoder`` read from ``path``; a missing or damaged file is one ModelFileError, and so is
    one built with the user's own networks, which only Python can open (it holds their classes)."""
    from aekit import AutoEncoder
    from aekit.errors import ModelFileError, NetworksNeededError

    try:
        return AutoEncoder.load(path, device=check_device(device))
    except NetworksNeededError as exc:
        raise ModelFileError(
            f"{path} was built with your own networks ({exc.needs}); the aekit commands import no code, so "
            f"it must be loaded from Python, given their classes: {exc.call}"
        ) from None


KEY_HELP = (
    "the array to read from a .npz or .mat file holding several (default: the only one, else x, X, "
    "x_test or x_train)"
)


def add_key_option(parser: argparse.ArgumentParser, help: str = KEY_HELP) -> None:
    """--key NAME, for every verb that reads arrays from a file (``open_input``)."""
    parser.add_argument("--key", metavar="NAME", help=help)


def open_input(
    path: str,
    key: str | None = None,
    sample_shape: tuple[int, ...] | None = None,
    allow_1d: bool = False,
    preferred: tuple[str, ...] | None = None,
):
    """The one reader of every verb: a ``Source`` over the arrays in a file or folder, read row by row where
    the format allows (.npy, uncompressed .npz, tables, image folders), else whole (one image, .mat,
    a Fortran-order array).

    ``key`` picks an array of a .npz/.mat; without it the only array, else the first of ``preferred``
    (default: x, X, x_test, x_train). A file holding exactly one sample (a PNG, or one row) becomes a
    batch of one. A 1-D array is refused unless ``allow_1d`` (a series of single values).
    """
    from aekit.data.files import IMAGE_SUFFIXES, existing_path, pick_key
    from aekit.data.sources import ArraySource, npz_keys, open_source

    p = existing_path(path)
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:  # one picture: small by nature
        from aekit.data import read_array

        if key is not None:
            raise DataError(f"--key only applies to .npz and .mat files, and {p} is not one; leave it out")
        return ArraySource(read_array(p)[None], name=p.name)
    if preferred is not None and key is None and p.is_file() and p.suffix.lower() == ".npz":
        key = pick_key(p, npz_keys(p), None, preferred)
    source = open_source(p, key=key)
    if sample_shape is not None and tuple(source.shape) == tuple(sample_shape):
        return ArraySource(source.read_all()[None], name=source.name)
    if source.ndim < 2 and not allow_1d:
        raise DataError(
            f"{p} holds a 1-D array of {len(source)} values; a batch needs one row per sample (2-D or more), "
            "or exactly one sample's values"
        )
    return source


def read_samples(path: str, spec, key: str | None = None):
    """The samples in ``path`` as one array (``open_input``, read whole); one sample gains a batch axis."""
    return open_input(path, key, tuple(spec.sample_shape)).read_all()


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


def training_split(source: str, key: str | None = None) -> Any:
    """The training samples of a data set name or path (``aekit.data.load``), or with ``key`` that array
    of the file (``open_input``)."""
    from aekit.data import load

    if key is not None:
        return open_input(source, key).read_all()
    ds = load(source)
    if ds.x_train is None or len(ds.x_train) == 0:
        raise DataError(f"data set {ds.name!r} has no training samples; give data with an x_train part")
    return ds.x_train


def training_data(source: str, key: str | None = None) -> Any:
    """--data for an autoencoder: a file or folder ``aekit.data.sources`` reads row by row becomes a
    Source, which ``AutoEncoder.fit`` reads into memory when it fits the memory budget and lazily when
    not; a data set name (or any other file) is its training split in memory, as ``training_split``."""
    from aekit.data.datasets import DATASETS
    from aekit.data.sources import can_open

    path = Path(source).expanduser()
    if source in DATASETS or not can_open(path):
        return training_split(source, key)
    # a data set archive: its x_train (or x, X), as load() would take
    return open_input(str(path), key, preferred=("x_train", "x", "X"))


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
