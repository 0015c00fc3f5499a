"""Images in and out of the dashboard: arrays to PNG data URLs, and uploads checked before they are decoded.

Every image the API returns is a PNG data URL. Uploads (files or data URLs) are refused above
``MAX_UPLOAD_BYTES`` or ``MAX_SIDE`` pixels a side, and those for compress and restore above
``MAX_APPLY_PIXELS`` pixels (413), before Pillow decodes the pixels: the header alone gives the size, so a
small file that claims a huge image (a 49 KB black PNG can be 4096 x 4096) never fills memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import math

import numpy as np
from PIL import Image, UnidentifiedImageError

from aekit.dashboard.errors import TooLarge
from aekit.errors import DataError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_SIDE = 4096
# compress and restore run a network over every pixel: the photo codec took 18 s and 0.75 GB for 2
# megapixels on two busy CPU cores, and 108 s and 5 GB for 4096 x 4096, which MAX_SIDE alone lets in
MAX_APPLY_PIXELS = 2048 * 1024
DATA_URL_PREFIX = "data:image/png;base64,"
# Pillow's mode for each channel count of a sample; the upload is converted to it.
MODES = {1: "L", 3: "RGB"}


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) -> PNG file bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, "PNG")
    return buf.getvalue()


def data_url(image: np.ndarray) -> str:
    """uint8 (H, W) or (H, W, 3) -> "data:image/png;base64,..."."""
    return DATA_URL_PREFIX + base64.b64encode(png_bytes(image)).decode("ascii")


def display_range(x: np.ndarray) -> tuple[float, float]:
    """The value range that maps a data set's samples to 0..255: (0, 255) for uint8, (0, 1) for data in
    [0, 1], else the data's own minimum and maximum (so inputs and outputs share one brightness scale)."""
    if x.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1.0


def to_uint8(sample: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """One sample in its data's layout -> a uint8 picture: (H, W) / (H, W, 3) as they are, a table row
    (D,) as a one-pixel-high strip, a single channel (H, W, 1) as grayscale."""
    arr = np.asarray(sample, np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]  # (1, D)
    if arr.ndim == 3 and arr.shape[-1] not in (3,):
        arr = arr[..., 0]
    lo, hi = value_range
    return np.clip(np.rint((arr - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def from_unit(image: np.ndarray, value_range: tuple[float, float], dtype: str) -> np.ndarray:
    """A picture with values in [0, 1] -> values in the data's range and dtype (the inverse of to_uint8)."""
    lo, hi = value_range
    values = lo + np.asarray(image, np.float64) * (hi - lo)
    if dtype == "uint8":
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(np.float32)


def decode_upload(
    data: bytes,
    what: str = "the uploaded image",
    channels: int | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """The bytes of a PNG/JPEG/... file -> uint8 (H, W) or (H, W, 3), converted to ``channels`` if given.

    Too large (bytes, side, or more than ``max_pixels`` pixels): TooLarge (413). Not an image, or
    damaged: DataError (400) saying so.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"{what} is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. "
            "Send a smaller or more compressed image."
        )
    if not data:
        raise DataError(f"{what} is empty; choose a PNG or JPEG file.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_size(im.size, what, max_pixels)  # from the header, before any pixel is decoded
            grey = im.mode in ("1", "L", "LA", "I;16")
            mode = MODES.get(channels) if channels else ("L" if grey else "RGB")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = _flatten_alpha(im)
            return np.asarray(im.convert(mode))
    except TooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Image.open refuses (or, under a warnings filter, warns as an error about) a header that claims
        # tens of millions of pixels before it hands us the size
        raise TooLarge(
            f"{what} claims more pixels than Pillow will decode (a decompression bomb?); the limit is "
            f"{MAX_SIDE}x{MAX_SIDE}. Resize it first."
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"{what} is not an image Pillow can read; send a PNG or JPEG file.") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not decode {what} as an image ({reason}); send a PNG or JPEG file.") from None


def _check_size(size: tuple[int, int], what: str, max_pixels: int | None) -> None:
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE:
        raise TooLarge(
            f"{what} is {width}x{height} pixels; the limit is {MAX_SIDE}x{MAX_SIDE}. Resize it first."
        )
    if max_pixels is not None and width * height > max_pixels:
        square = math.isqrt(max_pixels)
        raise TooLarge(
            f"{what} is {width}x{height} = {width * height:,} pixels; this takes at most {max_pixels:,} "
            f"pixels ({square}x{square} for a square image). Resize it first."
        )


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """Transparent pixels over black: a canvas drawing exported with a transparent background then has
    the dark background the data's digits have, rather than whatever colour its invisible pixels hold."""
    rgba = im.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def decode_data_url(text: str, what: str = "the image", channels: int | None = None) -> np.ndarray:
    """ "data:image/...;base64,..." -> uint8 image (see ``decode_upload``)."""
    if not isinstance(text, str) or not text.startswith("data:image/") or ";base64," not in text[:100]:
        raise DataError(
            f"{what} must be an image data URL such as 'data:image/png;base64,...' "
            "(canvas.toDataURL() gives one)."
        )
    payload = text.split(",", 1)[1]
    if len(payload) > MAX_UPLOAD_BYTES * 4 // 3 + 4:  # base64 grows 4/3: refuse before decoding
        raise TooLarge(f"{what} is over {MAX_UPLOAD_BYTES // 2**20} MB; send a smaller image.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DataError(
            f"{what} is not valid base64 after 'base64,'; send what canvas.toDataURL() gives."
        ) from None
    return decode_upload(data, what, channels)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W[, 3]) -> (height, width[, 3]), averaging over the area each new pixel covers."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BOX))
