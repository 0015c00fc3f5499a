"""One safetensors file holding tensors plus a JSON document: the only way aekit stores state.

Model files, codecs, detectors and training checkpoints all use it. Nested structures (an optimizer's
state dict, say) are flattened: every tensor goes to the safetensors body under a path-like key and the
rest to JSON, so loading never unpickles anything. A SHA-256 over the tensor bytes and the JSON document
catches damaged files, which safetensors itself does not check.

Anyone can write a header and recompute that checksum, so a file is untrusted until ``_open`` and
``load_networks`` have checked it, before anything is allocated from it: the safetensors header's size,
and that the tensors it declares fill the file exactly; the checksum, streamed from disk; the JSON
document's size and nesting depth; then, for loaders that build networks, the loader's own ``check`` of
the document (format, version, every name against its registry), which returns builders. Each network is
built on the "meta" device (shapes, no storage), must declare exactly the tensors and shapes the file
holds, and loading must fit the memory left. A 50 KB file whose settings ask for a 5 GB network is
refused in milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.modules.module import (
    register_module_buffer_registration_hook,
    register_module_module_registration_hook,
    register_module_parameter_registration_hook,
)

from aekit import memory
from aekit.atomic import atomic_path
from aekit.errors import AekitError, ModelFileError

_TENSOR = "__tensor__"
# The largest header read (safetensors' own limit is 100 MB). Real ones are far smaller: standard scaling
# of 256x256 RGB images, the largest per-feature data aekit stores, takes 8 MB. Parsed JSON can take ~20x
# its size in Python objects, so this also bounds what reading the header costs.
MAX_HEADER_BYTES = 32 << 20
# Deeper JSON is refused: aekit writes at most ~15 levels (an optimizer state in a checkpoint), and the
# readers of the document recurse.
MAX_DEPTH = 64
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class Declared:
    """A tensor as the safetensors header declares it; ``start``/``end`` are byte offsets in the body."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int


# A loader's check: reads the document (and the declared tensors) and returns, per tensor-name prefix,
# a function that builds the network stored under it. Raising AekitError, KeyError, TypeError or
# ValueError says the header is damaged or mismatched.
Check = Callable[[dict[str, Any], dict[str, Declared]], dict[str, Callable[[], nn.Module]]]


# -- flattening ---------------------------------------------------------------------------------------------
def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Return a JSON-able copy of ``obj`` in which each tensor is replaced by a reference into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "tensor"
        while key in tensors:  # keys 1 and "1" (or "a.b" and a nested a/b) give the same path: keep both
            key += "'"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        return {
            "__dict__": [[flatten(k, tensors), flatten(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]
        }
    if isinstance(obj, list | tuple):
        items = [flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a tensor file")


def unflatten(doc: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of ``flatten``."""
    if isinstance(doc, dict):
        if _TENSOR in doc:
            return tensors[doc[_TENSOR]]
        if "__tuple__" in doc:
            return tuple(unflatten(v, tensors) for v in doc["__tuple__"])
        return {unflatten(k, tensors): unflatten(v, tensors) for k, v in doc["__dict__"]}
    if isinstance(doc, list):
        return [unflatten(v, tensors) for v in doc]
    return doc


# -- writing ------------------------------------------------------------------------------------------------
def _digest_start(header: str) -> Any:
    h = hashlib.sha256()
    # The JSON document is covered too: it holds the data scaling, so one flipped digit there would
    # otherwise load without complaint and silently change every output.
    h.update(f"{len(header)}:".encode() + header.encode())
    return h


def _digest(tensors: dict[str, torch.Tensor], header: str) -> str:
    h = _digest_start(header)
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
    """Write ``tensors`` and the JSON document ``doc`` to ``path`` atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    header = json.dumps(doc)
    meta = {"aekit": header, "sha256": _digest(tensors, header)}
    size = len(json.dumps(meta)) + 100 * len(tensors)  # about what the safetensors header will take
    if size > MAX_HEADER_BYTES:  # a file that load would refuse is not written
        raise ModelFileError(
            f"cannot save {path}: its header would take {size / 2**20:.0f} MiB, more than the "
            f"{MAX_HEADER_BYTES >> 20} MiB a file's header may have; per-feature scaling of very large "
            "inputs is the usual cause: use scaling='minmax' on images, or smaller inputs."
        )
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


# -- reading ------------------------------------------------------------------------------------------------
def read_header(path: str | os.PathLike, what: str = "model file") -> tuple[dict[str, Declared], dict]:
    """The tensors a file declares and its JSON document, checked (checksum included), without reading
    the tensors into memory."""
    return _open(Path(path), what)


def load(path: str | os.PathLike, what: str = "model file") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by ``save``; any damage or foreign file is one ModelFileError."""
    p = Path(path)
    declared, doc = _open(p, what)
    _check_memory(p, what, _body_bytes(declared), None)
    return _read_tensors(p, what), doc


def load_networks(
    path: str | os.PathLike, what: str, check: Check, mismatch: str | Callable[[dict], str | None] = ""
) -> tuple[dict[str, nn.Module], dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file and build the networks ``check`` finds in its document, with the file's weights loaded.

    Returns the networks (by prefix, in train mode, on the CPU), every tensor of the file, and the
    document. Nothing is built for real until the header has passed every check (see the module's
    docstring). ``mismatch`` replaces the start of the message for weights that do not fit the settings;
    a function of the (checked) document may give it, or None for the default.
    """
    p = Path(path)
    declared, doc = _open(p, what)
    builders = _checked(p, lambda: check(doc, declared))
    if callable(mismatch):
        mismatch = mismatch(doc)
    mismatch = mismatch or f"{p} is damaged or mismatched: its weights do not fit its settings"
    budget = 4 * len(declared) + 256  # modules and tensors a network of this many tensors may register
    metas = {prefix: _meta(p, build, budget, len(declared)) for prefix, build in builders.items()}
    for prefix, meta in metas.items():
        _compare(prefix, meta, declared, mismatch)
    network_bytes = sum(t.numel() * t.element_size() for m in metas.values() for t in m.state_dict().values())
    weights = sum(t.numel() for m in metas.values() for t in m.parameters())
    _check_memory(p, what, _body_bytes(declared) + network_bytes, weights)
    tensors = _read_tensors(p, what)
    networks = {}
    for prefix, build in builders.items():
        try:
            network = _checked(p, build)
        except (RuntimeError, MemoryError) as exc:  # the allocator, though the estimate said it would fit
            detail = str(exc).splitlines()[0] if str(exc) else "out of memory"
            raise ModelFileError(f"{p} could not be loaded into memory ({detail}).") from None
        state = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
        try:
            network.load_state_dict(state)
        except RuntimeError as exc:  # checked above; kept so that no torch traceback can reach the user
            raise ModelFileError(f"{mismatch} ({str(exc).splitlines()[0]}).") from None
        networks[prefix] = network
    return networks, tensors, doc


def _open(p: Path, what: str) -> tuple[dict[str, Declared], dict[str, Any]]:
    """The one gate every file passes: size, structure, checksum, then the JSON document's size and depth."""
    if p.is_dir():
        inside = sorted(f.name for f in p.glob("*.aek"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise ModelFileError(f"{p} is a folder, not a {what}; give the path of the .aek file in it{hint}.")
    if not p.exists():
        raise ModelFileError(f"no such {what}: {p}")
    if not p.is_file():  # a device or a pipe: reading it could block or never end
        raise ModelFileError(f"{p} is not a regular file, so not a {what}.")
    declared, meta, header_bytes = _safetensors_header(p, what)
    if "aekit" not in meta:
        raise ModelFileError(f"{p} is a safetensors file but not an aekit {what} (no aekit header).")
    if meta.get("sha256") != _file_digest(p, declared, meta["aekit"], header_bytes):
        raise ModelFileError(f"{p} is damaged: its weights or header do not match the checksum stored in it.")
    doc = _parse_json(p, meta["aekit"], "header")
    if not isinstance(doc, dict):  # callers read it with .get; anything else is not one of our files
        kind = type(doc).__name__
        raise ModelFileError(f"{p} is not an aekit {what}: its header is a JSON {kind}, not an object.")
    return declared, doc


def _unreadable(p: Path, what: str, why: str) -> ModelFileError:
    return ModelFileError(f"{p} is not a readable aekit {what} (damaged, truncated or another format): {why}")


def _safetensors_header(p: Path, what: str) -> tuple[dict[str, Declared], dict[str, str], int]:
    """Read and check the safetensors header ourselves: 8 bytes of little-endian length, then JSON."""
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _unreadable(p, what, f"{size} bytes, shorter than any safetensors file")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise _unreadable(
                p, what, f"its header claims {n:,} bytes; a header may have at most {MAX_HEADER_BYTES:,}"
            )
        if 8 + n > size:
            raise _unreadable(p, what, f"its header claims {n:,} bytes, but the file has {size:,}")
        raw = f.read(n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _unreadable(p, what, "its header is not UTF-8 text") from None
    header = _parse_json(p, text, "safetensors header", what)
    if not isinstance(header, dict):
        raise _unreadable(p, what, "its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _unreadable(p, what, "its metadata is not a table of strings")
    try:
        declared = {name: _declared(entry) for name, entry in header.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(p, what, f"a tensor entry is malformed ({exc})") from None
    # The tensors must fill the body exactly, one after another, as safetensors writes them: so the shapes
    # declared here account for every byte, and no shape can claim more data than the file holds.
    body, end = size - 8 - n, 0
    for name, d in sorted(declared.items(), key=lambda item: item[1].start):
        if d.start != end:
            raise _unreadable(p, what, f"tensor {name!r} starts at byte {d.start:,} of the data, not {end:,}")
        end = d.end
    if end != body:
        raise _unreadable(
            p, what, f"its tensors take {end:,} bytes, but the file holds {body:,} after the header"
        )
    return declared, meta, n


def _declared(entry: dict[str, Any]) -> Declared:
    dtype = _DTYPES[entry["dtype"]]
    shape = tuple(entry["shape"])
    start, end = entry["data_offsets"]
    if not all(type(v) is int and v >= 0 for v in (*shape, start, end)):
        raise ValueError(f"shape {list(shape)} and offsets [{start}, {end}] must be whole numbers >= 0")
    numel = 1
    for s in shape:
        numel *= s
    if end - start != numel * dtype.itemsize:
        raise ValueError(f"shape {list(shape)} of {entry['dtype']} needs {numel * dtype.itemsize:,} bytes")
    return Declared(dtype, shape, start, end)


def _file_digest(p: Path, declared: dict[str, Declared], header: str, header_bytes: int) -> str:
    """``_digest`` of the file's tensors, read from disk a chunk at a time: nothing is allocated for them."""
    h = _digest_start(header)
    with p.open("rb") as f:
        for key in sorted(declared):
            d = declared[key]
            h.update(f"{key}:{d.dtype}:{d.shape};".encode())
            f.seek(8 + header_bytes + d.start)
            left = d.end - d.start
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()


def _parse_json(p: Path, text: str, part: str, what: str = "") -> Any:
    too_deep = ModelFileError(
        f"{p} is damaged or hostile: its {part} nests JSON deeper than {MAX_DEPTH} levels; aekit never "
        "writes such a file."
    )
    try:
        doc = json.loads(text)
    except RecursionError:  # json's C parser recurses; Python stops it here
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        if what:
            raise _unreadable(p, what, f"its {part} is not valid JSON ({exc})") from None
        raise ModelFileError(f"{p} is damaged: its {part} is not valid JSON ({exc}).") from None
    if _depth(doc) > MAX_DEPTH:
        raise too_deep
    return doc


def _depth(doc: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), counted without recursion, stopping past MAX_DEPTH."""
    deepest, stack = 0, [(doc, 1)]
    while stack and deepest <= MAX_DEPTH:
        obj, depth = stack.pop()
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _read_tensors(p: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(p), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise _unreadable(p, what, str(exc) or type(exc).__name__) from None


def _body_bytes(declared: dict[str, Declared]) -> int:
    return sum(d.end - d.start for d in declared.values())


# -- networks -----------------------------------------------------------------------------------------------
def _checked(p: Path, fn: Callable[[], Any]) -> Any:
    """``fn()``, with what a bad header makes it raise turned into one ModelFileError naming the file."""
    try:
        return fn()
    except ModelFileError:
        raise
    except (AekitError, KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            detail = f"no {detail} in its header"
        raise ModelFileError(f"{p} is damaged or mismatched: {detail}") from None


class _TooMany(Exception):
    pass


_building = threading.local()  # .left: modules and tensors the meta build in this thread may still register


def _count(module: nn.Module, name: str, value: Any) -> None:
    left = getattr(_building, "left", None)
    if left is not None:
        if left <= 0:
            raise _TooMany
        _building.left = left - 1


# Registered once, for the life of the process: adding and removing hooks while another thread builds a
# module would change the dict torch is iterating over there. Outside ``_at_most`` the hook does nothing.
for _register in (
    register_module_module_registration_hook,
    register_module_parameter_registration_hook,
    register_module_buffer_registration_hook,
):
    _register(_count)


@contextlib.contextmanager
def _at_most(registrations: int) -> Iterator[None]:
    """Stop a build in this thread once it has registered more modules and tensors than ``registrations``:
    a header listing a million layers would otherwise take minutes and gigabytes even on "meta"."""
    _building.left = registrations
    try:
        yield
    finally:
        _building.left = None


def _meta(p: Path, build: Callable[[], nn.Module], budget: int, n_tensors: int) -> nn.Module:
    """The network ``build`` makes, on the meta device: every shape, no storage."""
    try:
        with _at_most(budget), torch.device("meta"):
            return _checked(p, build)
    except _TooMany:
        raise ModelFileError(
            f"{p} is damaged or mismatched: its settings describe a network far larger than the "
            f"{n_tensors} tensors the file holds."
        ) from None
    except RuntimeError as exc:  # torch refusing impossible sizes, e.g. a width of 2**70
        raise ModelFileError(f"{p} is damaged or mismatched: {str(exc).splitlines()[0]}") from None


def _compare(prefix: str, meta: nn.Module, declared: dict[str, Declared], mismatch: str) -> None:
    """The file must declare exactly the tensors, of exactly the shapes, that the settings imply."""
    expected = {prefix + name: tuple(t.shape) for name, t in meta.state_dict().items()}
    held = {name: d.shape for name, d in declared.items() if name.startswith(prefix)}
    for name, shape in expected.items():
        if name not in held:
            raise ModelFileError(f"{mismatch} (the settings need a tensor {name} that the file lacks).")
        if held[name] != shape:
            raise ModelFileError(
                f"{mismatch} ({name} is {_shape(shape)} by the settings, {_shape(held[name])} in the file)."
            )
    extra = sorted(set(held) - set(expected))
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise ModelFileError(
            f"{mismatch} (the file holds {extra[0]}{more}, which the settings have no place for)."
        )


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


# -- memory -------------------------------------------------------------------------------------------------
def _check_memory(p: Path, what: str, need: int, weights: int | None) -> None:
    left = memory.memory_left()
    if left is None or need <= left:
        return
    holds = f"holds {weights:,} weights; loading it" if weights is not None else "is large; reading it"
    raise ModelFileError(
        f"{p} {holds} takes about {memory.size_text(need)}, more than the {memory.size_text(left)} of "
        f"memory left to this process; open the {what} on a machine with more memory."
    )
