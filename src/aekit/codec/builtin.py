"""Built-in codecs shipped inside the package: ``aekit compress photo in.png -o in.aez`` needs no model file.

A built-in model is a name in ``BUILTIN_MODELS`` and a model file under ``aekit/codec/weights/`` (package
data, so it ships in the wheel). The CLI and ``ImageCodec`` take such a name wherever they take a model
path, and an archive made with one records the name, not a path, so it decompresses on any machine that has
the same aekit. How each model was trained: ``bench/train_photo_codec.py`` and ``bench/results/``.

Two tables keep a name's promises as its models change:

- ``GRAY_TWINS``: a built-in for RGB photos hands grayscale ones to its grayscale twin, which codes one
  channel natively (``aekit compress photo scan.png`` uses ``photo-gray``, and the archive records that).
- ``EARLIER``: when a name gets a new model, the old file stays under a dated name, and an archive that
  records the name with the old model's fingerprint decodes with it.
"""

from __future__ import annotations

from pathlib import Path

from aekit.builtins import Builtins

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# name -> (file under weights/, what it is for)
BUILTIN_MODELS: dict[str, tuple[str, str]] = {
    "photo": (
        "photo.aek",
        "general RGB photo codec (4-stage GDN transform, 8 quality levels, lossless mode); trained on "
        "scikit-image/matplotlib sample photographs and CIFAR-10, never on Kodak",
    ),
}
# name -> the built-in that codes its grayscale images, once that one is listed above. The hyperprior
# photo codecs ('photo' and its twin 'photo-gray', bench/train_photo_codec.py) are still training.
GRAY_TWINS: dict[str, str] = {"photo": "photo-gray"}
# name -> the dated built-ins that held the name before its current model, newest first (a retrained
# 'photo' keeps the first one as 'photo-2026-11').
EARLIER: dict[str, tuple[str, ...]] = {}
CODECS = Builtins(WEIGHTS_DIR, BUILTIN_MODELS, "bench/train_photo_codec.py")


def builtin_names() -> list[str]:
    """The names of the built-in models, sorted."""
    return CODECS.names()


def is_builtin(name: str | Path) -> bool:
    """True when ``name`` is the name of a built-in model (not a path to a model file)."""
    return name in CODECS


def builtin_path(name: str) -> Path:
    """The model file of built-in ``name``; ModelFileError if there is no such name or its file is missing."""
    return CODECS.path(name)


def gray_twin(name: str) -> str | None:
    """The built-in that codes grayscale images for built-in ``name`` (None: it has none installed)."""
    twin = GRAY_TWINS.get(name)
    return twin if twin in CODECS and (WEIGHTS_DIR / BUILTIN_MODELS[twin][0]).is_file() else None


def earlier(name: str) -> tuple[str, ...]:
    """The dated built-ins that held ``name`` before its current model, newest first."""
    return EARLIER.get(name, ())
