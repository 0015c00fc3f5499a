"""Incremental writers: results written chunk by chunk, so an output of any size never sits in memory.

``open_writer(path)`` picks a writer by suffix (.npy, .npz, .csv, .parquet). Each chunk is a dict of named
fields (``{"x": codes}``, or ``{"score": s, "label": y}``) of equal length. The file read back is what
``aekit.data.write_array`` (one field ``x``) or a pandas table of the fields would have written in one go:

- .npy: one field as it is; several 1-D fields side by side as float64 columns (N, fields).
- .npz: one member per field, each streamed to its own temporary .npy and zipped (stored) at close.
- .csv / .parquet: a table; a 2-D field ``x`` becomes columns x0, x1, ..., 1-D fields keep their names.

Every writer writes a temporary file beside ``path`` as it goes and renames it into place at ``close()``;
an error (``abort()``, or an exception inside ``with``) removes it and leaves ``path`` untouched.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from aekit.atomic import atomic_path
from aekit.errors import DataError
from aekit.extras import require

Fields = Mapping[str, np.ndarray]

# The .npy header is written before the row count is known, with room for a count of this many digits,
# and rewritten in place at close (same length: the padding absorbs the difference).
_COUNT_DIGITS = 20
_NPY_ALIGN = 64  # numpy aligns the data after the header to 64 bytes; readers expect it


class Writer:
    """Base: the temporary file, ``with`` support, and the checks every chunk gets."""

    suffix = ""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        self.rows = 0
        self._fields: tuple[str, ...] | None = None
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        self._open = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, fields: Fields) -> None:
        """Append one chunk: every field holds the same number of rows (a numeric array)."""
        if not self._open:
            raise DataError(f"cannot write to {self.path}: the writer is already closed")
        arrays = {name: np.asarray(value) for name, value in fields.items()}
        names = tuple(arrays)
        if self._fields is None:
            self._fields = names
        elif names != self._fields:
            raise DataError(f"{self.path}: every chunk needs the fields {self._fields}; got {names}")
        lengths = {len(a) if a.ndim else -1 for a in arrays.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise DataError(f"{self.path}: the fields of a chunk must be arrays of equal length")
        for name, a in arrays.items():
            if a.dtype.hasobject:
                raise DataError(
                    f"cannot write {self.path}: field {name!r} holds Python objects; convert it to a "
                    "numeric dtype first"
                )
        n = lengths.pop()
        if n:
            self._append(arrays)
            self.rows += n

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if not self._open:
            return self.path
        try:
            self._finish()
        except BaseException as e:
            self._open = False
            with contextlib.suppress(Exception):
                self._release()
            self._atomic.__exit__(type(e), e, e.__traceback__)
            raise
        self._open = False
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop everything written: the temporary file goes, ``path`` stays as it was."""
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(Exception):
            self._release()
        error = RuntimeError("aborted")
        with contextlib.suppress(RuntimeError):
            self._atomic.__exit__(RuntimeError, error, None)

    # -- what each format does ------------------------------------------------------------------------------
    def _append(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Write what only the end knows (counts, footers) and close the file."""

    def _release(self) -> None:
        """Close open handles after an error (the temporary file itself is removed by the caller)."""


# -- .npy ---------------------------------------------------------------------------------------------------


class NpyWriter(Writer):
    """Rows appended after a header whose row count is rewritten at close (np.lib.format's layout)."""

    suffix = ".npy"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._file = open(self.tmp, "wb")  # noqa: SIM115 (closed by close/abort)
        self._dtype: np.dtype | None = None
        self._row_shape: tuple[int, ...] = ()

    def _append(self, arrays: dict[str, np.ndarray]) -> None:
        block = _one_block(arrays)
        if self._dtype is None:
            self._dtype, self._row_shape = block.dtype, block.shape[1:]
            self._file.write(npy_header(self._dtype, (0, *self._row_shape)))
        elif block.shape[1:] != self._row_shape:
            raise DataError(
                f"{self.path}: a chunk has rows of shape {block.shape[1:]}, earlier chunks {self._row_shape}"
            )
        self._file.write(np.ascontiguousarray(block, dtype=self._dtype).data)  # C order, as the header says

    def _finish(self) -> None:
        if self._dtype is None:  # nothing written: an empty float32 array, as np.save of np.zeros((0,))
            self._file.write(npy_header(np.dtype(np.float32), (0,)))
        else:
            self._file.seek(0)
            self._file.write(npy_header(self._dtype, (self.rows, *self._row_shape)))
        self._file.close()

    def _release(self) -> None:
        self._file.close()


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header for a C-order array, of a length that does not depend on ``shape[0]``."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    reserve = _COUNT_DIGITS - len(str(shape[0]))  # so the rewrite at close fits in the same bytes
    start = len(np.lib.format.MAGIC_PREFIX) + 2 + 2  # magic, version (2 bytes), header length (2 bytes)
    body = text + " " * reserve
    padding = -(start + len(body) + 1) % _NPY_ALIGN
    body = body + " " * padding + "\n"
    if len(body) > 0xFFFF:
        raise DataError(f"rows of shape {shape[1:]} need a .npy header longer than version 1.0 allows")
    return np.lib.format.magic(1, 0) + len(body).to_bytes(2, "little") + body.encode("latin1")


# -- .npz ---------------------------------------------------------------------------------------------------


class NpzWriter(Writer):
    """Each field streamed to its own temporary .npy; at close they are zipped (stored), as np.savez does."""

    suffix = ".npz"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._parts: dict[str, NpyWriter] = {}

    def _append(self, arrays: dict[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            if name not in self._parts:
                self._parts[name] = NpyWriter(self.tmp.with_name(f"{self.tmp.name}.{name}.npy"))
            self._parts[name].write({name: a})

    def _finish(self) -> None:
        with zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, part in self._parts.items():
                part.close()
                with open(part.path, "rb") as src, archive.open(f"{name}.npy", "w", force_zip64=True) as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
                part.path.unlink()
        if not self._parts:  # nothing written: np.savez(f, x=np.zeros((0,), float32))
            with zipfile.ZipFile(self.tmp, "w") as archive:
                archive.writestr("x.npy", npy_header(np.dtype(np.float32), (0,)))

    def _release(self) -> None:
        for part in self._parts.values():
            part.abort()
            part.path.unlink(missing_ok=True)  # a part already closed into place


# -- tables: .csv and .parquet ------------------------------------------------------------------------------


def table_columns(arrays: Mapping[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Named 1-D columns: a single 2-D field becomes x0, x1, ... as ``write_array`` names them."""
    if len(arrays) == 1:
        (a,) = arrays.values()
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise DataError(
                f"{path.suffix} holds a table (rows x columns) but each row has shape {a.shape[1:]}; "
                "flatten it with arr.reshape(len(arr), -1) or write .npy/.npz instead"
            )
        return {f"x{i}": a[:, i] for i in range(a.shape[1])}
    for name, a in arrays.items():
        if a.ndim != 1:
            raise DataError(f"{path}: table field {name!r} must be one column; its rows are {a.shape[1:]}")
    return dict(arrays)


class CsvWriter(Writer):
    """pandas' to_csv per chunk, the header once: the same text as one to_csv of the whole table."""

    suffix = ".csv"

    def __init__(self, path: str | os.PathLike) -> None:
        require("pandas", "tables", "writing CSV tables")  # before the temporary file is made
        super().__init__(path)
        self._file = open(self.tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115

    def _append(self, arrays: dict[str, np.ndarray]) -> None:
        import pandas as pd

        frame = pd.DataFrame(table_columns(arrays, self.path), copy=False)
        frame.to_csv(self._file, index=False, header=self.rows == 0)

    def _finish(self) -> None:
        if self.rows == 0:
            import pandas as pd

            pd.DataFrame().to_csv(self._file, index=False)
        self._file.close()

    def _release(self) -> None:
        self._file.close()


class ParquetWriter(Writer):
    """One row group per chunk through pyarrow's ParquetWriter.

    The schema (with pandas' metadata) is the first chunk's, so pandas.read_parquet gives the same frame as
    ``DataFrame.to_parquet`` of the whole table.
    """

    suffix = ".parquet"

    def __init__(self, path: str | os.PathLike) -> None:
        for module in ("pandas", "pyarrow"):
            require(module, "tables", "writing Parquet tables")
        super().__init__(path)
        self._writer = None

    def _append(self, arrays: dict[str, np.ndarray]) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = pd.DataFrame(table_columns(arrays, self.path), copy=False)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        elif table.schema != self._writer.schema:
            raise DataError(f"{self.path}: a chunk's columns {table.schema} differ from the first chunk's")
        self._writer.write_table(table)

    def _finish(self) -> None:
        if self._writer is None:
            import pandas as pd

            pd.DataFrame().to_parquet(self.tmp, index=False)
            return
        self._writer.close()

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.close()


WRITERS: dict[str, Callable[[Path], Writer]] = {
    ".npy": NpyWriter,
    ".npz": NpzWriter,
    ".csv": CsvWriter,
    ".parquet": ParquetWriter,
}


def open_writer(path: str | os.PathLike) -> Writer:
    """The incremental writer for ``path``'s suffix; use it in a ``with`` block (or close/abort it)."""
    p = Path(path).expanduser()
    make = WRITERS.get(p.suffix.lower())
    if make is None:
        raise DataError(f"cannot write {p}: aekit writes results to {', '.join(WRITERS)}; pick one of those")
    if p.is_dir():
        raise DataError(f"cannot write {p}: it is a folder; give a file name")
    return make(p)


def _one_block(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The .npy layout: a single field as it is, several 1-D fields as float64 columns."""
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    return np.column_stack([a.astype(np.float64, copy=False) for a in arrays.values()])
