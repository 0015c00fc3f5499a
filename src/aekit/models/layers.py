"""Encoder and decoder stacks that the families assemble: dense (MLP) and convolutional backbones."""

from __future__ import annotations

import math

from torch import Tensor, nn

from aekit.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def default_dense_widths(n_features: int, code_size: int) -> tuple[int, int]:
    """Two layers that narrow from the input towards the code; wide enough not to be the bottleneck."""
    first = min(512, max(4 * code_size, n_features, 16))
    return first, max(2 * code_size, first // 2)


DEFAULT_CONV_CHANNELS = (32, 64, 128)


class DenseEncoder(nn.Module):
    """Flatten, then Linear + activation for each width, then a linear map to ``out_features``."""

    def __init__(self, input_shape: tuple[int, ...], widths: tuple[int, ...], out_features: int, act: str):
        super().__init__()
        sizes = [math.prod(input_shape), *widths]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[act]()]
        layers.append(nn.Linear(sizes[-1], out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, out_features)


class DenseDecoder(nn.Module):
    """Linear + activation for each width, then a linear map to the input size, reshaped to the input."""

    def __init__(self, code_size: int, widths: tuple[int, ...], output_shape: tuple[int, ...], act: str):
        super().__init__()
        sizes = [code_size, *widths]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[act]()]
        layers += [nn.Linear(sizes[-1], math.prod(output_shape)), nn.Unflatten(1, tuple(output_shape))]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (B, *output_shape)


def conv_sizes(height: int, width: int, n_stages: int) -> list[tuple[int, int]]:
    """Spatial size after each stride-2 stage (kernel 3, padding 1: halve, round up): 28 -> 14 -> 7 -> 4."""
    sizes = [(height, width)]
    for _ in range(n_stages):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class ConvEncoder(nn.Module):
    """Per stage a strided 3x3 convolution that halves the image, then a linear map to the code.

    Works for any image size: the sizes after each stage are computed, not assumed.
    """

    def __init__(self, input_shape: tuple[int, ...], channels: tuple[int, ...], out_features: int, act: str):
        super().__init__()
        c_in, height, width = input_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), ACTIVATIONS[act]()]
            c_in = c_out
        h, w = conv_sizes(height, width, len(channels))[-1]
        layers += [nn.Flatten(), nn.Linear(c_in * h * w, out_features)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, C, H, W) -> (B, out_features)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: a linear map to a small feature map, then per stage a transposed 3x3
    convolution that doubles the size; the last one outputs the image channels. output_padding picks the
    exact encoder size at each stage, so odd sizes such as 7 come back as 7.
    """

    def __init__(self, code_size: int, channels: tuple[int, ...], output_shape: tuple[int, ...], act: str):
        super().__init__()
        c_image, height, width = output_shape
        sizes = conv_sizes(height, width, len(channels))  # encoder sizes, input first
        h, w = sizes[-1]
        layers: list[nn.Module] = [nn.Linear(code_size, channels[0] * h * w), ACTIVATIONS[act]()]
        layers.append(nn.Unflatten(1, (channels[0], h, w)))
        outs = [*channels[1:], c_image]
        for i, c_out in enumerate(outs):
            (ih, iw), (th, tw) = sizes[-1 - i], sizes[-2 - i]
            pad = (th - 2 * ih + 1, tw - 2 * iw + 1)  # 0 or 1: makes (in - 1) * 2 - 2 + 3 + pad == target
            layers.append(nn.ConvTranspose2d(channels[i], c_out, 3, stride=2, padding=1, output_padding=pad))
            if i < len(outs) - 1:
                layers.append(ACTIVATIONS[act]())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (B, K) -> (B, C, H, W)


def _dense_pair(input_shape, hidden, decoder_hidden, encoder_out, code_size, act):
    widths = tuple(hidden) if hidden else default_dense_widths(math.prod(input_shape), code_size)
    dec = tuple(decoder_hidden) if decoder_hidden else tuple(reversed(widths))
    return DenseEncoder(input_shape, widths, encoder_out, act), DenseDecoder(code_size, dec, input_shape, act)


def _conv_pair(input_shape, hidden, decoder_hidden, encoder_out, code_size, act):
    if len(input_shape) != 3:
        raise ConfigError(
            f"a convolutional model needs images (N, H, W) or (N, H, W, C); "
            f"got rows of shape {tuple(input_shape)}. "
            "Use kind='dense' (or backbone='dense') for tables."
        )
    channels = tuple(hidden) if hidden else DEFAULT_CONV_CHANNELS
    dec = tuple(decoder_hidden) if decoder_hidden else tuple(reversed(channels))
    return ConvEncoder(input_shape, channels, encoder_out, act), ConvDecoder(code_size, dec, input_shape, act)


# backbone name -> builder of (encoder: input -> encoder_out features, decoder: code -> input shape)
BACKBONES = {"dense": _dense_pair, "conv": _conv_pair}


def init_weights(module: nn.Module) -> None:
    """Kaiming-uniform init (suits ReLU-like activations), zero biases: trains faster than the default."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
