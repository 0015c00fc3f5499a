"""Which torch device to run on: its own module so that every estimator (and the CLI) can pick one
without importing another estimator."""

from __future__ import annotations


def resolve_device(device: str) -> str:
    """'auto' picks cuda, then Apple's mps, then the CPU; any other name is returned as given."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
