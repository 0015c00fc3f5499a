"""The ``.aez`` archive: several compressed items, a checksum on everything, random access to item k.

Layout (docs/format.md has the byte tables)::

    header   magic, version, codec name, codec fingerprint, meta JSON, CRC32 of the header
    payloads the items' payload bytes, back to back, in the order they were added
    index    item count, the default item fields, one record per item (payload length, fields that
             differ from the defaults, name, CRC32 of the item's fields and payload)
    trailer  12 bytes: index length, CRC32 of the index, end marker

The index sits at the end so a writer can stream payloads to disk and write it once it has seen them all;
the fixed-size trailer tells a reader where the index starts. Fields every item shares (shape, dtype,
padding, quality, lossless) are stored once as defaults, so an item that matches them costs a length
varint and its CRC32: 5 bytes for a payload under 64 bytes.

Everything read from a file is untrusted: every length is checked against the bytes that remain and
against the limits below before anything is allocated or read, and every failure is one ``ArchiveError``
naming the file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aekit.atomic import atomic_path
from aekit.errors import ArchiveError

MAGIC = b"\x89AEZ"  # the high first byte catches 7-bit transfers and text files, as PNG's does
END = b"ZEA\x89"
VERSION = 1
FINGERPRINT_BYTES = 16
TRAILER = struct.Struct("<II4s")  # index length, index CRC32, END

# Limits a reader enforces before it allocates anything (and a writer before it writes anything).
MAX_NAME_BYTES = 4096  # codec name and item names, UTF-8
MAX_META_BYTES = 65536  # the meta JSON
MAX_DTYPE_CHARS = 32
MAX_NDIM = 8
MAX_ELEMENTS = 1 << 30  # values per item (shape product): a decoder allocates this many
MAX_PADDING_LEN = 2 * MAX_NDIM
MAX_PAD = 1 << 20
MAX_QUALITY = 255
MAX_ITEMS = 1 << 24
MAX_TOTAL_VALUES = 1 << 36  # values of all items together: 64 GiB of uint8 decoded
MAX_INDEX_BYTES = 1 << 28
MAX_PAYLOAD = 1 << 40
MAX_HEADER_BYTES = 2 * MAX_NAME_BYTES + MAX_META_BYTES + 64
_VARINT_MAX_BYTES = 10  # enough for any value below 2**64
_MIN_RECORD = 5  # a length varint and a CRC32: what each item needs in the index at least
_DTYPE_RE = re.compile(r"[A-Za-z0-9_<>|=]+")

# Flags byte of an index record: which fields differ from the archive's defaults. Bits 6-7 must be 0.
_SHAPE, _DTYPE, _PADDING, _QUALITY, _LOSSLESS, _NAME = 1, 2, 4, 8, 16, 32
_KNOWN_FLAGS = 63


@dataclass(frozen=True)
class Item:
    """One compressed array: its decoded shape and dtype, how the codec padded it, and the coded bytes.

    ``padding`` and ``quality`` mean whatever the codec that made ``payload`` says they mean (aekit's
    ``ImageCodec`` pads height and width up to a multiple of its stride). ``name`` is where the item came
    from (a file name, or empty): any text UTF-8 can store (no NUL, no lone surrogate), and a reader gets
    it back as stored, so treat it as untrusted text.
    """

    shape: tuple[int, ...]
    dtype: str
    padding: tuple[int, ...]
    quality: int
    lossless: bool
    payload: bytes
    name: str = ""

    def __post_init__(self) -> None:
        # Normalise what callers naturally pass (lists, numpy ints, bytearrays) so equality and
        # encoding see one form; limits are checked by the writer, which can name the archive.
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "padding", tuple(int(p) for p in self.padding))
        object.__setattr__(self, "dtype", str(self.dtype))
        object.__setattr__(self, "quality", int(self.quality))
        object.__setattr__(self, "lossless", bool(self.lossless))
        if not isinstance(self.payload, bytes | bytearray | memoryview):
            raise TypeError(f"Item payload must be bytes; got {type(self.payload).__name__}")
        if not isinstance(self.name, str):
            raise TypeError(f"Item name must be a str; got {type(self.name).__name__}")
        object.__setattr__(self, "payload", bytes(self.payload))

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return (
            f"Item(shape={self.shape}, dtype={self.dtype!r}, padding={self.padding}, quality={self.quality}, "
            f"lossless={self.lossless}, payload=<{len(self.payload)} bytes>{name})"
        )


# Fields of an item other than its payload and name; one tuple per distinct combination.
_Fields = tuple[tuple[int, ...], str, tuple[int, ...], int, bool]


def _fields(item: Item) -> _Fields:
    return (item.shape, item.dtype, item.padding, item.quality, item.lossless)


class _Bad(Exception):
    """Raised inside parsing and checking; turned into an ArchiveError that names the file."""


# -- varints and the field encodings ------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low bits first, high bit set on every byte but the last."""
    if n < 0:
        raise ValueError(f"varint of a negative number: {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(s: str, what: str, limit: int) -> bytes:
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as e:  # only a lone surrogate (U+D800..U+DFFF) has no UTF-8 form
        raise _Bad(
            f"{what} {s[:80]!r} holds U+{ord(s[e.start]):04X}, a lone surrogate, which UTF-8 cannot store "
            "(a file name whose bytes are not UTF-8 reaches Python with such characters): store "
            "os.fsencode(name).decode('utf-8', 'backslashreplace') instead"
        ) from None
    if len(b) > limit:
        raise _Bad(f"{what} is {len(b)} bytes long in UTF-8; the limit is {limit}")
    if b"\x00" in b:
        raise _Bad(f"{what} {s!r} contains a NUL character")
    return varint(len(b)) + b


def _ints(values: tuple[int, ...]) -> bytes:
    return varint(len(values)) + b"".join(varint(v) for v in values)


def _check_fields(f: _Fields) -> None:
    shape, dtype, padding, quality, _ = f
    if len(shape) > MAX_NDIM:
        raise _Bad(f"shape {shape} has {len(shape)} dimensions; the limit is {MAX_NDIM}")
    if any(d < 0 for d in shape):
        raise _Bad(f"shape {shape} has a negative size")
    if math.prod(shape) > MAX_ELEMENTS:
        raise _Bad(f"shape {shape} holds {math.prod(shape):,} values; the limit is {MAX_ELEMENTS:,}")
    if not (0 < len(dtype) <= MAX_DTYPE_CHARS and _DTYPE_RE.fullmatch(dtype)):
        raise _Bad(
            f"dtype {dtype!r} is not a dtype name (letters, digits and <>|=_, at most {MAX_DTYPE_CHARS})"
        )
    if len(padding) > MAX_PADDING_LEN or any(not 0 <= p <= MAX_PAD for p in padding):
        raise _Bad(f"padding {padding} is out of range: at most {MAX_PADDING_LEN} values in 0..{MAX_PAD}")
    if not 0 <= quality <= MAX_QUALITY:
        raise _Bad(f"quality {quality} is out of range 0..{MAX_QUALITY}")


def _encode_fields(f: _Fields) -> bytes:
    """The full form of an item's fields: the archive's defaults, and what each item's CRC covers."""
    shape, dtype, padding, quality, lossless = f
    return (
        _ints(shape)
        + _text(dtype, "dtype", MAX_DTYPE_CHARS)
        + _ints(padding)
        + varint(quality)
        + bytes([lossless])
    )


def _item_crc(f: _Fields, name: str, payload: bytes) -> int:
    head = _encode_fields(f) + _text(name, "item name", MAX_NAME_BYTES)
    return zlib.crc32(payload, zlib.crc32(head))


class _Cursor:
    """Reads the parts of a bytes buffer, each checked against the bytes left and a limit."""

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos, self.end = buf, pos, len(buf) if end is None else end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise _Bad(f"{what} needs {n} bytes but only {self.end - self.pos} remain")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str, limit: int) -> int:
        n = shift = 0
        for i in range(_VARINT_MAX_BYTES):
            if self.pos >= self.end:
                raise _Bad(f"{what} runs past the end of its section")
            b = self.buf[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                if b == 0 and i > 0:
                    raise _Bad(f"{what} is a badly formed varint (overlong)")
                if n > limit:
                    raise _Bad(f"{what} is {n:,}; the limit is {limit:,}")
                return n
            shift += 7
        raise _Bad(f"{what} is a badly formed varint (longer than {_VARINT_MAX_BYTES} bytes)")

    def text(self, what: str, limit: int) -> str:
        b = self.take(self.varint(f"length of {what}", limit), what)
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} is not valid UTF-8") from None
        if "\x00" in s:
            raise _Bad(f"{what} contains a NUL character")
        return s

    def ints(self, what: str, count_limit: int, value_limit: int) -> tuple[int, ...]:
        n = self.varint(f"number of {what} values", count_limit)
        return tuple(self.varint(what, value_limit) for _ in range(n))

    def fields(self) -> _Fields:
        shape = self.ints("shape", MAX_NDIM, MAX_ELEMENTS)
        dtype = self.text("dtype", MAX_DTYPE_CHARS)
        padding = self.ints("padding", MAX_PADDING_LEN, MAX_PAD)
        quality = self.varint("quality", MAX_QUALITY)
        lossless = self.u8("lossless flag")
        if lossless > 1:
            raise _Bad(f"lossless flag is {lossless}; it must be 0 or 1")
        f = (shape, dtype, padding, quality, bool(lossless))
        _check_fields(f)
        return f


def _override(flags: int, f: _Fields, d: _Fields) -> _Fields:
    """The fields of an item whose index record has ``flags``, and the overriding values in ``f``."""
    return (
        f[0] if flags & _SHAPE else d[0],
        f[1] if flags & _DTYPE else d[1],
        f[2] if flags & _PADDING else d[2],
        f[3] if flags & _QUALITY else d[3],
        (not d[4]) if flags & _LOSSLESS else d[4],
    )


def _read_record(c: _Cursor, defaults: _Fields) -> tuple[int, _Fields, str, int]:
    """One index record: (payload length, fields, name, crc)."""
    head = c.varint("item length", MAX_PAYLOAD * 2 + 1)
    fields, name = defaults, ""
    if head & 1:
        flags = c.u8("item flags")
        if flags == 0 or flags & ~_KNOWN_FLAGS:
            raise _Bad(f"item flags byte is {flags:#04x}, which no aekit writes")
        shape = c.ints("shape", MAX_NDIM, MAX_ELEMENTS) if flags & _SHAPE else ()
        dtype = c.text("dtype", MAX_DTYPE_CHARS) if flags & _DTYPE else ""
        padding = c.ints("padding", MAX_PADDING_LEN, MAX_PAD) if flags & _PADDING else ()
        quality = c.varint("quality", MAX_QUALITY) if flags & _QUALITY else 0
        if flags & _NAME:
            name = c.text("item name", MAX_NAME_BYTES)
            if not name:
                raise _Bad("item name is flagged as present but empty")
        fields = _override(flags, (shape, dtype, padding, quality, False), defaults)
        _check_fields(fields)
    crc = int.from_bytes(c.take(4, "item checksum"), "little")
    return head >> 1, fields, name, crc


# -- what a file that is not an archive looks like ----------------------------------------------------------

_LOOKS_LIKE: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"\x93NUMPY": "a NumPy .npy file",
    b"PK\x03\x04": "a ZIP file (a .npz is one)",
    b"\x1f\x8b": "a gzip file",
    b"\x28\xb5\x2f\xfd": "a zstd file",
    b"BM": "a BMP image",
}


def _looks_like(head: bytes) -> str:
    if not head:
        return "it is empty"
    for prefix, what in _LOOKS_LIKE.items():
        if head.startswith(prefix):
            return f"it looks like {what}"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "it looks like a WebP image"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "it looks like an AVIF image"
    if len(head) >= 10 and head[8:10] == b'{"':
        return "it looks like a safetensors file (aekit's .aek model files are: give it as the model)"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it looks like text"
    return "it does not start with the .aez magic bytes"


# -- writing ------------------------------------------------------------------------------------------------


class ArchiveWriter:
    """Write a ``.aez`` archive item by item; it appears at ``path`` only when the writer closes cleanly.

    Payloads go straight to a temporary file beside ``path``; ``close()`` (or leaving the ``with`` block)
    appends the index and renames the file into place in one step. An exception inside the block, or
    ``abort()``, removes the temporary file and leaves whatever was at ``path`` untouched.
    """

    def __init__(
        self, path: str | os.PathLike, codec_name: str, fingerprint: bytes, meta: dict[str, Any] | None = None
    ) -> None:
        self.path = Path(path)
        self.codec_name = str(codec_name)
        self.fingerprint = bytes(fingerprint)
        self.meta = dict(meta or {})
        if len(self.fingerprint) != FINGERPRINT_BYTES:
            raise ArchiveError(
                f"codec fingerprint must be {FINGERPRINT_BYTES} bytes; got {len(self.fingerprint)}"
            )
        try:
            meta_json = json.dumps(
                self.meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError) as e:
            raise ArchiveError(f"archive meta must be a JSON-serialisable dict with str keys: {e}") from None
        with self._naming():
            body = (
                _text(self.codec_name, "codec name", MAX_NAME_BYTES)
                + self.fingerprint
                + _text(meta_json, "meta JSON", MAX_META_BYTES)
            )
        head = MAGIC + bytes([VERSION]) + varint(len(body)) + body
        self._field_ids: dict[_Fields, int] = {}  # each distinct combination of fields, checked once
        self._field_enc: list[bytes] = []  # its full encoding
        self._fids, self._lengths, self._crcs = array("I"), array("Q"), array("I")
        self._names: dict[int, str] = {}
        self._values = 0  # of all items so far, against MAX_TOTAL_VALUES
        self._index_bytes = 1  # the count varint's first byte; kept as an upper-bound estimate
        self._done = True  # until the temporary file exists: nothing to clean up
        if self.path.is_dir():
            raise ArchiveError(f"cannot write the archive to {self.path}: it is a folder; give a file name")
        self._atomic = atomic_path(self.path)
        try:
            tmp = self._atomic.__enter__()
        except OSError as e:
            raise ArchiveError(f"cannot write the archive {self.path}: {e.strerror or e}") from None
        try:
            self._file = open(tmp, "wb")  # noqa: SIM115 (closed by close/abort, which the with block calls)
            self._file.write(head + zlib.crc32(head).to_bytes(4, "little"))
        except BaseException as e:
            self._atomic.__exit__(type(e), e, e.__traceback__)
            if isinstance(e, OSError):
                raise ArchiveError(f"cannot write the archive {self.path}: {e.strerror or e}") from None
            raise
        self._done = False

    @contextlib.contextmanager
    def _naming(self, what: str = "") -> Iterator[None]:
        try:
            yield
        except _Bad as e:
            raise ArchiveError(f"cannot write {self.path}: {what}{e}") from None

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, item: Item) -> int:
        """Append ``item`` to the archive (its payload goes to disk now); return its index."""
        if self._done:
            raise ArchiveError(f"cannot add to {self.path}: the writer is already closed")
        k = len(self._lengths)
        f = _fields(item)
        with self._naming(f"item {k}{f' ({item.name!r})' if item.name else ''}: "):
            if k >= MAX_ITEMS:
                raise _Bad(f"an archive holds at most {MAX_ITEMS:,} items; split the data over several")
            if len(item.payload) > MAX_PAYLOAD:
                raise _Bad(f"payload is {len(item.payload):,} bytes; the limit is {MAX_PAYLOAD:,}")
            values = self._values + math.prod(item.shape)
            if values > MAX_TOTAL_VALUES:
                raise _Bad(
                    f"the archive would hold {values:,} values in all; the limit is {MAX_TOTAL_VALUES:,}: "
                    "split the data over several archives"
                )
            fid = self._field_ids.get(f)
            if fid is None:
                _check_fields(f)
                fid = self._field_ids[f] = len(self._field_ids)
                self._field_enc.append(_encode_fields(f))
                self._index_bytes += len(self._field_enc[fid])  # the defaults may be these
            name = _text(item.name, "item name", MAX_NAME_BYTES)
            crc = zlib.crc32(item.payload, zlib.crc32(self._field_enc[fid] + name))  # as _item_crc
            # A record costs at most: length varint, flags, the fields in full, the name, the CRC.
            self._index_bytes += 11 + len(self._field_enc[fid]) + len(name) + 4
            if self._index_bytes > MAX_INDEX_BYTES:
                raise _Bad(
                    f"the index would pass {MAX_INDEX_BYTES:,} bytes; split the data over several archives"
                )
        try:
            self._file.write(item.payload)
        except OSError as e:  # a full disk, say: the archive cannot be finished
            self.abort()
            raise ArchiveError(f"cannot write the archive {self.path}: {e.strerror or e}") from None
        self._fids.append(fid)
        self._lengths.append(len(item.payload))
        self._crcs.append(crc)
        self._values = values
        if item.name:
            self._names[k] = item.name
        return k

    def close(self) -> None:
        """Write the index and trailer and move the archive into place. Calling it twice does nothing."""
        if self._done:
            return
        try:
            index = self._index()
            self._file.write(index)
            self._file.write(TRAILER.pack(len(index), zlib.crc32(index), END))
            self._file.close()
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise ArchiveError(f"cannot write the archive {self.path}: {e.strerror or e}") from None
            raise
        self._done = True
        try:
            self._atomic.__exit__(None, None, None)  # the rename into place
        except OSError as e:
            raise ArchiveError(f"cannot write the archive {self.path}: {e.strerror or e}") from None

    def abort(self) -> None:
        """Discard everything written so far; ``path`` keeps whatever it held before."""
        if self._done:
            return
        self._done = True
        self._file.close()
        with contextlib.suppress(_Abort):
            self._atomic.__exit__(_Abort, _Abort(), None)

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temporary file behind.
        if not getattr(self, "_done", True):
            self.abort()

    def _index(self) -> bytes:
        by_id = list(self._field_ids)  # fid -> fields
        counts = Counter(self._fids)
        defaults = by_id[counts.most_common(1)[0][0]] if counts else ((), "uint8", (), 0, False)
        # The flags byte and overriding fields of each distinct combination, computed once.
        extra: list[tuple[int, bytes]] = []
        for f in by_id:
            flags, parts = 0, []
            if f[0] != defaults[0]:
                flags, parts = flags | _SHAPE, [*parts, _ints(f[0])]
            if f[1] != defaults[1]:
                flags, parts = flags | _DTYPE, [*parts, _text(f[1], "dtype", MAX_DTYPE_CHARS)]
            if f[2] != defaults[2]:
                flags, parts = flags | _PADDING, [*parts, _ints(f[2])]
            if f[3] != defaults[3]:
                flags, parts = flags | _QUALITY, [*parts, varint(f[3])]
            if f[4] != defaults[4]:
                flags |= _LOSSLESS
            extra.append((flags, b"".join(parts)))
        out = bytearray(varint(len(self._lengths)) + _encode_fields(defaults))
        names = self._names
        for k, (fid, n, crc) in enumerate(zip(self._fids, self._lengths, self._crcs, strict=True)):
            flags, parts = extra[fid]
            name = names.get(k)
            if name:
                flags |= _NAME
                parts += _text(name, "item name", MAX_NAME_BYTES)
            if flags:
                out += varint(n << 1 | 1)
                out.append(flags)
                out += parts
            else:
                out += varint(n << 1)
            out += crc.to_bytes(4, "little")
        return bytes(out)


class _Abort(Exception):
    """Thrown into atomic_path to make it discard the temporary file."""


# -- reading ------------------------------------------------------------------------------------------------


class ArchiveReader:
    """Read a ``.aez`` archive: the header and index at open, each item's payload only when asked for.

    ``source`` is a path or a seekable binary file object (left open when the reader closes). ``r[k]``
    reads item k's payload and checks its CRC32; ``iter(r)`` reads the items in order.
    """

    def __init__(self, source: str | os.PathLike | BinaryIO) -> None:
        if isinstance(source, str | os.PathLike):
            self.path = Path(source)
            try:
                self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            except FileNotFoundError:
                raise ArchiveError(f"archive {self.path} does not exist") from None
            except IsADirectoryError:
                raise ArchiveError(f"{self.path} is a folder, not an .aez archive") from None
            except OSError as e:
                raise ArchiveError(f"cannot open archive {self.path}: {e.strerror or e}") from None
            self._owns = True
        else:
            self.path = Path(getattr(source, "name", "<archive>"))
            self._file, self._owns = source, False
        try:
            self._open()
        except _Bad as e:
            self.close()
            raise ArchiveError(f"{self.path} is not a readable .aez archive: {e}") from None
        except ArchiveError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise ArchiveError(f"cannot read archive {self.path}: {e.strerror or e}") from None

    def _read_at(self, pos: int, n: int, what: str) -> bytes:
        self._file.seek(pos)
        b = self._file.read(n)
        if len(b) != n:
            raise _Bad(f"{what} is cut short (the file changed while it was being read?)")
        return b

    def _open(self) -> None:
        f = self._file
        size = f.seek(0, io.SEEK_END)
        head = self._read_at(0, min(size, 16), "the start")
        if not head.startswith(MAGIC):
            raise ArchiveError(
                f"{self.path} is not an .aez archive: {_looks_like(head)}. "
                "Archives are made by `aekit compress` (or aekit.codec.container.ArchiveWriter)"
            )
        if len(head) < len(MAGIC) + 1:
            raise _Bad("the file is truncated: it ends right after the magic bytes")
        version = head[len(MAGIC)]
        if version > VERSION:
            raise ArchiveError(
                f"{self.path} is an .aez archive of format version {version}, newer than this aekit reads "
                f"(version {VERSION}): upgrade aekit (pip install -U aekit) to read it, "
                "unless the file is damaged"
            )
        if version == 0:
            raise _Bad("its format version is 0, which no aekit writes")
        self.version = version
        c = _Cursor(head, len(MAGIC) + 1)
        try:
            body_len = c.varint("header length", MAX_HEADER_BYTES)
        except _Bad:
            raise _Bad("the header is truncated or damaged (its length field is unreadable)") from None
        header_end = c.pos + body_len + 4
        if header_end + TRAILER.size > size:
            raise _Bad(
                f"the file is truncated or damaged: its header needs {header_end + TRAILER.size:,} bytes "
                f"at least, but the file has {size:,}"
            )
        header = self._read_at(0, header_end, "the header")
        if zlib.crc32(header[:-4]) != int.from_bytes(header[-4:], "little"):
            raise _Bad("the header is damaged (checksum mismatch)")
        c = _Cursor(header, c.pos, header_end - 4)
        self.codec_name = c.text("codec name", MAX_NAME_BYTES)
        self.fingerprint = c.take(FINGERPRINT_BYTES, "codec fingerprint")
        meta_json = c.text("meta JSON", MAX_META_BYTES)
        if c.left():
            raise _Bad(f"the header has {c.left()} unexpected bytes after the meta JSON")
        try:
            meta = json.loads(meta_json)
        except (ValueError, RecursionError):
            raise _Bad("the meta JSON in the header is not valid JSON") from None
        if not isinstance(meta, dict):
            raise _Bad(f"the meta JSON is a {type(meta).__name__}, not an object")
        self.meta: dict[str, Any] = meta

        index_len, index_crc, end = TRAILER.unpack(
            self._read_at(size - TRAILER.size, TRAILER.size, "the trailer")
        )
        if end != END:
            raise _Bad("the file is truncated or damaged: the end marker is missing (was a copy cut short?)")
        index_start = size - TRAILER.size - index_len
        if index_len > MAX_INDEX_BYTES or index_start < header_end:
            raise _Bad(f"the trailer gives an index of {index_len:,} bytes, which does not fit in the file")
        index = self._read_at(index_start, index_len, "the index")
        if zlib.crc32(index) != index_crc:
            raise _Bad("the index is damaged (checksum mismatch)")
        c = _Cursor(index)
        count = c.varint("item count", min(MAX_ITEMS, index_len // _MIN_RECORD))
        self._defaults = c.fields()
        # Walk every record now so a bad index fails at open; keep only where each record and payload starts.
        self._records = array("Q")
        self._offsets = array("Q", [header_end])
        pos = header_end
        self.total_values = 0  # what decoding every item gives, known before any payload is read
        for _ in range(count):
            self._records.append(c.pos)
            n, fields = _read_record(c, self._defaults)[:2]
            pos += n
            if pos > index_start:
                raise _Bad("the index gives payloads longer than the file holds")
            self._offsets.append(pos)
            self.total_values += math.prod(fields[0])
            if self.total_values > MAX_TOTAL_VALUES:
                raise _Bad(f"its items hold more than {MAX_TOTAL_VALUES:,} values in all, the limit")
        if c.left():
            raise _Bad(f"the index has {c.left()} unexpected bytes after its last record")
        if pos != index_start:
            raise _Bad(
                f"the index accounts for {pos - header_end:,} payload bytes "
                f"but the file holds {index_start - header_end:,}"
            )
        self._index = index

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, k: int) -> Item:
        n = len(self._records)
        if not -n <= k < n:
            raise IndexError(f"item {k} is out of range: {self.path} holds {n} item(s)")
        k %= n
        _, fields, name, crc = _read_record(_Cursor(self._index, self._records[k]), self._defaults)
        start, stop = self._offsets[k], self._offsets[k + 1]
        try:
            payload = self._read_at(start, stop - start, f"item {k}")
        except _Bad as e:
            raise ArchiveError(f"cannot read {self.path}: {e}") from None
        except OSError as e:
            raise ArchiveError(f"cannot read item {k} of {self.path}: {e.strerror or e}") from None
        if _item_crc(fields, name, payload) != crc:
            label = f" ({name!r})" if name else ""
            raise ArchiveError(f"{self.path}: item {k}{label} is damaged (checksum mismatch)")
        return Item(*fields, payload=payload, name=name)

    def __iter__(self) -> Iterator[Item]:
        for k in range(len(self)):
            yield self[k]

    def close(self) -> None:
        if self._owns:
            self._file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArchiveReader({str(self.path)!r}: {len(self)} item(s), codec {self.codec_name!r})"
