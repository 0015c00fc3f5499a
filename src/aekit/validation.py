"""Checks every estimator shares on its arguments (as in ``sklearn.utils.validation``): the seed a
``random_state`` stands for, and a batch of images."""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.errors import DataError


def seed_of(random_state: Any) -> int:
    """The integer seed for ``random_state``: None draws fresh entropy (the global RNG is left alone), a
    ``RandomState`` gives its next draw, an integer is itself."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


def image_list(images: Any) -> list:
    """Images as a list: an array (N, H, W) or (N, H, W, C) split along N, or a non-empty list/tuple."""
    if isinstance(images, list | tuple):
        if not images:
            raise DataError("got an empty list of images; give at least one image")
        return list(images)
    arr = np.asarray(images)
    if arr.ndim not in (3, 4) or arr.size == 0:
        raise DataError(
            "expected images as an array (N, H, W) or (N, H, W, 3), or a list of images; "
            f"got shape {arr.shape}"
        )
    return list(arr)
