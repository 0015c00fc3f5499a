"""The learned prior of the latents: Balle's "entropy bottleneck" (factorized density, one per channel).

Balle, Minnen, Singh, Hwang, Johnston, "Variational image compression with a scale hyperprior" (ICLR 2018),
appendix 6.1: each latent channel gets its own non-parametric density, the derivative of a small monotone
function c(x) = sigmoid(f(x)) built from softplus-positive matrices. The probability of an integer k is
c(k + 1/2) - c(k - 1/2). In training the latent gets additive uniform noise (the continuous proxy of
rounding, Balle et al. 2017); at test time it is rounded.

For coding, ``update_tables`` evaluates that probability on an integer grid once and stores the tables
(float64) as buffers: they travel with the weights, so the encoder and the decoder code under exactly the
same numbers, on any machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Probabilities below this floor would make -log2 p explode in training (and cannot be coded anyway).
LIKELIHOOD_FLOOR = 1e-9
# The coding range of a channel covers all integers except this much probability mass in the two tails;
# values outside it are clamped to its ends (a tiny distortion, never a coding failure).
TAIL_MASS = 1e-7
# The grid searched for the coding range: latents are expected well inside +-GRID.
GRID = 512


class EntropyBottleneck(nn.Module):
    """Per-channel learned density of a latent tensor (B, C, H, W).

    ``forward(y, training)`` returns (y_tilde, likelihoods): y + uniform noise in training, round(y) at
    test time, and the probability of each element under the density. ``update_tables()`` fills
    ``offsets`` (C,) int64 and ``pmfs`` (C, L) float64: symbol s of channel c stands for the integer
    offsets[c] + s, with probability pmfs[c, s]; ``lengths`` (C,) says how many symbols each row holds.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = int(channels)
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.register_buffer("offsets", torch.zeros(channels, dtype=torch.int64))
        self.register_buffer("lengths", torch.ones(channels, dtype=torch.int64))
        self.register_buffer("pmfs", torch.ones(channels, 1, dtype=torch.float64))

    def _logits_cumulative(self, x: Tensor) -> Tensor:
        """f(x) with c(x) = sigmoid(f(x)); x (C, 1, K) -> (C, 1, K)."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(F.softplus(matrix.to(x.dtype)), x) + bias.to(x.dtype)  # (C, d_i+1, K)
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i].to(x.dtype)) * torch.tanh(x)
        return x

    def _likelihood_flat(self, v: Tensor) -> Tensor:
        """Probability mass of [v - 1/2, v + 1/2] per element; v (C, 1, K) -> (C, 1, K)."""
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        # Far in the right tail both sigmoids are ~1 and their difference loses all precision; mirroring
        # the computation to the left tail (where both are ~0) keeps it.
        sign = -torch.sign(lower + upper).detach()
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()

    def likelihood(self, y: Tensor) -> Tensor:
        """Probability of each element of y (B, C, H, W) (integers or noisy values), floored."""
        b, c, h, w = y.shape
        v = y.float().permute(1, 0, 2, 3).reshape(c, 1, -1)  # (C, 1, B*H*W)
        # bfloat16 (autocast) cannot resolve the small differences of two sigmoids: always float32 here
        with torch.autocast(device_type=y.device.type, enabled=False):
            p = self._likelihood_flat(v).reshape(c, b, h, w).permute(1, 0, 2, 3)  # (B, C, H, W)
        return p.clamp_min(LIKELIHOOD_FLOOR)

    def forward(self, y: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """(y_tilde, likelihoods) for y (B, C, H, W); ``training`` defaults to ``self.training``."""
        training = self.training if training is None else training
        y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else torch.round(y)
        return y_tilde, self.likelihood(y_tilde)

    @torch.no_grad()
    def update_tables(self) -> None:
        """Evaluate the density on the integer grid (float64) and keep the coding tables as buffers."""
        grid = torch.arange(-GRID, GRID + 1, dtype=torch.float64)
        v = grid.view(1, 1, -1).expand(self.channels, 1, -1).contiguous()  # (C, 1, 2G+1)
        pmf = self._likelihood_flat(v)[:, 0].cpu().numpy()  # (C, 2G+1)
        cdf = np.cumsum(pmf, axis=1)
        total = cdf[:, -1:]
        keep = (cdf > TAIL_MASS / 2 * total) & (cdf - pmf < total * (1 - TAIL_MASS / 2))
        lo = keep.argmax(axis=1)
        hi = keep.shape[1] - 1 - keep[:, ::-1].argmax(axis=1)
        lengths = hi - lo + 1
        table = np.zeros((self.channels, int(lengths.max())), np.float64)
        for c in range(self.channels):
            table[c, : lengths[c]] = pmf[c, lo[c] : hi[c] + 1]
        table /= table.sum(axis=1, keepdims=True)
        self.offsets = torch.from_numpy(lo - GRID).to(torch.int64)
        self.lengths = torch.from_numpy(lengths).to(torch.int64)
        self.pmfs = torch.from_numpy(table)

    def symbols(self, y_int: Tensor) -> np.ndarray:
        """Integer latents (B, C, H, W) -> symbol indices (same shape, int32), clamped to the coding range."""
        lo = self.offsets.view(1, -1, 1, 1)
        hi = lo + self.lengths.view(1, -1, 1, 1) - 1
        s = torch.maximum(torch.minimum(y_int.to(torch.int64), hi), lo) - lo
        return np.ascontiguousarray(s.cpu().numpy(), dtype=np.int32)

    def values(self, symbols: np.ndarray) -> Tensor:
        """Inverse of ``symbols``: symbol indices (B, C, H, W) -> integer latents as float32."""
        s = torch.from_numpy(np.ascontiguousarray(symbols, np.int64))
        # contiguous on purpose: a convolution over a differently laid out copy of the same numbers can
        # take another kernel and round differently, and the decoder must see the encoder's numbers
        return (s + self.offsets.view(1, -1, 1, 1)).to(torch.float32).contiguous()

    def coding_models(self) -> list:
        """One constriction model per channel (cached until the tables change)."""
        from aekit.codec.coding import fixed_model

        key = (self.pmfs.data_ptr(), self.pmfs._version, tuple(self.pmfs.shape))
        if getattr(self, "_models_key", None) != key:
            pmfs, lengths = self.pmfs.cpu().numpy(), self.lengths.cpu().numpy()
            self._models = [fixed_model(pmfs[c, : lengths[c]]) for c in range(self.channels)]
            self._models_key = key
        return self._models

    def least_bits(self) -> float:
        """The fewest bits the coder can spend on one latent position, all channels (cached until the
        tables change): what bounds how short an honest payload can be (``coding.least_bits``)."""
        from aekit.codec.coding import least_bits

        key = (self.pmfs.data_ptr(), self.pmfs._version, tuple(self.pmfs.shape))
        if getattr(self, "_bits_key", None) != key:
            self._bits = float(least_bits(self.pmfs.cpu().numpy(), self.lengths.cpu().numpy()).sum())
            self._bits_key = key
        return self._bits

    def probability_rows(self, shape: tuple[int, int, int, int]) -> np.ndarray:
        """The pmf row of every element of a latent of ``shape`` (B, C, H, W), in C-order: (B*C*H*W, L)."""
        b, c, h, w = shape
        rows = np.repeat(self.pmfs.cpu().numpy(), h * w, axis=0)  # (C*H*W, L)
        return np.tile(rows, (b, 1))
