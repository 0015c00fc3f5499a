"""Read arrays, tables and images from paths, and write arrays back.

Each file type has one reader in a registry keyed by suffix. Nothing is ever unpickled: every
``np.load`` passes ``allow_pickle=False`` and object arrays are refused on writing too.
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aekit.atomic import atomic_path
from aekit.errors import DataError
from aekit.extras import require

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LABEL_COLUMNS = ("label", "y")  # a table column with one of these names is the label, not a feature
ACCEPTED = ".npy, .npz, .mat, .csv, .parquet, .png, .jpg, .jpeg files or a folder of PNG/JPEG images"
# read_array's pick from a multi-array .npz (or .mat), in this order; ODDS benchmarks keep theirs as 'X'
NPZ_ARRAY_KEYS = ("x", "X", "x_test", "x_train")
# how to pick another array, said in every message about keys: the CLI option and the Python argument
KEY_HINT = "pick one with --key NAME (key=NAME in Python)"

# Pillow modes we read, and what each becomes. Alpha and palettes are flattened so that a folder
# mixing them with plain files still stacks into one array; 16-bit and float modes are refused
# rather than silently cut down to 8 bits.
_IMAGE_MODES = {"1": "L", "L": "L", "LA": "L", "P": "RGB", "RGB": "RGB", "RGBA": "RGB", "CMYK": "RGB"}


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy fields with == would raise
class Dataset:
    """A data set: ``x_train`` always, test part and labels when the source has them."""

    name: str
    x_train: np.ndarray
    x_test: np.ndarray | None = None
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        for part, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x is not None and y is not None and len(x) != len(y):
                raise DataError(
                    f"data set {self.name!r}: x_{part} has {len(x)} rows but y_{part} has {len(y)}; "
                    "each sample needs exactly one label"
                )


# ---------------------------------------------------------------------------------------------- reading


def read_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Read one array from a .npy/.npz/.mat/.csv/.parquet file, one PNG/JPEG image or a folder of them.

    From a .npz (or .mat) with several arrays, ``key`` picks one; without it the only array, else the
    first of 'x', 'X', 'x_test', 'x_train' is taken. A table's 'label'/'y' column is left out. One
    image gives (H, W) or (H, W, 3); a folder gives (N, H, W) or (N, H, W, 3), sorted by file name.
    """
    p = existing_path(path)
    kind = _kind(p)
    if kind == ".npz":
        return _npz_array(p, key)
    if kind == ".mat":
        return _mat_array(p, key)
    if key is not None:
        raise DataError(f"--key {key} only applies to .npz and .mat files, and {p} is not one; leave it out")
    return _ARRAY_READERS.get(kind, lambda q: read_dataset(q).x_train)(p)


def read_dataset(path: str | os.PathLike) -> Dataset:
    """Read a file or folder into a ``Dataset`` (what ``aekit.data.load`` does for paths)."""
    p = existing_path(path)
    reader = _DATASET_READERS.get(_kind(p))
    if reader is None:
        raise DataError(
            f"cannot read {p}: unknown file type {p.suffix or '(none)'!r}; aekit reads {ACCEPTED}"
        )
    return reader(p)


def existing_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"no such file or folder: {p} (relative paths start at {Path.cwd()})")
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes); it was probably cut short while being written: recreate it")
    return p


def _kind(p: Path) -> str:
    return "folder" if p.is_dir() else p.suffix.lower()


def read_npz(path: Path, choose: Callable[[list[str]], Iterable[str]] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a .npz file; ``choose`` maps its key list to the keys to read (default: all)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{path} is not a valid .npz file ({_load_reason(e)}); re-save it with numpy.savez"
        ) from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single .npy array, not an .npz archive; rename it to .npy")
    with loaded:
        names = list(choose(list(loaded.files)) if choose else loaded.files)
        try:
            return {k: loaded[k] for k in names}
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
            raise DataError(f"{path} is damaged ({_load_reason(e)}); re-save it with numpy.savez") from e


def npz_dataset(path: Path, name: str) -> Dataset:
    """A .npz with x_train[/x_test/y_train/y_test] or x[/y] as a ``Dataset``."""
    arrays = read_npz(path)
    if "x_train" in arrays:
        return Dataset(name, *(arrays.get(k) for k in ("x_train", "x_test", "y_train", "y_test")))
    return _xy_dataset(path, name, arrays)


def _xy_dataset(path: Path, name: str, arrays: dict[str, np.ndarray]) -> Dataset:
    for x in ("x", "X"):  # 'X' with 'y': the ODDS benchmarks' layout
        if x in arrays:
            return Dataset(name, _rows_in_c_order(arrays[x]), y_train=_label_vector(arrays.get("y")))
    if len(arrays) == 1:
        return Dataset(name, _rows_in_c_order(next(iter(arrays.values()))))
    raise DataError(
        f"{path} has arrays {_names(arrays)} but a data set needs 'x_train' (with optional 'x_test', "
        "'y_train', 'y_test') or 'x'/'X' (with optional 'y'); re-save it under those names, "
        f"or {KEY_HINT}"
    )


def _rows_in_c_order(x: np.ndarray) -> np.ndarray:
    # Fortran-order arrays (MATLAB's, and numpy's transposes) would make every row read a strided gather
    return np.ascontiguousarray(x) if x.ndim > 1 and not x.flags.c_contiguous else x


def _label_vector(y: np.ndarray | None) -> np.ndarray | None:
    """Labels as one value per sample: MATLAB saves a column (n, 1)."""
    return y.reshape(-1) if y is not None and y.ndim == 2 and 1 in y.shape else y


def _npz_array(path: Path, key: str | None) -> np.ndarray:
    arrays = read_npz(path, lambda keys: [pick_key(path, keys, key)])
    return _rows_in_c_order(next(iter(arrays.values())))


def pick_key(path: Path, keys: list[str], key: str | None, preferred: Iterable[str] = NPZ_ARRAY_KEYS) -> str:
    """The array of a .npz/.mat to read: ``key`` when given, else the only one, else the first of
    ``preferred`` present; a DataError listing the keys when ``key`` is missing or the choice ambiguous."""
    if key is not None:
        if key not in keys:
            raise DataError(f"--key {key}: {path} has no array {key!r}; it has {_names(keys)}")
        return key
    if len(keys) == 1:
        return keys[0]
    preferred = tuple(preferred)
    picked = next((k for k in preferred if k in keys), None)
    if picked is None:
        raise DataError(
            f"{path} holds arrays {_names(keys)} and none is named {', '.join(preferred)}; {KEY_HINT}"
        )
    return picked


# -------------------------------------------------------------------------------------------- MATLAB .mat


def read_mat(path: Path) -> dict[str, np.ndarray]:
    """The numeric arrays of a MATLAB .mat file (v4 to v7.2, as ODDS ships its benchmarks), via SciPy."""
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        raise DataError(f"reading {path} needs SciPy (pip install scipy), or re-save it as .npz") from None
    try:
        loaded = loadmat(path)
    except NotImplementedError:  # v7.3 files are HDF5
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which aekit does not read; re-save it in MATLAB with "
            "save(name, '-v7') or convert it to .npz"
        ) from None
    except (ValueError, OSError, TypeError) as e:
        raise DataError(
            f"{path} is not a readable MATLAB .mat file ({e}); re-save it or convert it to .npz"
        ) from e
    arrays = {
        k: v
        for k, v in loaded.items()
        if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
    }
    if not arrays:
        raise DataError(f"{path} holds no numeric arrays; save the data as a numeric matrix")
    return arrays


def _mat_array(path: Path, key: str | None) -> np.ndarray:
    arrays = read_mat(path)
    return _rows_in_c_order(arrays[pick_key(path, list(arrays), key)])


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise DataError(
            f"{path} is not a valid .npy file ({_load_reason(e)}); re-save it with numpy.save"
        ) from e
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise DataError(f"{path} is an .npz archive saved under a .npy name; rename it to .npz")
    if arr.ndim == 0:
        raise DataError(f"{path} holds a single number, not an array of samples; save an array of rows")
    return arr


def _load_reason(e: Exception) -> str:
    # numpy's own text for these suggests allow_pickle=True, which we never want to recommend
    if "pickle" in str(e):
        return (
            "not a NumPy file, or it holds Python objects that would need unpickling, which aekit never does"
        )
    return str(e) or type(e).__name__


def _names(keys: Iterable[str]) -> str:
    return ", ".join(repr(k) for k in keys) or "none"


# ------------------------------------------------------------------------------------------------ tables


def _read_csv(path: Path) -> Dataset:
    pd = require("pandas", "tables", "reading CSV tables")  # imported here: ~0.3 s that only tables need

    try:
        frame = pd.read_csv(path, header=0 if _csv_has_header(path) else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path} is not a readable CSV table ({e}); save it as comma-separated UTF-8 text"
        ) from e
    return _table_dataset(path, frame)


def _read_parquet(path: Path) -> Dataset:
    pd = require("pandas", "tables", "reading Parquet tables")
    require("pyarrow", "tables", "reading Parquet tables")  # pandas' engine for it

    try:
        frame = pd.read_parquet(path)
    except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"{path} is not a readable Parquet file ({e}); re-save it with pandas.to_parquet"
        ) from e
    return _table_dataset(path, frame)


def _csv_has_header(path: Path) -> bool:
    """A first row that is not all numbers is a header (pandas would otherwise eat a data row)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            first = next(csv.reader(f), [])
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text, so not a CSV table; export it as CSV (UTF-8)") from e
    return not all(_is_number(cell) for cell in first)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell.strip() == ""  # an empty cell is a missing number, not a column name
    return True


def _table_dataset(path: Path, frame) -> Dataset:
    frame.columns = [str(c).strip() for c in frame.columns]
    label = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
    features = frame.drop(columns=[label]) if label else frame
    if features.shape[1] == 0 or len(features) == 0:
        raise DataError(f"{path} has no data ({len(features)} rows, {features.shape[1]} feature columns)")
    bad = [c for c in features.columns if not _is_numeric(features[c])]
    if bad:
        raise DataError(
            f"{path} has non-numeric columns {_names(bad)}; encode or drop them "
            f"(a label column must be named {' or '.join(LABEL_COLUMNS)})"
        )
    x = features.to_numpy()
    if x.dtype.kind not in "biuf":  # mixed bool/int/float columns come out as objects
        x = features.to_numpy(dtype=np.float64)
    missing = np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise DataError(
            f"{path} has {int(missing.sum())} missing values (the first in column {features.columns[col]!r}, "
            f"data row {row + 1}); fill or drop them before training"
        )
    y = None
    if label:
        column = frame[label]
        y = column.to_numpy() if _is_numeric(column) else column.astype(str).to_numpy(dtype=str)
    return Dataset(path.stem, x, y_train=y)


def _is_numeric(column) -> bool:
    from pandas.api.types import is_numeric_dtype

    return is_numeric_dtype(column.dtype)


# ------------------------------------------------------------------------------------------------ images


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            target = _IMAGE_MODES.get(image.mode)
            if target is None:
                raise DataError(
                    f"{path} has image mode {image.mode!r}; aekit reads 8-bit grayscale, RGB and RGBA "
                    "images: convert it to one of those first"
                )
            return np.asarray(image.convert(target))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as e:
        raise DataError(f"{path} is not a readable PNG/JPEG image ({e}); re-export it or remove it") from e


def _read_folder(folder: Path) -> np.ndarray:
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"folder {folder} has no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)}); "
            "put the images directly in it (subfolders are not searched)"
        )
    first = _read_image(files[0])
    out = np.empty((len(files), *first.shape), dtype=first.dtype)  # one allocation, not a list + stack
    out[0] = first
    for i, f in enumerate(files[1:], start=1):
        image = _read_image(f)
        if image.shape != first.shape:
            raise DataError(
                f"{f} is {_describe(image)} but {files[0].name} is {_describe(first)}; all images in "
                f"{folder} must share size and mode: resize or convert {f.name}"
            )
        out[i] = image
    return out


def _describe(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]} {'RGB' if image.ndim == 3 else 'grayscale'}"


_DATASET_READERS: dict[str, Callable[[Path], Dataset]] = {
    ".npy": lambda p: Dataset(p.stem, _read_npy(p)),
    ".npz": lambda p: npz_dataset(p, p.stem),
    ".mat": lambda p: _xy_dataset(p, p.stem, read_mat(p)),
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    "folder": lambda p: Dataset(p.name, _read_folder(p)),
    **{s: (lambda p: Dataset(p.stem, _read_image(p)[None])) for s in IMAGE_SUFFIXES},  # a batch of one
}
# read_array's readers where "x_train of the data set" is not the natural answer
_ARRAY_READERS: dict[str, Callable[[Path], np.ndarray]] = {
    ".npy": _read_npy,
    **dict.fromkeys(IMAGE_SUFFIXES, _read_image),
}


# ------------------------------------------------------------------------------------------------ writing


def write_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to .npy, .npz (key 'x'), .csv or .parquet, atomically; parent folders are made."""
    p = Path(path).expanduser()
    writer = _WRITERS.get(p.suffix.lower())
    if writer is None:
        raise DataError(
            f"cannot write {p}: aekit writes arrays to {', '.join(_WRITERS)}; pick one of those suffixes"
        )
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise DataError(
            f"cannot write {p}: the array holds Python objects; convert it to a numeric dtype first"
        )
    with atomic_path(p) as tmp:
        writer(tmp, arr)
    return p


def _write_npy(tmp: Path, arr: np.ndarray) -> None:
    with tmp.open("wb") as f:  # a file object: given a name, numpy would append its own suffix
        np.save(f, arr, allow_pickle=False)


def _write_npz(tmp: Path, arr: np.ndarray) -> None:
    with tmp.open("wb") as f:
        np.savez(f, x=arr)


def _frame(arr: np.ndarray, suffix: str):
    what = f"writing {'Parquet' if suffix == '.parquet' else 'CSV'} tables"
    pd = require("pandas", "tables", what)
    if suffix == ".parquet":
        require("pyarrow", "tables", what)  # pandas' engine for it

    from aekit.data.writers import table_columns

    # named columns (x0, x1, ...) give the CSV a header, so it reads back the same with or without sniffing
    return pd.DataFrame(table_columns({"x": arr}, Path(suffix)))


_WRITERS: dict[str, Callable[[Path, np.ndarray], None]] = {
    ".npy": _write_npy,
    ".npz": _write_npz,
    ".csv": lambda tmp, arr: _frame(arr, ".csv").to_csv(tmp, index=False),
    ".parquet": lambda tmp, arr: _frame(arr, ".parquet").to_parquet(tmp, index=False),
}
