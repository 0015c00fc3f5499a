"""Variational autoencoder: the encoder gives a Gaussian q(z|x), the decoder a likelihood p(x|z).

Trained on the (beta-weighted) evidence lower bound with reparameterised samples (Kingma & Welling,
"Auto-encoding variational Bayes", ICLR 2014; beta as in Higgins et al., ICLR 2017).
``loss`` picks the likelihood: "bce" Bernoulli, "mse" Gaussian, "l1" Laplace; the Gaussian and Laplace
scales are learned (one per model), so no hand-tuned weight between reconstruction and KL is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aekit.errors import ConfigError
from aekit.models.base import AutoEncoderModel
from aekit.models.config import Backbone, Downsample, ModelConfig
from aekit.models.output import AEOutput, DiagonalGaussian


@dataclass
class VAEConfig(ModelConfig):
    backbone: Backbone = "dense"
    downsample: Downsample = "stride"  # for backbone="conv"
    beta: float = 1.0
    # KL warm-up (Sonderby et al., "Ladder variational autoencoders", NeurIPS 2016): the KL weight rises
    # linearly from 0 to beta over this many training steps, so the decoder learns to use the code
    # before the KL term can switch code dimensions off. 0 = no warm-up.
    kl_warmup_steps: int = 0

    def validate(self) -> None:
        super().validate()
        if self.beta < 0:
            raise ConfigError(f"beta weights the KL term and must be >= 0; got {self.beta}.")
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ConfigError(f"kl_warmup_steps must be an integer >= 0; got {self.kl_warmup_steps!r}.")


class VariationalAutoEncoder(AutoEncoderModel):
    config_class = VAEConfig

    @property
    def restrains_code(self) -> bool:
        return self.config.beta > 0

    def __init__(self, config: VAEConfig, modules: Sequence[type[nn.Module]] = ()):
        super().__init__(config, modules)
        # Log of the likelihood's scale for Gaussian/Laplace outputs (unused for Bernoulli). It starts at
        # scale 0.1, not 1: a wide start makes the KL term win early and the posterior collapse to the prior
        # (on digits, scale 1 gave a model no better than the mean image; 0.1 gave 4x lower error).
        self.log_scale = nn.Parameter(torch.full((), math.log(0.1)))
        if config.kl_warmup_steps:
            # Training steps taken so far, stored with the weights so a resumed run continues the warm-up
            # where it stopped. Only models with a warm-up have it: older model files load unchanged.
            self.register_buffer("kl_steps", torch.zeros((), dtype=torch.int64))

    @property
    def encoder_out(self) -> int:
        return 2 * self.config.code_size  # mean and log-variance

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, K) each
        return DiagonalGaussian(mean, logvar.clamp(-30.0, 20.0))

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x).mean  # the code of a VAE is the posterior mean: deterministic

    def forward(self, x: Tensor) -> AEOutput:
        q = self.posterior(x)
        if self.training and self.config.kl_warmup_steps and torch.is_grad_enabled():
            self.kl_steps += 1  # one training forward pass = one optimizer step
        code = q.sample() if self.training else q.mean
        logits = self.decode_logits(code)
        return AEOutput(logits=logits, recon=self.activate(logits), code=code, posterior=q)

    def regularizers(self, out: AEOutput) -> dict[str, Tensor]:
        # The reconstruction term is a mean over input elements, so the KL is divided by the number of
        # elements too: the sum is the negative ELBO per element, whose gradient matches the true ELBO's.
        kl = out.posterior.kl().mean() / self.config.n_features
        return {"kl": self.kl_weight() * kl}

    def kl_weight(self) -> float:
        """beta, scaled down linearly during the KL warm-up (validation always sees the full beta)."""
        warmup = self.config.kl_warmup_steps
        if not warmup or not self.training:
            return self.config.beta
        return self.config.beta * min(1.0, int(self.kl_steps) / warmup)
