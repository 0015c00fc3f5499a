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


def halved_sizes(spatial: tuple[int, ...], n_stages: int) -> list[tuple[int, ...]]:
    """Spatial sizes (a series' length, an image's height and width) after each stride-2 stage (kernel 3,
    padding 1: halve, round up): 28 -> 14 -> 7 -> 4. A max-pool of 2 with ceil_mode halves and rounds up
    too, so both ``downsample`` modes have these sizes."""
    sizes = [tuple(spatial)]
    for _ in range(n_stages):
        sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))
    return sizes


# By number of spatial axes: 1 for series (B, C, T), 2 for images (B, C, H, W).
CONV = {1: nn.Conv1d, 2: nn.Conv2d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}


class ConvEncoder(nn.Module):
    """Per stage a convolution of kernel 3 that halves the input, then a linear map to the code.

    ``downsample="stride"``: a stride-2 convolution; ``"pool"``: a stride-1 convolution, which sees every
    position, then a max-pool of 2. Images (C, H, W) get 3x3 kernels, series (C, T) kernels of 3 steps.
    Works for any size: the sizes after each stage are computed, not assumed.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        channels: tuple[int, ...],
        out_features: int,
        act: str,
        downsample: str = "stride",
    ):
        super().__init__()
        c_in, *spatial = input_shape
        conv = CONV[len(spatial)]
        layers: list[nn.Module] = []
        for c_out in channels:
            if downsample == "pool":
                pool = MAX_POOL[len(spatial)](2, ceil_mode=True)
                layers += [conv(c_in, c_out, 3, padding=1), ACTIVATIONS[act](), pool]
            else:
                layers += [conv(c_in, c_out, 3, stride=2, padding=1), ACTIVATIONS[act]()]
            c_in = c_out
        last = halved_sizes(tuple(spatial), len(channels))[-1]
        layers += [nn.Flatten(), nn.Linear(c_in * math.prod(last), out_features)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, C, H, W) or (B, C, T) -> (B, out_features)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: a linear map to a small feature map, then per stage a step that doubles the
    size; the last one outputs the data's channels. Each stage comes back to the exact encoder size, so
    odd sizes such as 7 come back as 7.

    ``downsample="stride"``: a transposed convolution of kernel 3 (output_padding picks the size);
    ``"pool"``: nearest-neighbour up-sampling to the size, then a stride-1 convolution, which leaves none of
    the checkerboard patterns transposed convolutions can make (Odena et al., "Deconvolution and checkerboard
    artifacts", Distill 2016).
    """

    def __init__(
        self,
        code_size: int,
        channels: tuple[int, ...],
        output_shape: tuple[int, ...],
        act: str,
        downsample: str = "stride",
    ):
        super().__init__()
        c_data, *spatial = output_shape
        sizes = halved_sizes(tuple(spatial), len(channels))  # encoder sizes, input first
        last = sizes[-1]
        layers: list[nn.Module] = [nn.Linear(code_size, channels[0] * math.prod(last)), ACTIVATIONS[act]()]
        layers.append(nn.Unflatten(1, (channels[0], *last)))
        outs = [*channels[1:], c_data]
        for i, c_out in enumerate(outs):
            source, target = sizes[-1 - i], sizes[-2 - i]
            if downsample == "pool":
                up = nn.Upsample(size=target, mode="nearest")
                layers += [up, CONV[len(spatial)](channels[i], c_out, 3, padding=1)]
            else:
                # 0 or 1 per axis: makes (in - 1) * 2 - 2 + 3 + pad == target
                pad = tuple(t - 2 * s + 1 for s, t in zip(source, target, strict=True))
                transposed = CONV_TRANSPOSE[len(spatial)]
                layers.append(transposed(channels[i], c_out, 3, stride=2, padding=1, output_padding=pad))
            if i < len(outs) - 1:
                layers.append(ACTIVATIONS[act]())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (B, K) -> (B, C, H, W) or (B, C, T)


def _dense_pair(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample="stride"):
    widths = tuple(hidden) if hidden else default_dense_widths(math.prod(input_shape), code_size)
    dec = tuple(decoder_hidden) if decoder_hidden else tuple(reversed(widths))
    return DenseEncoder(input_shape, widths, encoder_out, act), DenseDecoder(code_size, dec, input_shape, act)


def _conv_pair(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample="stride"):
    if len(input_shape) != 3:
        raise ConfigError(
            f"a convolutional model needs images (N, H, W) or (N, H, W, C); "
            f"got rows of shape {tuple(input_shape)}. "
            "Use kind='dense' (or backbone='dense') for tables, kind='conv1d' for series (N, T) or (N, T, C)."
        )
    return _conv_stacks(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample)


def _conv1d_pair(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample="stride"):
    if len(input_shape) != 2:
        raise ConfigError(
            f"a 1-D convolutional model needs series, model inputs (C, T); got inputs of shape "
            f"{tuple(input_shape)}. Give it series (N, T) or (N, T, C); use kind='conv' for images."
        )
    return _conv_stacks(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample)


def _conv_stacks(input_shape, hidden, decoder_hidden, encoder_out, code_size, act, downsample):
    channels = tuple(hidden) if hidden else DEFAULT_CONV_CHANNELS
    dec = tuple(decoder_hidden) if decoder_hidden else tuple(reversed(channels))
    encoder = ConvEncoder(input_shape, channels, encoder_out, act, downsample)
    return encoder, ConvDecoder(code_size, dec, input_shape, act, downsample)


# backbone name -> builder of (encoder: input -> encoder_out features, decoder: code -> input shape)
BACKBONES = {"dense": _dense_pair, "conv": _conv_pair, "conv1d": _conv1d_pair}
# backbone name -> the model input it takes: "flat" anything (flattened), "image" (C, H, W), "series" (C, T).
# Series come channels last from users, (N, T, C), and the data spec turns them (aekit.data.scaling).
LAYOUTS = {"dense": "flat", "conv": "image", "conv1d": "series"}


def init_weights(module: nn.Module) -> None:
    """Kaiming-uniform init (suits ReLU-like activations), zero biases: trains faster than the default."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.ConvTranspose1d | nn.ConvTranspose2d):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
