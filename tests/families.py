"""The model variants the tests run over, read from the registry so a new family is tested automatically."""

from __future__ import annotations

import dataclasses
import itertools
import typing

from aekit.models import FAMILIES, ModelConfig


def family_variants() -> list[tuple[str, dict[str, typing.Any]]]:
    """(family, settings) for every family and every combination of its own Literal settings."""
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
            variants.append((name, dict(zip(own, combo, strict=True))))
    return variants


def is_conv(family: str, settings: dict[str, typing.Any]) -> bool:
    return (settings.get("backbone") or getattr(FAMILIES[family].config_class, "backbone", "dense")) == "conv"
