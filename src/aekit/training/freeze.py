"""Holding part of a network fixed while the rest trains (fine-tuning from a starting model)."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def freeze(model: nn.Module, prefixes: Iterable[str]) -> list[str]:
    """Turn off gradients for every parameter under one of ``prefixes`` (qualified module names, matched
    whole: "enc" holds "enc.0.weight", not "encoder.0.weight"); return the frozen parameters' names.

    A frozen parameter gets no gradient, so the trainer's optimizer skips it (weight decay included) and
    it stays bit-identical.
    """
    parts = tuple(prefixes)
    frozen = []
    for name, p in model.named_parameters():
        if any(name == part or name.startswith(part + ".") for part in parts):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen
