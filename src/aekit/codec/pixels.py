"""The pixel head: a distribution over the 256 values of every pixel, for lossless and near-lossless coding.

Each pixel value gets a discretized mixture of logistics (Salimans et al., PixelCNN++, ICLR 2017), with the
end bins 0 and 255 taking the tails, predicted from the decoded latent (the synthesis features and the
lossy reconstruction) and from pixels already decoded. The context comes from four interleaved 2x2 groups
decoded in turn (group 0 = pixels at even row/even column, then odd/odd, even/odd, odd/even): every pixel
of a group is coded in parallel, and groups 1-3 see their decoded neighbours, which is most of what a
sequential PixelCNN would see at a quarter of the network passes. Colour channels of one pixel are
modelled independently given that context.

The probabilities handed to the entropy coder are computed in float64 from the head's outputs by the same
code on the same shapes at both ends, so the encoder and the decoder see identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

GROUPS = 4
# (row parity, column parity) of each group, in decoding order: the diagonal partner second so that every
# later group has decoded neighbours on both axes.
GROUP_PARITY = ((0, 0), (1, 1), (0, 1), (1, 0))
HALF_BIN = 0.5 / 255  # half the width of one of the 256 value bins on the [0, 1] scale
LOG_SCALE_MIN = -7.0


def group_map(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """(H, W) int64: the decoding group of every pixel."""
    r = torch.arange(height, device=device).view(-1, 1) % 2
    c = torch.arange(width, device=device).view(1, -1) % 2
    table = torch.zeros(2, 2, dtype=torch.int64, device=device)
    for g, (pr, pc) in enumerate(GROUP_PARITY):
        table[pr, pc] = g
    return table[r, c]  # (H, W)


class PixelHead(nn.Module):
    """Mixture parameters for every pixel from (reconstruction, features, known pixels, masks).

    Inputs: x_hat (B, C, H, W), features (B, F, H/2, W/2) upsampled here, context (B, C, H, W) (the known
    pixels on [0, 1], zero elsewhere), known (B, 1, H, W) and target (B, 1, H, W) masks. Output
    (B, C, 3K, H, W): K mixture logits, K means (as offsets from x_hat), K log-scales per subpixel.
    """

    def __init__(
        self, channels: int, features: int, width: int, layers: int, mixtures: int, bins_input: bool = False
    ):
        super().__init__()
        self.channels, self.mixtures, self.bins_input = channels, mixtures, bins_input
        inputs = features + 2 * channels + 2 + int(bins_input)
        convs: list[nn.Module] = []
        for i in range(layers):
            convs += [nn.Conv2d(inputs if i == 0 else width, width, 3, padding=1), nn.GELU()]
        self.body = nn.Sequential(*convs)
        self.out = nn.Conv2d(width, channels * 3 * mixtures, 1)
        with torch.no_grad():  # start as "one logistic at x_hat", spread a little
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(
        self,
        x_hat: Tensor,
        features: Tensor,
        context: Tensor,
        known: Tensor,
        target: Tensor,
        bins: Tensor | None = None,
    ) -> Tensor:
        """``bins`` (B,): the context's bin width (1 = exact); read only by heads built with bins_input."""
        up = F.interpolate(features, size=x_hat.shape[-2:], mode="nearest")  # (B, F, H, W)
        inputs = [x_hat, up, context * known, known, target]
        if self.bins_input:
            b = torch.ones(len(x_hat), device=x_hat.device) if bins is None else bins.to(x_hat.device).float()
            inputs.append((torch.log2(b) / 8).view(-1, 1, 1, 1).expand_as(target))  # (B, 1, H, W)
        h = self.body(torch.cat(inputs, dim=1))  # (B, width, H, W)
        return self._output(h, x_hat)

    def prepare(self, x_hat: Tensor, features: Tensor) -> Tensor:
        """The first convolution's share from (x_hat, features), which all four groups have in common.

        Coding runs ``prepare`` once and ``step`` per group: the same function as ``forward`` with the
        largest part of the work done once (the encoder and the decoder both take this path).
        """
        up = F.interpolate(features, size=x_hat.shape[-2:], mode="nearest")  # (B, F, H, W)
        first = self.body[0]
        n = x_hat.shape[1] + up.shape[1]
        return F.conv2d(torch.cat([x_hat, up], dim=1), first.weight[:, :n], first.bias, padding=1)

    def step(
        self, base: Tensor, x_hat: Tensor, context: Tensor, known: Tensor, target: Tensor, bins: Tensor
    ) -> Tensor:
        """``forward`` for one group, given ``prepare``'s result."""
        first = self.body[0]
        n = first.weight.shape[1] - (context.shape[1] + 2 + int(self.bins_input))  # (x_hat, features) inputs
        inputs = [context * known, known, target]
        if self.bins_input:
            inputs.append((torch.log2(bins.float()) / 8).view(-1, 1, 1, 1).expand_as(target))
        h = base + F.conv2d(torch.cat(inputs, dim=1), first.weight[:, n:], None, padding=1)
        h = self.body[2:](self.body[1](h))  # (B, width, H, W)
        return self._output(h, x_hat)

    def _output(self, h: Tensor, x_hat: Tensor) -> Tensor:
        b, c, k = x_hat.shape[0], self.channels, self.mixtures
        p = self.out(h).view(b, c, 3 * k, *x_hat.shape[-2:])  # (B, C, 3K, H, W)
        logits, means, log_scales = p[:, :, :k], p[:, :, k : 2 * k], p[:, :, 2 * k :]
        means = means + x_hat.detach().unsqueeze(2)  # (B, C, K, H, W)
        log_scales = log_scales.clamp_min(LOG_SCALE_MIN) - 3.0  # start near a scale of 0.05
        return torch.cat([logits, means, log_scales], dim=2)


def split(params: Tensor, mixtures: int) -> tuple[Tensor, Tensor, Tensor]:
    """(..., 3K, ...) -> logits, means, log_scales, each (..., K, ...) along dim 2."""
    k = mixtures
    return params[:, :, :k], params[:, :, k : 2 * k], params[:, :, 2 * k :]


def log_prob(params: Tensor, x: Tensor, mixtures: int) -> Tensor:
    """Natural-log probability of the 8-bit values x (B, C, H, W) on [0, 1] under the mixture; (B, C, H, W).

    PixelCNN++'s numerically careful form: the end bins take the tails, and a bin whose mass underflows
    falls back to the density at its centre times its width.
    """
    logits, means, log_scales = split(params.float(), mixtures)  # (B, C, K, H, W)
    x = x.float().unsqueeze(2)  # (B, C, 1, H, W)
    centered = x - means
    inv_s = torch.exp(-log_scales)
    plus_in = inv_s * (centered + HALF_BIN)
    min_in = inv_s * (centered - HALF_BIN)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid: the bin of value 0
    log_one_minus_cdf_min = -F.softplus(min_in)  # the bin of value 255
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    inner = torch.where(
        cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)), log_pdf_mid - math.log(127.5)
    )
    lp = torch.where(x < HALF_BIN, log_cdf_plus, torch.where(x > 1 - HALF_BIN, log_one_minus_cdf_min, inner))
    return torch.logsumexp(lp + F.log_softmax(logits, dim=2), dim=2)


def subpixel_params(params: Tensor, mixtures: int, where: Tensor) -> Tensor:
    """The mixture parameters of the subpixels selected by ``where`` (H, W) bool, for every item.

    params (B, C, 3K, H, W) -> (B * C * P, 3K): item-major, then channel-major, then pixels in raster order.
    """
    p = params[:, :, :, where]  # (B, C, 3K, P)
    return p.permute(0, 1, 3, 2).reshape(-1, 3 * mixtures)


# pmfs are built this many subpixels at a time, so the (CHUNK, K, edges) temporaries stay small
CHUNK = 4096


def value_pmf(params: Tensor, mixtures: int, width: int = 1) -> np.ndarray:
    """The probability of every bin of ``width`` values (1: every value) for every subpixel.

    params (P, 3K) -> (P, n_bins) float64 (n_bins = 256 for width 1). The mixture's CDF is evaluated at the
    bin boundaries only, in float32, in fixed chunks: the encoder and the decoder run exactly this on
    exactly the same arrays, so they get the same numbers.
    """
    out = np.empty((len(params), len(bin_edges(width)) - 1), np.float64)
    for start, block in value_pmf_blocks(params, mixtures, width):
        out[start : start + len(block)] = block
    return out


def value_pmf_blocks(
    params: Tensor, mixtures: int, width: int = 1, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``value_pmf`` a chunk at a time: (first row, the chunk's rows (n, n_bins)), up to the chunk that holds
    row ``stop - 1`` (default: all).

    The chunks are always the same CHUNK rows of ``params``, whatever ``stop``, so every row gets the same
    numbers as from ``value_pmf``; coding each chunk as it comes holds one chunk of float64 rows in memory
    rather than all of them (for a 4096 x 4096 RGB image: 8 MB instead of 26 GB per group).
    """
    k = mixtures
    params = params.detach().to("cpu", torch.float32)
    edges = torch.from_numpy((bin_edges(width)[1:-1] - 0.5) / 255).float()  # (n_bins - 1,) on [0, 1]
    for start in range(0, len(params) if stop is None else min(stop, len(params)), CHUNK):
        p = params[start : start + CHUNK]
        logits, means, log_scales = p[:, :k], p[:, k : 2 * k], p[:, 2 * k :]  # (n, K)
        z = edges - means.unsqueeze(-1)  # (n, K, E)
        z.mul_(torch.exp(-log_scales).unsqueeze(-1)).sigmoid_()
        z.mul_(torch.softmax(logits, dim=1).unsqueeze(-1))
        cdf = z.sum(dim=1)  # (n, E)
        cdf = cdf.numpy()
        block = np.empty((len(p), len(edges) + 1), np.float64)
        block[:, 0] = cdf[:, 0]
        block[:, 1:-1] = cdf[:, 1:] - cdf[:, :-1]
        block[:, -1] = 1.0 - cdf[:, -1]
        np.maximum(block, 0.0, out=block)
        yield start, block


def bin_edges(width: int) -> np.ndarray:
    """Start of every bin of ``width`` values over 0..255, plus 256 at the end: (n_bins + 1,)."""
    return np.append(np.arange(0, 256, width), 256)


def bin_values(width: int, histogram: np.ndarray | None = None) -> np.ndarray:
    """The value every bin of ``width`` decodes to: the mean of the training pixels in it, rounded.

    ``histogram`` (256,) counts of each value in the training images (None: uniform, bin centres). A
    fixed table rather than a per-pixel estimate, so training can show the pixel head exactly the
    context that decoding will give it.
    """
    edges = bin_edges(width)
    hist = np.ones(256) if histogram is None else np.asarray(histogram, np.float64) + 1e-9
    values = np.arange(256)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        w = hist[lo:hi]
        out.append(int(np.clip(np.rint((values[lo:hi] * w).sum() / w.sum()), lo, hi - 1)))
    return np.array(out, np.int64)


def binned(pmf: np.ndarray, width: int) -> np.ndarray:
    """pmf (P, 256) -> the probability of each bin of ``width`` values: (P, n_bins)."""
    edges = bin_edges(width)
    cdf = np.concatenate([np.zeros((len(pmf), 1)), np.cumsum(pmf, axis=1)], axis=1)  # (P, 257)
    return np.maximum(cdf[:, edges[1:]] - cdf[:, edges[:-1]], 0.0)


def quantise_context(x: Tensor, bins: Tensor, histogram: np.ndarray | None) -> Tensor:
    """Training: what near-lossless decoding shows as context. x (B, C, H, W) exact on [0, 1], bins (B,)."""
    out = x.clone()
    v = torch.round(x * 255).to(torch.int64)
    for width in torch.unique(bins).tolist():
        if width == 1:
            continue
        table = torch.from_numpy(bin_values(int(width), histogram)).to(x.device)
        sel = bins == width
        out[sel] = table[v[sel] // int(width)].to(x.dtype) / 255
    return out
