"""Generation with autoencoders: codes from the prior, paths between codes, traversals, and the VAE's
importance-weighted log-likelihood.

Everything here works on tensors in the model's own (scaled) space; ``AutoEncoder`` wraps it for user
arrays. The likelihood follows Burda, Grosse & Salakhutdinov, "Importance weighted autoencoders", ICLR 2016:
log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), a bound that tightens as k grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from aekit.errors import ConfigError
from aekit.losses import RECONSTRUCTION
from aekit.models.output import standard_normal_log_prob

# Decoder outputs held at once while estimating the likelihood: samples x batch x features floats
# (2**24 floats = 64 MiB), whatever k is: k only changes how many chunks are summed.
IW_CHUNK_ELEMENTS = 2**24

# The likelihood each reconstruction loss stands for, as the IWAE estimate reports it.
LIKELIHOODS = {
    "bce": "Bernoulli (exact for binary data; for grey values it is not a normalised density)",
    "mse": "Gaussian with the model's learned scale, a density of the scaled values the model sees",
    "l1": "Laplace with the model's learned scale, a density of the scaled values the model sees",
}


# -- codes ------------------------------------------------------------------------------------------------


def prior_codes(
    n: int, code_size: int, generator: torch.Generator, device: str | torch.device = "cpu"
) -> Tensor:
    """``n`` codes drawn from the VAE's prior N(0, I): (n, code_size)."""
    z = torch.randn(n, code_size, generator=generator)  # (n, K): drawn on the CPU, same on every device
    return z.to(device)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Straight line from ``a`` (t=0) to ``b`` (t=1): a, b (K,), t (T,) -> (T, K)."""
    return a[None] + t[:, None] * (b - a)[None]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White, "Sampling generative networks", 2016).

    Follows the great circle between the directions of ``a`` and ``b`` while the norm moves linearly from
    |a| to |b|, so the path stays where a Gaussian prior puts its mass instead of cutting through the low-norm
    middle. Where the angle is undefined or tiny (a zero code, parallel codes) it falls back to ``lerp``;
    opposite codes have no unique great circle and also fall back. a, b (K,), t (T,) -> (T, K).
    """
    na, nb = a.norm(), b.norm()
    if float(na) < 1e-12 or float(nb) < 1e-12:
        return lerp(a, b, t)
    cos = torch.clamp(torch.dot(a / na, b / nb), -1.0, 1.0)
    if abs(float(cos)) > 1.0 - 1e-6:  # (anti)parallel to float32 precision: sin(omega) would be ~0
        return lerp(a, b, t)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    wa = torch.sin((1.0 - t) * omega) / sin  # (T,)
    wb = torch.sin(t * omega) / sin  # (T,)
    direction = wa[:, None] * (a / na)[None] + wb[:, None] * (b / nb)[None]  # (T, K), unit length
    norm = (1.0 - t) * na + t * nb  # (T,)
    return direction * norm[:, None]


PATHS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {"linear": lerp, "slerp": slerp}


def path(a: Tensor, b: Tensor, steps: int, method: str = "linear") -> Tensor:
    """``steps`` codes from ``a`` to ``b``, both ends included: (steps, K)."""
    if method not in PATHS:
        raise ConfigError(f"method={method!r} is not one of {', '.join(map(repr, PATHS))}.")
    if not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"steps must be a whole number >= 2 (the two ends included); got {steps!r}.")
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device)  # (T,)
    return PATHS[method](a, b, t)


def traversal(base: Tensor, dim: int, values: Sequence[float]) -> Tensor:
    """Each row of ``base`` with code dimension ``dim`` set to each of ``values`` in turn.

    base (R, K) -> (R, V, K): row r, column v is base[r] with z[dim] = values[v].
    """
    code_size = base.shape[1]
    if not isinstance(dim, int) or not 0 <= dim < code_size:
        raise ConfigError(
            f"dim={dim!r} is out of range: the code has {code_size} dimensions, 0 to {code_size - 1}."
        )
    grid = base[:, None, :].repeat(1, len(values), 1)  # (R, V, K)
    grid[:, :, dim] = torch.as_tensor(list(values), dtype=base.dtype, device=base.device)[None, :]
    return grid


# -- likelihood -------------------------------------------------------------------------------------------


def log_likelihood_given_code(model, x: Tensor, z: Tensor) -> Tensor:
    """log p(x | z) summed over features, in nats: x (B, *shape), z (S, B, K) -> (S, B)."""
    s, b = z.shape[:2]
    logits = model.decode_logits(z.reshape(s * b, -1))  # (S*B, *shape)
    target = x[None].expand(s, *x.shape).reshape(s * b, *x.shape[1:])  # (S*B, *shape)
    nll = RECONSTRUCTION[model.config.loss](logits, model.activate(logits), target, model.log_scale)
    return -nll.reshape(s, b, -1).sum(dim=2)  # (S, B)


def iw_log_likelihood(model, x: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """The importance-weighted estimate of log p(x) with ``k`` samples of q(z|x), in nats: x (B, ...) -> (B,).

    k=1 is an unbiased estimate of the ELBO; larger k gives a tighter lower bound on log p(x). Samples are
    drawn in chunks and combined with logsumexp, so memory stays bounded however large k is.
    """
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k (importance samples) must be a whole number >= 1; got {k!r}.")
    q = model.posterior(x)  # mean, logvar (B, K)
    b, code_size = q.mean.shape
    chunk = max(1, IW_CHUNK_ELEMENTS // max(1, b * model.config.n_features))
    total = torch.full((b,), -math.inf, dtype=q.mean.dtype, device=q.mean.device)  # running logsumexp
    for start in range(0, k, chunk):
        s = min(chunk, k - start)
        eps = torch.randn(s, b, code_size, generator=generator).to(q.mean.device)  # (S, B, K)
        z = q.mean[None] + q.std[None] * eps  # (S, B, K)
        log_w = log_likelihood_given_code(model, x, z) + standard_normal_log_prob(z) - q.log_prob(z)  # (S, B)
        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
    return total - math.log(k)


def elbo(model, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The evidence lower bound with the KL in closed form and one sample for the likelihood: (B,) nats."""
    q = model.posterior(x)
    eps = torch.randn(q.mean.shape, generator=generator).to(q.mean.device)  # (B, K)
    z = (q.mean + q.std * eps)[None]  # (1, B, K)
    return log_likelihood_given_code(model, x, z)[0] - q.kl()


def binarize(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Binary copy of values in [0, 1]: 1 where u < x, u ~ U(0, 1) from numpy's default_rng(``seed``).

    The fixed-seed binarisation of a test set (each pixel on with probability equal to its intensity), so
    Bernoulli likelihoods of grey images are scored on the same binary images every time.
    """
    values = np.asarray(x, dtype=np.float64)
    u = np.random.default_rng(seed).random(values.shape)
    return (u < values).astype(np.float32)
