"""What every layer of a fitted ``AutoEncoder`` makes of the data: ``layer_outputs`` and ``transform(X,
layer=...)``.

Layers are named as in ``aekit.models.named_layers``: ``encoder.1`` ... ``code`` ... ``decoder.1`` ...
``output``, each output taken after its activation. The data goes through the model in the batches
``transform`` uses (a path or Source chunk by chunk), and one forward pass per batch gives every layer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted


def layer_names(est: Any) -> list[str]:
    """The fitted model's layer names, in the order data flows through them."""
    from aekit.models.named_layers import layer_names as names

    check_is_fitted(est)
    return names(est.model_)


def check_layer(est: Any, name: str) -> None:
    """A ConfigError, listing the model's layers, unless ``name`` is one of them."""
    from aekit.models.named_layers import check_layer as check

    check_is_fitted(est)
    check(est.model_, name)


def layer_outputs(est: Any, X: Any) -> dict[str, np.ndarray]:
    """layer name -> that layer's outputs for ``X``: (N, *layer shape) float32, e.g. (N, 256) for a dense
    layer, (N, 32, 14, 14) for a convolution; ``code`` is (N, code units) as the model encodes (all units,
    for a model with code_size="auto" too) and ``output`` (N, *model input shape) in the scaled space.

    All layers of all rows are held in memory at once; for one layer of much data use
    ``transform(X, layer=name)``.
    """
    import torch

    from aekit.models.named_layers import capture

    check_is_fitted(est)
    model = est.model_
    shapes: dict[str, tuple[int, ...]] = {}

    def every_layer(batch):  # (B, *input_shape) -> (B, all layers' values side by side)
        outs = capture(model, batch)
        shapes.update((name, tuple(out.shape[1:])) for name, out in outs.items())
        return torch.cat([out.flatten(1) for out in outs.values()], dim=1)

    flat = est._map(every_layer, X)  # (N, sum of the layers' sizes)
    found, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        found[name] = np.ascontiguousarray(flat[:, start : start + size]).reshape(len(flat), *shape)
        start += size
    return found


def layer_transform(est: Any, X: Any, layer: str) -> np.ndarray:
    """One layer's outputs for ``X``, flattened: (N, features) float32. An unknown name is a ConfigError
    that lists the model's layers."""
    from aekit.models.named_layers import capture

    check_layer(est, layer)
    model = est.model_
    out = est._map(lambda batch: capture(model, batch, [layer])[layer].flatten(1), X)
    return out.astype(np.float32, copy=False)
