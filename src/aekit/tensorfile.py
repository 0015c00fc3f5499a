"""One safetensors file holding tensors plus a JSON document: the only way aekit stores state.

Model files and training checkpoints both use it. Nested structures (an optimizer's state dict, say)
are flattened: every tensor goes to the safetensors body under a path-like key and the rest to JSON,
so loading never unpickles anything. A SHA-256 over the tensor bytes and the JSON document catches
damaged files, which safetensors itself does not check.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aekit.atomic import atomic_path
from aekit.errors import ModelFileError

_TENSOR = "__tensor__"


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


def _digest(tensors: dict[str, torch.Tensor], header: str) -> str:
    h = hashlib.sha256()
    # The JSON document is covered too: it holds the data scaling, so one flipped digit there would
    # otherwise load without complaint and silently change every output.
    h.update(f"{len(header)}:".encode() + header.encode())
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
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load(path: str | os.PathLike, what: str = "model file") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by ``save``; any damage or foreign file is one ModelFileError."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"no such {what}: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{p} is not a readable aekit {what} (damaged, truncated or another format): {exc}"
        ) from None
    if "aekit" not in meta:
        raise ModelFileError(f"{p} is a safetensors file but not an aekit {what} (no aekit header).")
    if meta.get("sha256") != _digest(tensors, meta["aekit"]):
        raise ModelFileError(f"{p} is damaged: its weights or header do not match the checksum stored in it.")
    try:
        doc = json.loads(meta["aekit"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{p} is damaged: its header is not valid JSON ({exc}).") from None
    if not isinstance(doc, dict):  # callers read it with .get; anything else is not one of our files
        kind = type(doc).__name__
        raise ModelFileError(f"{p} is not an aekit {what}: its header is a JSON {kind}, not an object.")
    return tensors, doc
