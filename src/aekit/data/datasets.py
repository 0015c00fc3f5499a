"""The named data sets, and ``load``, which turns a name or a path into a ``Dataset``.

A named set is looked for in this order, first hit wins:
1. ``<name>.npz`` in the folder named by ``AEKIT_DATA_DIR`` (offline machines, shared test data);
2. ``<name>.npz`` in ``cache_dir()``, our own conversion of an earlier download;
3. the canonical source files, taken from ``AEKIT_DATA_DIR`` when all are there, else a stand-in
   from ``AEKIT_DATA_DIR`` (cifar10's lossy JPEG copy, with a warning), else downloaded; the files
   are verified against their checksums and converted into the cache.
Adding a set means one ``DatasetSpec`` in ``DATASETS`` and, if its format is new, one converter.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import tarfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aekit.atomic import atomic_path
from aekit.data.download import download, file_digest, source_url
from aekit.data.files import ACCEPTED, Dataset, read_dataset, read_npz
from aekit.errors import DataError

SPLIT_KEYS = ("x_train", "x_test", "y_train", "y_test")


@dataclass(frozen=True)
class Remote:
    """One file of a data set's canonical source, with the checksum its publisher gives."""

    filename: str
    base_url: str  # AEKIT_DATA_MIRROR replaces this
    checksum: str
    algorithm: str = "sha256"


@dataclass(frozen=True)
class DatasetSpec:
    """How to get one named data set. ``item_shape``/``dtype`` describe one image and are enforced."""

    name: str
    summary: str
    item_shape: tuple[int, ...]
    dtype: str = "uint8"
    remotes: tuple[Remote, ...] = ()
    # source files (by file name) -> arrays named as in SPLIT_KEYS
    convert: Callable[[dict[str, Path]], dict[str, np.ndarray]] | None = None
    # (file name in AEKIT_DATA_DIR, reader) used when the real thing is not at hand
    fallbacks: tuple[tuple[str, Callable[[DatasetSpec, Path], Dataset]], ...] = ()
    builtin: Callable[[], Dataset] | None = None  # sets that ship with a dependency


def data_dir() -> Path | None:
    """The folder named by ``AEKIT_DATA_DIR``, or None when it is not set."""
    value = os.environ.get("AEKIT_DATA_DIR", "").strip()
    if not value:
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"AEKIT_DATA_DIR={value!r} is not a folder; point it at the folder holding the data files, "
            "or unset it"
        )
    return folder


def cache_dir() -> Path:
    """Where downloaded sets are kept after conversion: ``AEKIT_CACHE_DIR``, else ``~/.cache/aekit``."""
    value = os.environ.get("AEKIT_CACHE_DIR", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "aekit"


def load(source: str | os.PathLike) -> Dataset:
    """A named data set (see ``DATASETS``) or the data in a file or folder, as a ``Dataset``.

    A string that is a known name always means the named set; to read a local folder of the same
    name pass a ``Path`` or './name'.
    """
    if isinstance(source, str) and source in DATASETS:
        return _load_named(DATASETS[source])
    path = Path(source).expanduser()
    if path.exists() or not isinstance(source, str) or _looks_like_path(source):
        return read_dataset(path)
    raise DataError(
        f"unknown data set {source!r}: not a built-in name ({', '.join(DATASETS)}) and no such file or "
        f"folder; give one of those names or a path to {ACCEPTED}"
    )


def _looks_like_path(text: str) -> bool:
    return any(sep and sep in text for sep in (os.sep, os.altsep, "/")) or Path(text).suffix != ""


def _load_named(spec: DatasetSpec) -> Dataset:
    if spec.builtin is not None:
        return spec.builtin()
    folder = data_dir()
    cached = cache_dir() / f"{spec.name}.npz"
    for candidate in (folder / f"{spec.name}.npz" if folder else None, cached):
        if candidate is not None and candidate.is_file():
            return _checked(spec, read_npz(candidate), candidate)
    have_sources = folder is not None and all((folder / r.filename).is_file() for r in spec.remotes)
    if folder is not None and not have_sources:
        for filename, reader in spec.fallbacks:
            if (folder / filename).is_file():
                return reader(spec, folder / filename)
    return _build(spec, folder, cached)


def _build(spec: DatasetSpec, folder: Path | None, cached: Path) -> Dataset:
    """Fetch the source files (AEKIT_DATA_DIR first), convert them, and keep only the conversion."""
    sources: dict[str, Path] = {}
    fetched: list[Path] = []
    for remote in spec.remotes:
        local = folder / remote.filename if folder else None
        if local is not None and local.is_file():
            _verify(local, remote)
            sources[remote.filename] = local
            continue
        dest = cache_dir() / "downloads" / remote.filename
        # a file verified on an earlier, interrupted run need not be fetched again
        if not (dest.is_file() and file_digest(dest, remote.algorithm) == remote.checksum):
            download(source_url(remote.base_url, remote.filename), dest, remote.algorithm, remote.checksum)
        sources[remote.filename] = dest
        fetched.append(dest)
    arrays = spec.convert(sources)
    dataset = _checked(spec, arrays, f"the {spec.name} files")
    try:
        with atomic_path(cached) as tmp, tmp.open("wb") as f:
            np.savez(f, **arrays)  # uncompressed: loading is then a plain read, worth the disk space
    except OSError as e:
        raise DataError(f"could not write {cached} ({e}); point AEKIT_CACHE_DIR at a writable folder") from e
    for path in fetched:
        path.unlink(missing_ok=True)
    return dataset


def _verify(path: Path, remote: Remote) -> None:
    got = file_digest(path, remote.algorithm)
    if got != remote.checksum:
        raise DataError(
            f"{path} has {remote.algorithm} {got}, expected {remote.checksum}; it is damaged or another "
            f"version: replace it with {source_url(remote.base_url, remote.filename)} or remove it"
        )


def _checked(spec: DatasetSpec, arrays: dict[str, np.ndarray], origin: object) -> Dataset:
    """The arrays as a Dataset, after checking they are the images this set is made of."""
    if "x_train" not in arrays:
        raise DataError(
            f"{origin} has arrays {sorted(arrays)} but {spec.name} needs x_train (with x_test, y_train, "
            "y_test); replace the file with one in that layout, or delete it so aekit fetches the set again"
        )
    for key in ("x_train", "x_test"):
        x = arrays.get(key)
        if x is not None and (x.shape[1:] != spec.item_shape or x.dtype != spec.dtype):
            raise DataError(
                f"{origin}: {key} is {x.dtype} of shape {x.shape} but {spec.name} images are {spec.dtype} "
                f"of shape {spec.item_shape}; replace the file, or delete it so aekit fetches the set again"
            )
    return Dataset(spec.name, *(arrays.get(k) for k in SPLIT_KEYS))


# -------------------------------------------------------------------------------------------- converters


def _keras_npz(sources: dict[str, Path]) -> dict[str, np.ndarray]:
    (path,) = sources.values()
    return read_npz(path, lambda keys: [k for k in SPLIT_KEYS if k in keys])


_MAX_IDX_BYTES = 1 << 30  # far above any IDX set we register; a header claiming more is damaged


def _read_idx(path: Path, item_shape: tuple[int, ...]) -> np.ndarray:
    """One gzipped IDX array of uint8: bytes 0, 0, 0x08 (uint8), ndim; big-endian uint32 dims; data."""
    ndim = 1 + len(item_shape)
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(4)
            if head != bytes((0, 0, 0x08, ndim)):
                raise DataError(
                    f"{path} is not a uint8 IDX file with {ndim} dimensions (header {head.hex()})"
                )
            dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            size = math.prod(dims)
            if dims[1:] != item_shape or size > _MAX_IDX_BYTES:
                raise DataError(
                    f"{path} holds items of shape {dims}, expected (N, {item_shape}); wrong file?"
                )
            body = f.read(size + 1)  # one byte more tells a too-long file from an exact one
    except (OSError, EOFError, struct.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path} is not a readable gzipped IDX file ({e}); delete it and load again") from e
    if len(body) != size:
        raise DataError(
            f"{path} has {len(body)} data bytes where its header says {size}; the file is damaged"
        )
    return np.frombuffer(body, np.uint8).reshape(dims).copy()  # copy: frombuffer views are read-only


def _fashion_idx(sources: dict[str, Path]) -> dict[str, np.ndarray]:
    return {
        f"{x_or_y}_{split}": _read_idx(sources[f"{prefix}-{kind}-ubyte.gz"], shape)
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for x_or_y, kind, shape in (("x", "images-idx3", (28, 28)), ("y", "labels-idx1", ()))
    }


_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then the red, green and blue 32x32 planes
_CIFAR_MAX_MEMBER = 64 << 20  # a real batch is 30.7 MB
_CIFAR_SPLITS = {
    "train": [f"{_CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6)],
    "test": [f"{_CIFAR_DIR}/test_batch.bin"],
}


def _cifar10_binary(sources: dict[str, Path]) -> dict[str, np.ndarray]:
    (path,) = sources.values()
    wanted = {name for names in _CIFAR_SPLITS.values() for name in names}
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:  # one pass: seeking back in a .gz stream decompresses it all again
                if member.name not in wanted:
                    continue
                if not member.isfile() or member.size % _CIFAR_RECORD or member.size > _CIFAR_MAX_MEMBER:
                    raise DataError(
                        f"{path}: {member.name} is {member.size} bytes, not whole {_CIFAR_RECORD}-byte "
                        "CIFAR records; the archive is damaged: delete it and load again"
                    )
                blobs[member.name] = tar.extractfile(member).read()  # read in memory, never extracted
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path} is not a readable .tar.gz archive ({e}); delete it and load again") from e
    missing = sorted(wanted - blobs.keys())
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; it is not the CIFAR-10 binary version")
    arrays = {}
    for split, names in _CIFAR_SPLITS.items():
        records = np.frombuffer(b"".join(blobs[n] for n in names), np.uint8).reshape(-1, _CIFAR_RECORD)
        arrays[f"x_{split}"] = (
            records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        )  # (N, 32, 32, 3)
        arrays[f"y_{split}"] = records[:, 0].copy()
    return arrays


_JPEG_TRAIN = 8000  # of the 10000 images in cifar10_test_jpeg.npz; the rest are the test part


def _cifar10_from_jpeg(spec: DatasetSpec, path: Path) -> Dataset:
    arrays = read_npz(path, lambda keys: [k for k in ("x", "y") if k in keys])
    if "x" not in arrays:
        raise DataError(f"{path} has no array 'x'; it is not the shared cifar10_test_jpeg.npz: remove it")
    # the file is sorted by class, so split only after a fixed shuffle
    order = np.random.default_rng(0).permutation(len(arrays["x"]))
    parts = {}
    for key, array in arrays.items():
        shuffled = array[order]
        parts[f"{key}_train"], parts[f"{key}_test"] = shuffled[:_JPEG_TRAIN], shuffled[_JPEG_TRAIN:]
    warnings.warn(
        f"cifar10: using {path}, the lossy JPEG (quality 75) copy of the CIFAR-10 test set, split "
        f"{_JPEG_TRAIN}/{len(order) - _JPEG_TRAIN} into train/test; scores on it are not comparable with "
        "published CIFAR-10 results. Put cifar10.npz or cifar-10-binary.tar.gz in AEKIT_DATA_DIR "
        "for the real set",
        UserWarning,
        stacklevel=4,  # points at the caller of aekit.data.load
    )
    return _checked(spec, parts, path)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits  # scikit-learn takes a second to import; only this set needs it

    bunch = load_digits()
    x = (bunch.images / 16).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[: len(x) - len(x) // 5], order[len(x) - len(x) // 5 :]
    return Dataset("digits", x[train], x[test], bunch.target[train], bunch.target[test])


_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets"
_FASHION = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "8x8 handwritten digits shipped with scikit-learn, float32 in [0, 1]",
            (8, 8),
            "float32",
            builtin=_digits,
        ),
        DatasetSpec(
            "mnist",
            "70,000 28x28 grayscale handwritten digits (60,000 train)",
            (28, 28),
            remotes=(
                Remote(
                    "mnist.npz", _KERAS, "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
                ),
            ),
            convert=_keras_npz,
        ),
        DatasetSpec(
            "fashion-mnist",
            "70,000 28x28 grayscale clothing images (60,000 train)",
            (28, 28),
            remotes=tuple(
                Remote(name, _FASHION, md5, "md5")
                for name, md5 in (
                    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
                )
            ),
            convert=_fashion_idx,
        ),
        DatasetSpec(
            "cifar10",
            "60,000 32x32 colour images in 10 classes (50,000 train)",
            (32, 32, 3),
            remotes=(
                Remote(
                    "cifar-10-binary.tar.gz",
                    "https://www.cs.toronto.edu/~kriz",
                    "c32a1d4ab5d03f1284b67883e8d87530",
                    "md5",
                ),
            ),
            convert=_cifar10_binary,
            fallbacks=(("cifar10_test_jpeg.npz", _cifar10_from_jpeg),),
        ),
    )
}
