"""Reading and writing PNG/JPEG files (what ``aekit restore`` and ``aekit compress`` work on)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aekit.atomic import atomic_path
from aekit.data.files import IMAGE_SUFFIXES
from aekit.errors import DataError

# Pillow picks the format from the file name, but atomic writes go to a temporary name: say it outright.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95


def check_image_path(path: str | os.PathLike, what: str = "image") -> Path:
    p = Path(path).expanduser()
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{what} {p} is not a PNG or JPEG file (by its name); give a file ending in "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return p


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W) grayscale or (H, W, 3) RGB uint8; anything unreadable is one DataError."""
    from aekit.data import read_array

    p = check_image_path(path)
    if not p.is_file():
        raise DataError(f"no such image: {p}")
    return read_array(p)


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) image as PNG or JPEG (by the suffix), atomically."""
    from PIL import Image

    p = check_image_path(path, what="output")
    options = {"quality": JPEG_QUALITY} if FORMATS[p.suffix.lower()] == "JPEG" else {}
    with atomic_path(p) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(
            tmp, format=FORMATS[p.suffix.lower()], **options
        )
    return p


def image_files(folder: Path) -> list[Path]:
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"folder {folder} has no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)}); "
            "put the images directly in it (subfolders are not searched)"
        )
    return files
