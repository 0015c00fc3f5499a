"""Built-in codecs shipped inside the package: ``aekit compress photo in.png -o in.aez`` needs no model file.

A built-in model is a name in ``BUILTIN_MODELS`` and a model file under ``aekit/codec/weights/`` (package
data, so it ships in the wheel). The CLI and ``ImageCodec`` take such a name wherever they take a model
path, and an archive made with one records the name, not a path, so it decompresses on any machine that has
the same aekit. How each model was trained: ``bench/train_photo_codec.py`` and ``bench/results/``.
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
