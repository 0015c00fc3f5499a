"""Per-image quality search: the largest file under a size target, or the smallest that reaches a PSNR.

``ImageCodec.compress(..., target_bpp=X)`` gives each image the highest quality whose coded payload is at
most X bits per pixel; ``target_psnr=D`` the lowest quality whose decoded image is at least D dB from the
original. Both bisect the quality ladder: about log2(n) real encodes per image (and, for a PSNR target,
as many real decodes), never a model's estimate, so the chosen item is exactly what the target was
checked on. A ladder whose sizes or PSNRs are not monotone still gets an item at a boundary (its quality
meets the target and the next one up, or down, does not), just not necessarily the best one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aekit.codec.container import Item
from aekit.errors import ConfigError

UNITS = {"bpp": "bits per pixel", "psnr": "dB PSNR"}


@dataclass(frozen=True)
class Target:
    """At most ``value`` bits per pixel ("bpp"), or at least ``value`` dB PSNR ("psnr"), per image."""

    kind: Literal["bpp", "psnr"]
    value: float

    def met(self, item: Item, image: np.ndarray, decode: Callable[[Item], np.ndarray]) -> bool:
        if self.kind == "bpp":
            return bits_per_pixel(item) <= self.value
        return psnr(image, decode(item)) >= self.value


def check(target_bpp: Any, target_psnr: Any, quality: Any, lossless: bool) -> Target | None:
    """The target asked for (None: none), refusing values and combinations that cannot mean anything."""
    given = {k: v for k, v in (("bpp", target_bpp), ("psnr", target_psnr)) if v is not None}
    if not given:
        return None
    if len(given) == 2:
        raise ConfigError(
            "target_bpp and target_psnr each pick every image's quality (the largest file under a size, "
            "the smallest one that reaches a PSNR); give one of them."
        )
    kind, value = given.popitem()
    option = f"target_{kind}={value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{option} must be a number of {UNITS[kind]}, e.g. target_{kind}=0.5.")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{option} must be a finite number of {UNITS[kind]} above 0.")
    if lossless:
        raise ConfigError(
            f"lossless=True codes every pixel exactly, whatever the size; {option} picks a lossy or "
            "near-lossless quality per image instead. Give one of them."
        )
    if quality is not None:
        raise ConfigError(
            f"quality={quality!r} fixes every image's quality; {option} picks one per image. Give one of "
            "them (leave quality at None)."
        )
    return Target(kind, float(value))


def search(
    target: Target,
    image: np.ndarray,
    n: int,
    encode: Callable[[int], Item],
    decode: Callable[[Item], np.ndarray],
) -> Item:
    """``image``'s item at the quality 1..n that ``target`` picks, by bisection over the ladder.

    A bpp target takes the highest quality within it (quality 1 when none is: the item shows by how
    much it misses); a PSNR target the lowest that reaches it (quality n when none does).
    """
    items: dict[int, Item] = {}

    def tried(q: int) -> Item:
        items[q] = encode(q)
        return items[q]

    if target.kind == "bpp":
        first_over = first(lambda q: not target.met(tried(q), image, decode), n)
        return items[max(1, first_over - 1)]
    return items[min(n, first(lambda q: target.met(tried(q), image, decode), n))]


def first(predicate: Callable[[int], bool], n: int) -> int:
    """The first q in 1..n where ``predicate`` holds after it failed at q - 1 (n + 1: none found).

    Bisection with ``predicate`` taken as False at 0 and True at n + 1, so it runs ceil(log2(n + 1))
    times, each q at most once, and both q (unless n + 1) and q - 1 (unless 0) were evaluated: on a
    monotone predicate the first q where it holds, on any other a q where it turns from False to True.
    """
    lo, hi = 0, n + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return hi


def bits_per_pixel(item: Item) -> float:
    """The item's coded payload in bits per pixel (per position, whatever the channels)."""
    return len(item.payload) * 8 / (item.shape[0] * item.shape[1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images or stacks (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
