"""Typed settings shared by every model family.

Each family subclasses ``ModelConfig`` with its own fields; ``validate`` runs when the model is built and
``to_dict``/``from_dict`` give the JSON stored in model files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

from aekit.errors import ConfigError

Loss = Literal["mse", "l1", "bce"]
Activation = Literal["relu", "leaky_relu", "gelu", "silu", "elu", "tanh"]
Output = Literal["sigmoid", "identity"]
Backbone = Literal["dense", "conv"]
# How a convolutional backbone halves and doubles its feature maps: strided (and transposed) convolutions,
# or stride-1 convolutions with max-pooling down and nearest-neighbour up-sampling up.
Downsample = Literal["stride", "pool"]


@dataclass
class ModelConfig:
    input_shape: tuple[int, ...]  # (D,) for tables, (C, H, W) for images
    code_size: int = 32
    hidden: tuple[int, ...] | None = None  # widths (dense) or channels (conv) of the encoder; None = default
    decoder_hidden: tuple[int, ...] | None = None  # None mirrors the encoder
    activation: Activation = "relu"
    loss: Loss = "mse"
    output: Output = "sigmoid"  # sigmoid for data in [0, 1], identity for standardised data
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the model
    # The user's own encoder and decoder (models/custom.py): their classes' import paths and constructor
    # arguments, and the encoder's output width. None: the built-in networks that hidden etc. describe.
    networks: dict[str, Any] | None = None

    def validate(self) -> None:
        """Check every Literal field and the sizes; raise ConfigError that names the fix."""
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            choices = _literal_choices(hints[f.name])
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise ConfigError(f"{f.name}={value!r} is not one of {', '.join(map(repr, choices))}.")
        if not isinstance(self.code_size, int) or self.code_size < 1:
            raise ConfigError(f"code_size must be a positive integer; got {self.code_size!r}.")
        for name in ("hidden", "decoder_hidden"):
            widths = getattr(self, name)
            if widths is not None and (not widths or any(int(w) < 1 for w in widths)):
                raise ConfigError(
                    f"{name} must be a non-empty list of positive sizes, e.g. (256, 128); got {widths!r}."
                )
        if not self.input_shape or any(int(s) < 1 for s in self.input_shape):
            raise ConfigError(f"input_shape must be positive sizes; got {self.input_shape!r}.")
        if self.networks is not None:
            from aekit.models.custom import check_entry

            check_entry(self.networks)
        downsample, backbone = getattr(self, "downsample", "stride"), getattr(self, "backbone", "dense")
        if downsample != "stride" and backbone == "dense":
            raise ConfigError(
                f"downsample={downsample!r} sets how a convolutional backbone shrinks its feature maps; "
                "a dense one has none. Use backbone='conv' or leave downsample='stride'."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(names)}."
            )
        values = dict(data)
        for key in ("input_shape", "hidden", "decoder_hidden"):
            if values.get(key) is not None:
                values[key] = tuple(int(v) for v in values[key])
        return cls(**values)

    @property
    def n_features(self) -> int:
        n = 1
        for s in self.input_shape:
            n *= int(s)
        return n


def _literal_choices(hint: Any) -> tuple[Any, ...]:
    if getattr(hint, "__origin__", None) is Literal:
        return get_args(hint)
    return ()
