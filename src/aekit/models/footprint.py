"""How much memory a model will take, worked out before a single weight is allocated.

The model is built on PyTorch's "meta" device, where tensors have shapes but no storage: building even a
model with a trillion weights there costs microseconds, and a forward pass on a meta batch gives every
activation's shape. So a setting that cannot fit (``code_size=10**9``, the default dense model on a
photograph) is refused with one line before the allocator would fail or the kernel kill the process.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.models.registry import FAMILIES, build_model

# Training holds each weight four times (value, gradient, Adam's two moments) ...
TRAINING_COPIES = 4
# ... and each activation about twice (the output autograd keeps, and its gradient in the backward pass).
ACTIVATION_COPIES = 2


def meta_model(
    family: str, settings: dict, registry: dict[str, type[nn.Module]] = FAMILIES, **options
) -> nn.Module:
    """The model ``build_model`` would build, with shapes only: nothing is allocated."""
    with torch.device("meta"):
        return build_model(family, settings, registry, **options)


def parameter_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def activation_bytes(model: nn.Module, batch: tuple[int, ...]) -> int:
    """Bytes of every module's output for one forward pass on a batch of shape ``batch`` (meta model)."""
    total = 0

    def count(module: nn.Module, args: tuple, out: object) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor) and not list(module.children()):  # leaves: no double counting
            total += out.numel() * out.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty(batch, device="meta"))
    except (RuntimeError, NotImplementedError):
        # Only the user's own networks (models/custom.py) can fail here: one that needs real values
        # (Tensor.item, shapes that depend on the data) cannot run on "meta". Count what ran before it.
        if getattr(model.config, "networks", None) is None:
            raise
    finally:
        for h in hooks:
            h.remove()
    return total


def training_bytes(model: nn.Module, batch: tuple[int, ...]) -> int:
    """About what training ``model`` (built by ``meta_model``) takes with Adam at batch shape ``batch``."""
    return TRAINING_COPIES * parameter_bytes(model) + ACTIVATION_COPIES * activation_bytes(model, batch)
