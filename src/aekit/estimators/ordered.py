"""Ordered codes: one model whose every code prefix is a usable smaller code, by nested dropout.

While an ordered model trains, each sample keeps only a random prefix of its code, the units after it set
to zero before decoding (Rippel, Gelbart & Adams, "Learning ordered representations with nested dropout",
ICML 2014). Afterwards the error at every prefix length is the model's reconstruction curve, from which
``code_size="auto"`` picks the smallest width within a tolerance of the full code's error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aekit.errors import ConfigError, ModelFileError
from aekit.models.output import AEOutput

# code_size="auto" trains this many code units, or half the data's features if fewer (a code as wide as
# the input could just copy it, and the tolerance is relative to the full code's error), then keeps the
# prefix it needs. Generous: on MNIST the curve is flat after about 30 units and "auto" keeps 27.
AUTO_MAX_CODE = 64
# The curve is measured on at most this many validation rows (training rows without a validation split):
# K decodes of each row, which for 64 units of MNIST takes a second or two on one core.
CURVE_ROWS = 8192
CURVE_BATCH = 1024


# -- settings ------------------------------------------------------------------------------------------------
def check_settings(ordered: Any, code_size: Any, tolerance: Any) -> bool:
    """Whether the model trains ordered (``code_size="auto"`` implies it); refuse bad values."""
    if not isinstance(ordered, bool | np.bool_):
        raise ConfigError(f"ordered must be True or False; got {ordered!r}.")
    auto = isinstance(code_size, str) and code_size == "auto"
    if not auto and (isinstance(code_size, bool) or not isinstance(code_size, int | np.integer)):
        raise ConfigError(f"code_size must be a whole number >= 1 or 'auto'; got {code_size!r}.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
        raise ConfigError(
            f"code_tolerance is how much worse than the full code a prefix may be (0.05: 5% more error), "
            f"a number >= 0; got {tolerance!r}."
        )
    return bool(ordered) or auto


def code_units(code_size: int | str, n_features: int) -> int:
    """The code units to train: ``code_size``, or for "auto" AUTO_MAX_CODE (at most half the features)."""
    return min(max(1, n_features // 2), AUTO_MAX_CODE) if code_size == "auto" else int(code_size)


# -- training ------------------------------------------------------------------------------------------------
def draw_prefixes(n: int, code_size: int, device: torch.device) -> Tensor:
    """Each sample's prefix length, uniform over 1..K: (n, 1).

    Uniform rather than the paper's geometric distribution: it weighs every code size alike, which is what
    a curve of errors by code size asks for, and it has no rate to tune. Under a geometric distribution the
    last units are kept exponentially rarely (unit 40 of 64 in 2% of samples at rate 0.1), so they learn
    slowly, which the paper had to remedy with "unit sweeping". Here unit j is kept in (K - j + 1) / K of
    the samples, the last in 1/K of them. Measured on MNIST (docs/ordered_codes.md), other mixes move the
    gap to one model per size between the short and the long prefixes without closing it. Drawn from the
    global stream, which the trainer seeds per epoch: runs repeat and resume exactly.
    """
    return torch.randint(1, code_size + 1, (n, 1), device=device)


def _drop_tail(decoder: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Forward pre-hook on a model's decoder: in training, each code keeps a random prefix."""
    if not decoder.training:
        return None
    z, *rest = args  # z: (B, K), the code the decoder would see (a VAE's sample)
    keep = draw_prefixes(len(z), z.shape[1], z.device)  # (B, 1)
    units = torch.arange(z.shape[1], device=z.device)  # (K,)
    return (z * (units < keep), *rest)


@contextlib.contextmanager
def nested_dropout(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Inside the block (when ``enabled``), the decoder of ``model`` sees in training mode each sample's
    code cut to a random prefix (``draw_prefixes``), the rest zero: every family, as every family's
    ``decode_logits`` goes through ``model.decoder``. Eval mode (validation, inference) sees whole codes."""
    if not enabled:
        yield
        return
    handle = model.decoder.register_forward_pre_hook(_drop_tail)
    try:
        yield
    finally:
        handle.remove()


# -- after training ------------------------------------------------------------------------------------------
def truncate(code: Tensor, width: int) -> Tensor:
    """``code`` (B, K) with the units after the first ``width`` set to zero."""
    units = torch.arange(code.shape[1], device=code.device)  # (K,)
    return code * (units < width)


def prefix_forward(model: nn.Module, x: Tensor, width: int) -> AEOutput:
    """``model(x)`` in eval mode with the code cut to its first ``width`` units (all: ``model(x)`` itself)."""
    if width >= model.config.code_size:
        return model(x)
    code = truncate(model.encode(x), width)  # (B, K), zeros after ``width``
    logits = model.decode_logits(code)  # (B, *input_shape)
    return AEOutput(logits=logits, recon=model.activate(logits), code=code)


def curve_rows(train: Any, val: Any, seed: int) -> Tensor:
    """Up to CURVE_ROWS rows the curve is measured on: validation rows, else training rows (a seeded
    random subset of them when there are more); a tensor, or a lazy TrainData's first batch."""
    data = val if val is not None and len(val) else train
    if not isinstance(data, Tensor):
        return next(iter(data.batches(CURVE_ROWS, None)))
    if data is train and len(data) > CURVE_ROWS:  # training rows are in the caller's order
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:CURVE_ROWS]
        return data[pick.to(data.device)]
    return data[:CURVE_ROWS]  # a validation split is already a random sample


@torch.no_grad()
def reconstruction_curve(model: nn.Module, rows: Tensor) -> np.ndarray:
    """Mean squared error per value (in the scaled space the model sees) of ``rows`` (N, *input_shape),
    reconstructed from each prefix of its codes: (K,) float64, entry j-1 for the first j units.

    Squared error whatever the training loss, so that a tolerance means the same for every model. Batched:
    one encode per batch of rows and one decode per prefix length.
    """
    device = next(model.parameters()).device
    code_size = model.config.code_size
    was_training = model.training
    model.eval()
    sums = torch.zeros(code_size, dtype=torch.float64, device=device)  # (K,)
    for start in range(0, len(rows), CURVE_BATCH):
        x = rows[start : start + CURVE_BATCH].to(device)  # (B, *input_shape)
        code = model.encode(x)  # (B, K)
        for width in range(1, code_size + 1):
            recon = model.activate(model.decode_logits(truncate(code, width)))  # (B, *input_shape)
            sums[width - 1] += (recon - x).pow(2).flatten(1).mean(dim=1).sum(dtype=torch.float64)
    model.train(was_training)
    return (sums / max(len(rows), 1)).cpu().numpy()


def smallest_within(curve: np.ndarray, tolerance: float) -> int:
    """The shortest prefix whose error is at most (1 + tolerance) x the full code's (the last entry)."""
    curve = np.asarray(curve, dtype=np.float64)
    return int(np.argmax(curve <= curve[-1] * (1.0 + tolerance))) + 1


# -- codes of other widths -----------------------------------------------------------------------------------
def pad_codes(z: np.ndarray, code_size: int) -> np.ndarray:
    """Codes (N, w), w < K, of an ordered model as the (N, K) codes they are prefixes of: zeros after."""
    out = np.zeros((len(z), code_size), dtype=np.float32)
    out[:, : z.shape[1]] = z
    return out


def code_shape(code_size: int, prefixes: bool) -> str:
    """The shape ``inverse_transform`` takes, in words, for its error message."""
    return f"(N, w) with w from 1 to {code_size}" if prefixes else f"(N, {code_size})"


# -- model files ---------------------------------------------------------------------------------------------
def header(curve: np.ndarray | None, width: int) -> dict[str, Any]:
    """What a model file records of an ordered model: its curve and the width transform returns."""
    if curve is None:
        return {}
    return {"ordered": {"curve": [float(v) for v in curve], "code_size": int(width)}}


def from_header(doc: dict[str, Any], code_size: int, path: Any) -> tuple[np.ndarray | None, int]:
    """(curve, width) from a model file's header: (None, K) for a model that is not ordered."""
    entry = doc.get("ordered")
    if entry is None:
        return None, code_size
    try:
        curve = np.asarray(entry["curve"], dtype=np.float64)
        width = entry["code_size"]
        if curve.shape != (code_size,) or not np.isfinite(curve).all():
            raise ValueError(f"its curve has shape {curve.shape}, not ({code_size},) finite values")
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= code_size:
            raise ValueError(f"its chosen code size {width!r} is not a whole number from 1 to {code_size}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path} has a damaged ordered-code entry ({type(exc).__name__}: {exc})."
        ) from None
    return curve, width
