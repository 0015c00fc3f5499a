"""Training one round of an anomaly detector's members: together when they can be, one by one otherwise.

Dense members with the detector's own training settings are trained at once, each architecture's members
in one batched pass (``aekit.training.ensemble``): the same models as ``AutoEncoder.fit`` would give,
several times faster for the small networks a detector uses. Any other member (convolutional, a VAE, a
sparse model, settings passed through ``autoencoder_params``) trains through ``AutoEncoder.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aekit import threads
from aekit.data.scaling import fit_spec
from aekit.device import resolve_device
from aekit.estimators.autoencoder import AutoEncoder

# Families whose training is plain reconstruction under squared error, with no sampling in forward,
# and whose networks ensemble.stackable can take.
TOGETHER = ("dense",)


def train_round(
    settings: dict[str, Any], hiddens: Sequence[Any], seeds: Sequence[int], rows: np.ndarray, together: bool
) -> list[AutoEncoder]:
    """One fitted AutoEncoder per (hidden, seed), each trained on ``rows`` with ``settings``."""
    members = [
        AutoEncoder(**{**settings, "hidden": h}, random_state=s) for h, s in zip(hiddens, seeds, strict=True)
    ]
    if not together or settings["kind"] not in TOGETHER or settings.get("loss") != "mse":
        return [member.fit(rows) for member in members]
    import torch

    from aekit.models import build_model
    from aekit.training import TrainConfig
    from aekit.training.ensemble import fit_together, stackable

    first = members[0]
    device = resolve_device(first.device)
    spec = fit_spec(rows, first.scaling, "mse", series=first._takes_series())  # the same for every member
    data = torch.from_numpy(spec.to_model(rows)).to(device)
    models = []
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        for member, seed in zip(members, seeds, strict=True):
            torch.manual_seed(seed)  # each member's initial weights, as AutoEncoder.fit seeds them
            models.append(build_model(member.kind, member._model_settings(spec)).to(device))
    if not stackable(models):  # e.g. conv members: one by one
        return [member.fit(rows) for member in members]
    config = TrainConfig(
        epochs=int(first.epochs),
        batch_size=int(first.batch_size),
        lr=first.lr,
        weight_decay=first.weight_decay,
        schedule=first.schedule,
        device=device,
    )
    rows_per_step = min(config.batch_size, len(data)) * len(models)

    def step() -> int:  # multiply-adds of one step's forward pass, over every member (the widest's)
        return rows_per_step * max(threads.macs_per_row(model, spec.input_shape) for model in models)

    with threads.for_work(step, None, device):  # one thread for small work (aekit.threads)
        histories = fit_together(models, data, config, seeds)  # every width in one stack
    for i, (member, model) in enumerate(zip(members, models, strict=True)):
        member.model_, member.spec_, member.history_ = model.eval(), spec, histories[i]
        member.n_features_in_ = spec.n_features
        member.loss_ = "mse"
        member.code_size_ = member._n_features_out = model.config.code_size
        member.device_ = device
    return members
