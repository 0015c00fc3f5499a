"""The model variants the tests run over, read from the registry so a new family is tested automatically."""

from __future__ import annotations

import dataclasses
import itertools
import typing

from aekit.errors import ConfigError
from aekit.models import FAMILIES, ModelConfig
from aekit.models.registry import input_layout


def family_variants() -> list[tuple[str, dict[str, typing.Any]]]:
    """(family, settings) for every family and every valid combination of its own Literal settings
    (downsample="pool" with backbone="dense" is refused, so it is left out)."""
    base = {f.name for f in dataclasses.fields(ModelConfig)}
    variants = []
    for name, cls in FAMILIES.items():
        hints = typing.get_type_hints(cls.config_class)
        own = {
            f.name: typing.get_args(hints[f.name])
            for f in dataclasses.fields(cls.config_class)
            if f.name not in base and typing.get_origin(hints[f.name]) is typing.Literal
        }
        for combo in itertools.product(*own.values()):
            settings = dict(zip(own, combo, strict=True))
            try:
                cls.config_class(input_shape=(1,), **settings).validate()
            except ConfigError:
                continue
            variants.append((name, settings))
    return variants


def layout(family: str, settings: dict[str, typing.Any]) -> str:
    """The input a variant takes: "flat" (anything), "image" (C, H, W) or "series" (C, T)."""
    return input_layout(family, settings.get("backbone"))


def is_conv(family: str, settings: dict[str, typing.Any]) -> bool:
    return (settings.get("backbone") or getattr(FAMILIES[family].config_class, "backbone", "dense")) == "conv"
