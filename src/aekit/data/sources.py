"""Readers that do not load everything: a ``Source`` reads rows on demand from a file or folder.

``open_source(path)`` opens .npy, .npz (one array), .csv, .parquet and folders of images. Every source
has ``len``, ``sample_shape``, ``dtype``, ``nbytes``, ``read(indices)`` (any rows, read in file order in
one pass) and ``iter_chunks(rows)`` (everything, in order, ``rows`` at a time). ``ArraySource`` wraps an
array already in memory, so code written against sources takes both.

.npy files (and uncompressed .npz members) are read with ``os.pread`` into fresh buffers, not through a
memory map: mapped pages count towards the process's resident memory until the kernel evicts them, so a
map makes "how much memory does this use" unanswerable, while reads into our own buffers keep it exactly
bounded by what the caller holds. The page cache still makes repeated reads fast.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.files import (
    _IMAGE_MODES,
    IMAGE_SUFFIXES,
    LABEL_COLUMNS,
    _csv_has_header,
    _mat_array,
    _read_image,
    _read_npy,
    _rows_in_c_order,
    existing_path,
    pick_key,
    read_npz,
)
from aekit.errors import DataError
from aekit.extras import require

LAZY_FORMATS = ".npy, .npz, .mat, .csv, .parquet or a folder of PNG/JPEG images"
CSV_INDEX_ROWS = 4096  # a CSV is indexed every this many rows: a read parses at most this many extra rows


class Source:
    """Rows of one data set, read on demand. Subclasses set ``name``, ``sample_shape``, ``dtype`` and
    ``_rows`` and implement ``_read_sorted``; ``random_access`` is False where any read means decoding
    the file from its start (a compressed .npz)."""

    name: str
    sample_shape: tuple[int, ...]
    dtype: np.dtype
    _rows: int
    random_access: bool = True

    def __len__(self) -> int:
        return self._rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._rows, *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.sample_shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self._rows * self.row_bytes

    def read(self, indices: Any) -> np.ndarray:
        """Rows ``indices`` (any order, repeats allowed) as one array (len(indices), *sample_shape).

        The rows are read in file order, in one pass; the result comes back in the order asked for.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self._rows):
            raise IndexError(f"row indices must lie in [0, {self._rows}); got {idx.min()}..{idx.max()}")
        if len(idx) < 2 or bool(np.all(idx[1:] >= idx[:-1])):
            return self._read_sorted(idx)
        order = np.argsort(idx, kind="stable")
        rows = self._read_sorted(idx[order])
        out = np.empty_like(rows)
        out[order] = rows  # one scatter back into the caller's order
        return out

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        """All rows in order, ``rows`` at a time (the last chunk may be shorter)."""
        rows = _chunk_rows(rows)
        for start in range(0, self._rows, rows):
            yield self._read_sorted(np.arange(start, min(start + rows, self._rows), dtype=np.int64))

    def read_all(self) -> np.ndarray:
        """Every row in one array: for data known to fit in memory."""
        out = np.empty(self.shape, dtype=self.dtype)
        start = 0
        for chunk in self.iter_chunks(max(1, (64 << 20) // max(1, self.row_bytes))):
            out[start : start + len(chunk)] = chunk
            start += len(chunk)
        return out

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, shape={self.shape}, dtype={self.dtype})"


class ArraySource(Source):
    """An array already in memory (or any array-like, e.g. a NumPy memmap) seen as a ``Source``."""

    def __init__(self, array: Any, name: str = "array"):
        arr = np.asarray(array)
        if arr.ndim < 2:
            raise DataError(f"{name} must have one row per sample (2-D or more); got shape {arr.shape}")
        self.array, self.name = arr, name
        self.sample_shape, self.dtype, self._rows = tuple(arr.shape[1:]), arr.dtype, len(arr)

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        return self.array[idx]

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        rows = _chunk_rows(rows)
        for start in range(0, self._rows, rows):
            yield self.array[start : start + rows]  # views: no copy of data already in memory

    def read_all(self) -> np.ndarray:
        return self.array


# ---------------------------------------------------------------------------------------------- .npy/.npz


class NpySource(Source):
    """A .npy array (or an uncompressed .npz member at byte ``base`` of its archive), read with pread."""

    def __init__(self, path: Path, base: int = 0, name: str | None = None):
        self.path, self.name = path, name or path.name
        with path.open("rb") as f:
            f.seek(base)
            shape, fortran, dtype = _npy_header(f, self.name)
            self._offset = f.tell()
        if len(shape) == 0:
            raise DataError(
                f"{self.name} holds a single number, not an array of samples; save an array of rows"
            )
        if fortran and len(shape) > 1:
            raise _ColumnMajor(self.name)
        self.dtype, self._rows, self.sample_shape = dtype, int(shape[0]), tuple(int(s) for s in shape[1:])
        size = path.stat().st_size
        if base == 0 and self._offset + self.nbytes > size:
            raise DataError(
                f"{self.name} is cut short: its header promises {self.nbytes} bytes of data but the file "
                f"holds {size - self._offset}; recreate it"
            )

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        if not len(idx):
            return out
        flat = out.reshape(len(idx), -1).view(np.uint8)  # (k, row_bytes) bytes to read into
        step = self.row_bytes
        # Runs of consecutive rows are one pread each: a sequential chunk is a single system call.
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(idx)]])
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
                _pread_into(fd, memoryview(flat[a:b]).cast("B"), self._offset + int(idx[a]) * step)
        finally:
            os.close(fd)
        return out


class _ColumnMajor(DataError):
    """A Fortran-order array: its rows are not contiguous, so it is read whole instead (``_row_major``)."""


def _row_major(open_lazily: Callable[[], Source], read_whole: Callable[[], np.ndarray], name: str) -> Source:
    """The lazy source, or for a Fortran-order array (MATLAB's habit) the array read whole in C order."""
    try:
        return open_lazily()
    except _ColumnMajor:
        return ArraySource(_rows_in_c_order(read_whole()), name=name)


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise DataError(f"the file ended early while reading byte {offset + done}; recreate it")
        done += n


def _npy_header(f, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:  # (3, 0): utf-8 field names; the 2.0 reader parses the same header layout
            reader = fmt.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    except (ValueError, EOFError, OSError) as e:
        raise DataError(f"{name} is not a valid .npy file ({e}); re-save it with numpy.save") from None
    if dtype.hasobject:
        raise DataError(
            f"{name} holds Python objects, which would need unpickling (aekit never does that); "
            "save a numeric array"
        )
    if not _is_real(dtype):
        raise DataError(
            f"{name} has dtype {dtype}; aekit needs real numbers. Convert it, e.g. x.astype('float32')"
        )
    return shape, fortran, dtype


def _is_real(dtype: np.dtype) -> bool:
    """Numbers a model can take: integers, floats and booleans, not complex numbers or objects."""
    return dtype.kind in "biuf"


def _open_npz(path: Path, key: str | None) -> Source:
    def read_whole() -> np.ndarray:
        return read_npz(path, lambda keys: [pick_key(path, keys, key)]).popitem()[1]

    return _row_major(lambda: _open_npz_lazily(path, key), read_whole, path.name)


def _open_npz_lazily(path: Path, key: str | None) -> Source:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            key = pick_key(path, list(members), key)
            info = members[key]
            if info.compress_type == zipfile.ZIP_STORED:
                with path.open("rb") as f:  # the member's data starts after its local header
                    f.seek(info.header_offset)
                    local = f.read(30)
                    base = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                    base += int.from_bytes(local[28:30], "little")
                return NpySource(path, base=base, name=f"{path.name}[{key!r}]")
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a valid .npz file ({e}); re-save it with numpy.savez") from None
    return CompressedNpzSource(path, key)


def npz_keys(path: str | os.PathLike) -> list[str]:
    """The names of the arrays in a .npz file, without reading any of them."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a valid .npz file ({e}); re-save it with numpy.savez") from None


class CompressedNpzSource(Source):
    """A compressed .npz member: rows come out in order by decompressing as we go (bounded memory), but
    any other read means decompressing from the start, so training on it lazily is refused."""

    random_access = False

    def __init__(self, path: Path, key: str):
        self.path, self.key, self.name = path, key, f"{path.name}[{key!r}]"
        with self._open() as f:
            shape, fortran, dtype = _npy_header(f, self.name)
        if len(shape) == 0:
            raise DataError(
                f"{self.name} holds a single number, not an array of samples; save an array of rows"
            )
        if fortran and len(shape) > 1:
            raise _ColumnMajor(self.name)
        self.dtype, self._rows, self.sample_shape = dtype, int(shape[0]), tuple(int(s) for s in shape[1:])

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        """The member as a file, decompressed as it is read; the archive stays open as long as it."""
        with zipfile.ZipFile(self.path) as zf, zf.open(self.key + ".npy") as member:
            yield member

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        rows = _chunk_rows(rows)
        with self._open() as f:
            _npy_header(f, self.name)
            for start in range(0, self._rows, rows):
                out = np.empty((min(rows, self._rows - start), *self.sample_shape), dtype=self.dtype)
                view = memoryview(out.reshape(-1).view(np.uint8))
                if f.readinto(view) != len(view):
                    raise DataError(f"{self.name} ended early; re-save it")
                yield out

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        """One decompressing pass that keeps the rows asked for."""
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        rows, start, at = 4096, 0, 0
        for chunk in self.iter_chunks(rows):
            stop = start + len(chunk)
            end = int(np.searchsorted(idx, stop))
            out[at:end] = chunk[idx[at:end] - start]
            at, start = end, stop
            if at == len(idx):
                break
        return out


# ------------------------------------------------------------------------------------------------- tables


class ParquetSource(Source):
    """A Parquet table: rows are found by row group; a 'label'/'y' column is left out, as in read_array."""

    def __init__(self, path: Path):
        pq = require("pyarrow.parquet", "tables", "reading Parquet tables")

        self.path, self.name = path, path.name
        try:
            self._file = pq.ParquetFile(path)
        except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(
                f"{path} is not a readable Parquet file ({e}); re-save it with pandas.to_parquet"
            ) from None
        schema = self._file.schema_arrow
        self.columns = [
            n for n in schema.names if n.strip() not in LABEL_COLUMNS and n != "__index_level_0__"
        ]
        if not self.columns:
            raise DataError(f"{path} has no feature columns (only {', '.join(schema.names) or 'none'})")
        dtypes = {name: _arrow_dtype(schema.field(name).type) for name in self.columns}
        bad = [name for name, dt in dtypes.items() if not _is_real(dt)]
        if bad:
            raise DataError(
                f"{path} has non-numeric columns {', '.join(map(repr, dict.fromkeys(bad)))}; encode or drop "
                f"them (a label column must be named {' or '.join(LABEL_COLUMNS)})"
            )
        self.dtype = np.result_type(*dtypes.values())
        self.sample_shape = (len(self.columns),)
        meta = self._file.metadata
        self._group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        self._rows = int(self._group_starts[-1])
        if self._rows == 0:
            raise DataError(f"{path} has no data (0 rows)")

    def _to_numpy(self, table, first_row: int) -> np.ndarray:
        x = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in self.columns])
        return _checked_table_rows(x.astype(self.dtype, copy=False), self.name, self.columns, first_row)

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        groups = np.searchsorted(self._group_starts, idx, side="right") - 1
        for g in np.unique(groups).tolist():
            sel = np.flatnonzero(groups == g)
            start = int(self._group_starts[g])
            rows = self._to_numpy(self._file.read_row_group(g, columns=self.columns), start)
            out[sel] = rows[idx[sel] - start]
        return out

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        def parts() -> Iterator[np.ndarray]:
            start = 0
            for batch in self._file.iter_batches(batch_size=_chunk_rows(rows), columns=self.columns):
                yield self._to_numpy(batch, start)
                start += batch.num_rows

        return _rechunk(parts(), _chunk_rows(rows))


class CsvSource(Source):
    """A CSV table of numbers. Opening it scans the bytes once (vectorised) to count rows and note where
    every ``CSV_INDEX_ROWS``-th row starts, so ``read`` parses only the blocks that hold the rows asked for.
    A 'label'/'y' column is left out; values come as float64 (a later block may hold decimals)."""

    def __init__(self, path: Path):
        pd = require("pandas", "tables", "reading CSV tables")

        self.path, self.name = path, path.name
        self._header = _csv_has_header(path)
        try:
            head = pd.read_csv(path, header=0 if self._header else None, nrows=1)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(
                f"{path} is not a readable CSV table ({e}); save it as comma-separated UTF-8 text"
            ) from None
        self._names = [str(c).strip() for c in head.columns]
        self.columns = [c for c in self._names if c not in LABEL_COLUMNS]
        if not self.columns:
            raise DataError(f"{path} has no feature columns (only {', '.join(self._names)})")
        self.dtype, self.sample_shape = np.dtype(np.float64), (len(self.columns),)
        self._starts, self._rows = _index_lines(path, skip=1 if self._header else 0)
        if self._rows == 0:
            raise DataError(f"{path} has no data (0 rows)")

    def _block(self, b: int) -> np.ndarray:
        import pandas as pd

        first = b * CSV_INDEX_ROWS
        nrows = min(CSV_INDEX_ROWS, self._rows - first)
        with self.path.open("rb") as f:
            f.seek(int(self._starts[b]))
            try:
                frame = pd.read_csv(f, header=None, names=self._names, nrows=nrows, skip_blank_lines=True)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
                raise DataError(
                    f"{self.path} rows {first + 1}..{first + nrows} are not readable CSV ({e})"
                ) from None
        return self._numbers(frame, first)

    def _numbers(self, frame, first_row: int) -> np.ndarray:
        frame.columns = self._names
        from pandas.api.types import is_numeric_dtype

        features = frame[self.columns]
        try:
            x = features.to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            bad = [c for c in self.columns if not is_numeric_dtype(features[c].dtype)]  # object or str
            raise DataError(
                f"{self.path} has non-numeric columns {', '.join(map(repr, bad))} (values in rows "
                f"{first_row + 1}..{first_row + len(frame)}); encode or drop them (a label column must be "
                f"named {' or '.join(LABEL_COLUMNS)})"
            ) from None
        return _checked_table_rows(x, self.name, self.columns, first_row)

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        blocks = idx // CSV_INDEX_ROWS
        for b in np.unique(blocks).tolist():
            sel = np.flatnonzero(blocks == b)
            out[sel] = self._block(b)[idx[sel] - b * CSV_INDEX_ROWS]
        return out

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        import pandas as pd

        def parts() -> Iterator[np.ndarray]:
            start = 0
            reader = pd.read_csv(
                self.path, header=0 if self._header else None, chunksize=max(_chunk_rows(rows), 1024)
            )
            try:
                for frame in reader:
                    yield self._numbers(frame, start)
                    start += len(frame)
            except (pd.errors.ParserError, UnicodeDecodeError) as e:
                raise DataError(f"{self.path} has unreadable CSV after row {start} ({e})") from None

        return _rechunk(parts(), _chunk_rows(rows))


def _index_lines(path: Path, skip: int) -> tuple[np.ndarray, int]:
    """Byte offsets of every CSV_INDEX_ROWS-th non-blank line after ``skip`` lines, and the line count."""
    marks: list[np.ndarray] = []
    count, pos, pending_start = 0, 0, 0  # pending_start: where the line now being read began
    skipped = 0
    with path.open("rb") as f:
        while block := f.read(16 << 20):
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + pos  # byte index of each '\n'
            starts = np.concatenate([[pending_start], ends[:-1] + 1]) if len(ends) else np.empty(0, np.int64)
            lengths = ends - starts  # bytes before the newline ('\r' included)
            if len(ends):
                pending_start = int(ends[-1]) + 1
            if skipped < skip:
                take = min(skip - skipped, len(starts))
                starts, lengths, skipped = starts[take:], lengths[take:], skipped + take
            # blank lines ('' or a lone '\r') hold no row, and pandas skips them too
            view = np.frombuffer(block, np.uint8)
            first = np.where(starts >= pos, view[np.clip(starts - pos, 0, len(view) - 1)], 0)
            starts = starts[(lengths > 1) | ((lengths == 1) & (first != 13))]
            picks = (count + np.arange(len(starts))) % CSV_INDEX_ROWS == 0
            marks.append(starts[picks])
            count += len(starts)
            pos += len(block)
    if pending_start < pos and skipped >= skip:  # a last line without a newline
        if count % CSV_INDEX_ROWS == 0:
            marks.append(np.array([pending_start]))
        count += 1
    return (np.concatenate(marks).astype(np.int64) if marks else np.zeros(0, np.int64)), count


def _arrow_dtype(arrow_type) -> np.dtype:
    try:
        return np.dtype(arrow_type.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return np.dtype(object)


def _checked_table_rows(x: np.ndarray, name: str, columns: list[str], first_row: int) -> np.ndarray:
    if x.dtype.kind == "f":
        missing = ~np.isfinite(x)
        if missing.any():
            row, col = np.argwhere(missing)[0]
            raise DataError(
                f"{name} has missing or infinite values (the first in column {columns[col]!r}, data row "
                f"{first_row + row + 1}); fill or drop them before training"
            )
    return x


# ------------------------------------------------------------------------------------------------- images


class ImageFolderSource(Source):
    """A folder of PNG/JPEG images of one size and mode, sorted by name, decoded only when read.

    Opening checks every file's header (cheap: nothing is decoded) so a stray size fails at once.
    """

    def __init__(self, folder: Path):
        from PIL import Image, UnidentifiedImageError

        self.path, self.name = folder, folder.name
        self.files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DataError(
                f"folder {folder} has no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)}); "
                "put the images directly in it (subfolders are not searched)"
            )
        first = None
        for f in self.files:
            try:
                with Image.open(f) as image:
                    seen = (image.size, _IMAGE_MODES.get(image.mode, image.mode))
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(
                    f"{f} is not a readable PNG/JPEG image ({e}); re-export it or remove it"
                ) from None
            if first is None:
                first = (f, seen)
            elif seen != first[1]:
                raise DataError(
                    f"{f} is {_describe(seen)} but {first[0].name} is {_describe(first[1])}; all images in "
                    f"{folder} must share size and mode: resize or convert {f.name}"
                )
        sample = _read_image(self.files[0])
        self.sample_shape, self.dtype, self._rows = sample.shape, sample.dtype, len(self.files)

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=self.dtype)
        for i, j in enumerate(idx.tolist()):
            image = _read_image(self.files[j])  # decoding is per file: there is no batch decoder to call
            if image.shape != self.sample_shape:
                raise DataError(f"{self.files[j]} changed since the folder was opened; open it again")
            out[i] = image
        return out


def _describe(seen: tuple[tuple[int, int], str]) -> str:
    (w, h), mode = seen
    return f"{w}x{h} {'RGB' if mode == 'RGB' else 'grayscale' if mode == 'L' else mode}"


# ------------------------------------------------------------------------------------------------ opening


def source_kind(path: Path) -> str:
    """The key of ``_OPENERS`` for ``path``: its lower-case suffix, or "folder"."""
    return "folder" if path.is_dir() else path.suffix.lower()


_OPENERS: dict[str, Callable[[Path, str | None], Source]] = {
    ".npy": lambda p, key: _row_major(lambda: NpySource(p), lambda: _read_npy(p), p.name),
    ".npz": _open_npz,
    ".mat": lambda p, key: ArraySource(_mat_array(p, key), name=p.name),  # MATLAB files are read whole
    ".parquet": lambda p, key: ParquetSource(p),
    ".csv": lambda p, key: CsvSource(p),
    "folder": lambda p, key: ImageFolderSource(p),
}


def open_source(path: str | os.PathLike, key: str | None = None) -> Source:
    """A ``Source`` over the file or folder at ``path``; ``key`` picks an array of a .npz."""
    p = existing_path(path)
    kind = source_kind(p)
    opener = _OPENERS.get(kind)
    if opener is None:
        raise DataError(
            f"cannot read {p} row by row: unknown type {p.suffix or '(none)'!r}; aekit reads {LAZY_FORMATS}"
        )
    if key is not None and kind not in (".npz", ".mat"):
        raise DataError(f"--key {key} only applies to .npz and .mat files, and {p} is not one; leave it out")
    return opener(p, key)


def can_open(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing file or folder of a kind ``open_source`` reads."""
    p = Path(path).expanduser()
    return p.exists() and source_kind(p) in _OPENERS


def as_source(x: Any) -> Source | None:
    """``x`` as a Source when it is one or a path to one; None for anything else (arrays, lists)."""
    if isinstance(x, Source):
        return x
    if isinstance(x, str | os.PathLike):
        return open_source(x)
    return None


def _chunk_rows(rows: int) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"rows must be a whole number >= 1; got {rows!r}")
    return int(rows)


def _rechunk(parts: Iterator[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """Pieces of any sizes -> chunks of exactly ``rows`` rows (the last may be shorter)."""
    held: list[np.ndarray] = []
    have = 0
    for part in parts:
        held.append(part)
        have += len(part)
        while have >= rows:
            joined = np.concatenate(held) if len(held) > 1 else held[0]
            yield joined[:rows]
            rest = joined[rows:]
            held, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.concatenate(held) if len(held) > 1 else held[0]
