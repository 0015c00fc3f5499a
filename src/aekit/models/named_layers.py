"""Every layer of an autoencoder by a short name, and all their outputs from one forward pass.

Names follow the data: ``encoder.1`` ... ``encoder.k`` (the encoder's hidden layers), ``code``,
``decoder.1`` ... ``decoder.m``, ``output``. A layer is one weighted module (Linear or convolution) with
what follows it up to the next one (its activation, a reshape), so its output is taken after the
activation. ``code`` is what ``encode`` returns (a VAE's posterior mean, a sparse model's squashed code)
and ``output`` what ``decode`` returns (after the output activation, in the scaled space the model sees).
Nothing here knows a family: the layers are found by walking the encoder's and decoder's modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor, nn

from aekit.errors import ConfigError

WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
# Modules after a layer's activation that only prepare the input of the next layer: the layer's output is
# taken before them (a conv decoder's up-sampling, the flattening before an encoder's last Linear).
PREPARES = (nn.Flatten, nn.Upsample)
HALVES = ("encoder", "decoder")
LAST = {"encoder": "code", "decoder": "output"}  # the name of each half's last layer


@dataclass(frozen=True)
class Layer:
    name: str  # "encoder.1", "code", ...
    module: str  # the weighted module's qualified name, e.g. "encoder.net.1": what freezing holds fixed
    tap: str | None  # the module whose output is the layer's; None: encode's or decode's result


def layers(model: nn.Module) -> list[Layer]:
    """The model's layers in the order data flows through them."""
    found = []
    for half in HALVES:
        groups = _groups(model, half)
        for i, group in enumerate(groups[:-1]):
            tap = next((name for name, m in reversed(group) if not isinstance(m, PREPARES)), group[0][0])
            found.append(Layer(f"{half}.{i + 1}", group[0][0], tap))
        # a network of the user's own without Linear or convolution layers still has a code and an output
        found.append(Layer(LAST[half], groups[-1][0][0] if groups else half, None))
    return found


def layer_names(model: nn.Module) -> list[str]:
    return [layer.name for layer in layers(model)]


def _groups(model: nn.Module, half: str) -> list[list[tuple[str, nn.Module]]]:
    """The half's leaf modules in order, cut before each weighted one (leading reshapes are dropped)."""
    groups: list[list[tuple[str, nn.Module]]] = []
    for name, m in getattr(model, half).named_modules(prefix=half):
        if next(m.children(), None) is not None:
            continue  # a container: its leaves come next
        if isinstance(m, WEIGHTED):
            groups.append([(name, m)])
        elif groups:
            groups[-1].append((name, m))
    return groups


def widths(model: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The encoder's and the decoder's hidden sizes as built: what ``hidden`` and ``decoder_hidden``
    resolved to (widths for dense layers, channels for convolutions)."""

    def size(module: nn.Module, end: str) -> int:
        return int(getattr(module, f"{end}_features", None) or getattr(module, f"{end}_channels"))

    enc = [m for _, m in (g[0] for g in _groups(model, "encoder"))]
    dec = [m for _, m in (g[0] for g in _groups(model, "decoder"))]
    # the encoder's last layer maps to the code and the decoder's first comes from it: their other ends
    return tuple(size(m, "out") for m in enc[:-1]), tuple(size(m, "in") for m in dec[1:])


def parts(model: nn.Module, names: Iterable[str], what: str = "freeze") -> tuple[str, ...]:
    """Qualified module names (prefixes of parameter names) for ``names``: "encoder", "decoder" or
    layer names. The decoder includes the parameters outside both halves (a VAE's likelihood scale, part
    of p(x|z)). An unknown name is a ConfigError that lists the known ones."""
    by_name = {layer.name: (layer.module,) for layer in layers(model)}
    outside = sorted({p.split(".")[0] for p, _ in model.named_parameters()} - set(HALVES))
    by_name = {"encoder": ("encoder",), "decoder": ("decoder", *outside), **by_name}
    found: list[str] = []
    for name in names:
        if name not in by_name:
            raise ConfigError(
                f"{what}={name!r} is not a part of this model; choose encoder, decoder or layers "
                f"{', '.join(n for n in by_name if n not in HALVES)}."
            )
        found += [p for p in by_name[name] if p not in found]
    return tuple(found)


def check_layer(model: nn.Module, name: str) -> None:
    names = layer_names(model)
    if name not in names:
        raise ConfigError(f"layer={name!r} is not a layer of this model; its layers: {', '.join(names)}.")


def capture(model: nn.Module, x: Tensor, names: Iterable[str] | None = None) -> dict[str, Tensor]:
    """The outputs of the layers ``names`` (default: all) for a batch ``x``, in layer order, each
    (B, ...); from one pass of ``encode`` (and ``decode`` when a decoder layer is asked for)."""
    every = layers(model)
    wanted = {layer.name for layer in every} if names is None else set(names)
    modules = dict(model.named_modules())
    found: dict[str, Tensor] = {}

    def keep(name: str):
        return lambda module, args, out: found.__setitem__(name, out)

    hooks = [
        modules[layer.tap].register_forward_hook(keep(layer.name))
        for layer in every
        if layer.tap is not None and layer.name in wanted
    ]
    try:
        found["code"] = model.encode(x)  # (B, K)
        if any(layer.name in wanted for layer in every if layer.module.split(".")[0] == "decoder"):
            found["output"] = model.decode(found["code"])  # (B, *input_shape)
    finally:
        for hook in hooks:
            hook.remove()
    return {layer.name: found[layer.name] for layer in every if layer.name in wanted}
