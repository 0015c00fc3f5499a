"""One image through a learned codec and through Pillow's JPEG and WebP at the size nearest to it.

The conventions are bench/pillow_codecs.py's: every byte of the file counts (headers included), the
decoded image is converted back to the input's mode, PSNR is scikit-image's with a peak of 255.
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aekit.dashboard import images

# Pillow format -> its quality range; quality 0 is left out: some Pillow builds treat it as "default"
FORMATS = {"jpeg": ("JPEG", 1, 100), "webp": ("WEBP", 1, 100)}


def _psnr(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """PSNR in dB; None for an exact copy (infinite PSNR, which JSON cannot hold)."""
    from aekit.restore import psnr

    value = psnr(reference, decoded)
    return None if math.isinf(value) else value


def _result(reference: np.ndarray, decoded: np.ndarray, size: int) -> dict[str, Any]:
    return {"bytes": int(size), "psnr": _psnr(reference, decoded), "image": images.data_url(decoded)}


def learned(codec, image: np.ndarray, quality: int, codec_name: str) -> dict[str, Any]:
    """The codec's .aez archive of ``image``: its size in bytes, PSNR and the decoded image."""
    with tempfile.TemporaryDirectory(prefix="aekit-dashboard-") as tmp:
        archive = Path(tmp) / "upload.aez"
        size = codec.compress_to(archive, [image], quality=quality, codec_name=codec_name)
        decoded = codec.decompress(archive)[0]
    return _result(image, decoded, size)


def _encode(fmt: str, image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, quality=int(quality))
    return buf.getvalue()


def pillow_nearest(name: str, image: np.ndarray, target_bytes: int) -> dict[str, Any]:
    """Pillow's ``name`` ("jpeg"/"webp") at the quality whose file size is nearest ``target_bytes``.

    File size grows with quality (almost always), so a binary search finds the crossing in about seven
    encodes; the nearer of the two qualities around it wins.
    """
    fmt, lo, hi = FORMATS[name]
    sizes: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in sizes:
            sizes[q] = _encode(fmt, image, q)
        return len(sizes[q])

    while lo < hi:  # the smallest quality whose file is at least the target
        mid = (lo + hi) // 2
        if size(mid) < target_bytes:
            lo = mid + 1
        else:
            hi = mid
    candidates = [q for q in (lo - 1, lo) if q >= FORMATS[name][1]]
    best = min(candidates, key=lambda q: (abs(size(q) - target_bytes), q))
    with Image.open(io.BytesIO(sizes[best])) as im:
        decoded = np.asarray(im.convert("L" if image.ndim == 2 else "RGB"))
    return {**_result(image, decoded, len(sizes[best])), "quality": best}
