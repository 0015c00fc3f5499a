"""aekit.training.ensemble: dense members trained in one stack, each exactly as it would train alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.errors import TrainingError
from aekit.models import build_model
from aekit.training import TrainConfig
from aekit.training.ensemble import fit_together, stackable


def dense(width: int, seed: int, d: int = 6) -> torch.nn.Module:
    torch.manual_seed(seed)
    settings = {"input_shape": (d,), "hidden": (width,), "code_size": 2, "output": "identity", "loss": "mse"}
    return build_model("dense", settings)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_members_of_different_widths_train_in_one_stack_as_they_would_alone():
    data = torch.from_numpy(np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32))
    config = TrainConfig(epochs=2, batch_size=32)
    together = [dense(4, 0), dense(8, 1), dense(4, 2)]
    alone = [dense(4, 0), dense(8, 1), dense(4, 2)]
    pairs = zip(together, alone, strict=True)
    assert all(torch.equal(a, b) for m, n in pairs for a, b in zip(weights(m), weights(n), strict=True))
    histories = fit_together(together, data, config, seeds=[10, 11, 12])
    for model, seed in zip(alone, [10, 11, 12], strict=True):
        fit_together([model], data, config, seeds=[seed])
    for m, n in zip(together, alone, strict=True):
        for a, b in zip(weights(m), weights(n), strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)  # only rounding differs
    assert [len(h) for h in histories] == [2, 2, 2]
    assert set(histories[0][0]) == {"epoch", "loss", "recon", "lr", "seconds"}


def test_training_lowers_each_members_loss_and_the_shuffles_differ():
    rng = np.random.default_rng(1)
    data = torch.from_numpy((rng.normal(size=(256, 2)) @ rng.normal(size=(2, 6))).astype(np.float32))
    models = [dense(8, 0), dense(8, 0)]  # the same start: only their shuffles tell them apart
    histories = fit_together(models, data, TrainConfig(epochs=6, batch_size=32), seeds=[0, 1])
    for history in histories:
        assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert not torch.equal(weights(models[0])[0], weights(models[1])[0])


def test_only_dense_stacks_qualify():
    conv = build_model(
        "conv", {"input_shape": (1, 8, 8), "hidden": (4,), "code_size": 2, "output": "sigmoid", "loss": "mse"}
    )
    assert stackable([dense(4, 0), dense(8, 0)])
    assert not stackable([conv])


def test_a_diverging_run_says_how_to_fix_it():
    data = torch.full((64, 6), 1e30)
    with pytest.raises(TrainingError, match="Lower the learning rate"):
        fit_together([dense(4, 0)], data, TrainConfig(epochs=1, batch_size=32), seeds=[0])
