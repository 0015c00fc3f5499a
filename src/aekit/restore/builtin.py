"""Built-in restoration models, shipped inside the package: ``aekit restore denoise in.png -o out.png`` and
``ImageRestorer.pretrained("denoise")`` need no training.

Each is a name and a model file under ``aekit/restore/weights/`` (package data). How each was trained, on
which images, and what it scores against the classical tools: ``bench/train_restore_builtin.py``,
``bench/restore_builtin.py`` and their records in ``bench/results/``.
"""

from __future__ import annotations

from pathlib import Path

from aekit.builtins import Builtins
from aekit.errors import ConfigError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
UPSCALES = (2, 4)  # the factors with a built-in model

RESTORERS = Builtins(
    WEIGHTS_DIR,
    {
        "denoise": (
            "denoise.aek",
            "blind Gaussian denoising of RGB or grayscale photographs, noise sigma 0-50 on the 0-255 scale "
            "(estimated from the image, or given)",
        ),
        "upscale-x2": ("upscale-x2.aek", "2x enlargement of RGB or grayscale photographs"),
        "upscale-x4": ("upscale-x4.aek", "4x enlargement of RGB or grayscale photographs"),
        "inpaint": ("inpaint.aek", "fills the masked pixels of RGB or grayscale photographs"),
        "colorize": ("colorize.aek", "grayscale photograph -> colour, keeping its luminance"),
    },
    "bench/train_restore_builtin.py",
)


def builtin_names() -> list[str]:
    """The names that pick a built-in model, sorted ("upscale" with a scale stands for upscale-x2/x4)."""
    return sorted([*RESTORERS.names(), "upscale"])


def is_builtin(name: object) -> bool:
    """True when ``name`` is a built-in model's name (a str, not a path to a model file)."""
    return name == "upscale" or name in RESTORERS


def builtin_for(name: str, scale: int | None = None) -> str:
    """The built-in model a name means: "upscale" with scale 2 or 4 is upscale-x2 or upscale-x4."""
    if name == "upscale":
        scale = 2 if scale is None else scale
        if scale not in UPSCALES:
            raise ConfigError(
                f"there is no built-in upscale model for scale {scale}; built-in scales: "
                f"{', '.join(map(str, UPSCALES))} (train one: aekit train --task upscale --scale {scale} "
                "...)."
            )
        return f"upscale-x{scale}"
    if name.startswith("upscale-x") and scale is not None and name != f"upscale-x{scale}":
        raise ConfigError(
            f"{name} enlarges {name[len('upscale-x') :]}x, not {scale}x; give 'upscale' with the scale."
        )
    return name
