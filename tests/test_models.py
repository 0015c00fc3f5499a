"""Every model family in the registry: shapes, one optimiser step, the VAE's posterior, losses, bad settings.

The families come from ``aekit.models.FAMILIES`` and each family's own ``Literal`` settings (backbone,
sparsity, ...) are crossed, so a new family or a new choice is tested without editing this file.
"""

from __future__ import annotations

import json
import math
import typing

import pytest
import torch
import torch.nn.functional as F

from aekit import losses
from aekit.errors import ConfigError
from aekit.models import FAMILIES, DiagonalGaussian, build_model, family_of
from aekit.models.sparse import kl_sparsity, l1_activity
from families import family_variants, layout


def backbone_of(family: str, settings: dict[str, typing.Any]) -> str:
    return settings.get("backbone") or getattr(FAMILIES[family].config_class, "backbone", "dense")


VARIANTS = family_variants()
VARIANT_IDS = ["-".join([family, *map(str, settings.values())]) for family, settings in VARIANTS]
# the model's view: (D,), (C, H, W) or for series (C, T)
INPUTS = {"table": (6,), "gray8x8": (1, 8, 8), "rgb9x7": (3, 9, 7), "series1x9": (1, 9), "series3x7": (3, 7)}
# the inputs each layout takes: a dense backbone flattens anything; conv needs images, conv1d series
TAKES = {
    "flat": ("table", "gray8x8", "rgb9x7"),
    "image": ("gray8x8", "rgb9x7"),
    "series": ("series1x9", "series3x7"),
}
SHAPE = {"flat": (1, 8, 8), "image": (1, 8, 8), "series": (1, 8)}  # one input of each layout
CODE = 3


def cases() -> list:
    """(family, settings, input kind) for every input a family's backbone takes."""
    out = []
    for (family, settings), vid in zip(VARIANTS, VARIANT_IDS, strict=True):
        for kind in TAKES[layout(family, settings)]:
            out.append(pytest.param(family, settings, kind, id=f"{vid}-{kind}"))
    return out


def tiny(family: str, settings: dict, shape: tuple[int, ...], **more):
    hidden = (4, 6) if layout(family, settings) != "flat" else (8,)  # two conv stages: 9 -> 5 -> 3 and back
    torch.manual_seed(0)
    return build_model(
        family, {"input_shape": shape, "code_size": CODE, "hidden": hidden, **settings, **more}
    )


def batch(shape: tuple[int, ...], n: int = 5) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(1))


def test_every_registered_family_is_covered():
    assert {family for family, _ in VARIANTS} == set(FAMILIES)
    assert ("sparse", {"backbone": "dense", "sparsity": "kl", "downsample": "stride"}) in VARIANTS
    assert ("vae", {"backbone": "conv", "downsample": "pool"}) in VARIANTS
    assert ("conv1d", {"backbone": "conv1d", "downsample": "pool"}) in VARIANTS
    assert ("vae", {"backbone": "dense", "downsample": "pool"}) not in VARIANTS  # refused: no convolutions


@pytest.mark.parametrize(("family", "settings", "kind"), cases())
def test_shapes(family, settings, kind):
    shape = INPUTS[kind]
    model = tiny(family, settings, shape).eval()
    x = batch(shape)
    with torch.no_grad():
        out = model(x)
        code = model.encode(x)
        back = model.decode(code)
    assert family_of(model) == family
    assert out.logits.shape == x.shape
    assert out.recon.shape == x.shape
    assert out.code.shape == (5, CODE)
    assert code.shape == (5, CODE)
    assert back.shape == x.shape
    assert torch.equal(back, out.recon)  # in eval mode forward is exactly decode(encode(x))
    assert ((out.recon >= 0) & (out.recon <= 1)).all()  # default output is a sigmoid
    if out.posterior is not None:
        assert out.posterior.mean.shape == out.posterior.logvar.shape == (5, CODE)


@pytest.mark.parametrize(("family", "settings", "kind"), cases())
@pytest.mark.parametrize("loss", ["mse", "l1", "bce"])
def test_one_optimizer_step_lowers_the_loss(family, settings, kind, loss):
    shape = INPUTS[kind]
    model = tiny(family, settings, shape, loss=loss).train()
    x = batch(shape, n=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now() -> torch.Tensor:
        torch.manual_seed(2)  # the same VAE sample before and after the step
        return losses.objective(model, model(x), x)["loss"]

    before = loss_now()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_now()
    assert math.isfinite(before.item())
    assert after.item() < before.item()


@pytest.mark.parametrize(("family", "settings", "kind"), cases())
def test_objective_is_the_sum_of_its_logged_parts(family, settings, kind):
    shape = INPUTS[kind]
    model = tiny(family, settings, shape)
    x = batch(shape)
    parts = losses.objective(model, model(x), x)
    others = [v for k, v in parts.items() if k != "loss"]
    assert "recon" in parts
    assert torch.allclose(parts["loss"], sum(others))
    assert all(v.ndim == 0 for v in parts.values())


@pytest.mark.parametrize(("family", "settings"), VARIANTS, ids=VARIANT_IDS)
def test_config_round_trips_through_json(family, settings):
    shape = SHAPE[layout(family, settings)]
    model = tiny(family, settings, shape)
    text = json.dumps(model.config.to_dict())
    rebuilt = build_model(family, json.loads(text))
    assert rebuilt.config == model.config
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize(("family", "settings"), VARIANTS, ids=VARIANT_IDS)
def test_same_seed_same_initial_weights(family, settings):
    shape = SHAPE[layout(family, settings)]
    a = tiny(family, settings, shape).state_dict()
    b = tiny(family, settings, shape).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- the VAE ---------------------------------------------------------------------------------------------
def test_kl_is_zero_for_the_prior_itself():
    q = DiagonalGaussian(torch.zeros(4, 3), torch.zeros(4, 3))
    assert torch.equal(q.kl(), torch.zeros(4))


def test_kl_matches_the_closed_form_and_is_nonnegative():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(16, 3, generator=g) * 2, torch.randn(16, 3, generator=g) * 2
    q = DiagonalGaussian(mean, logvar)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
    ).sum(dim=1)
    assert q.kl().shape == (16,)
    assert (q.kl() >= 0).all()
    assert torch.allclose(q.kl(), expected, atol=1e-5)


def test_posterior_sample_is_reparameterised():
    mean = torch.full((2000, 2), 3.0, requires_grad=True)
    logvar = torch.full((2000, 2), math.log(0.25), requires_grad=True)
    torch.manual_seed(0)
    z = DiagonalGaussian(mean, logvar).sample()
    assert z.shape == (2000, 2)
    assert abs(z.mean().item() - 3.0) < 0.05
    assert abs(z.std().item() - 0.5) < 0.05
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones_like(mean))  # dz/dmean = 1: gradients flow through the sample
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


@pytest.mark.parametrize("backbone", ["dense", "conv"])
def test_vae_code_is_the_posterior_mean_and_training_samples(backbone):
    model = tiny("vae", {"backbone": backbone}, (1, 8, 8))
    x = batch((1, 8, 8))
    with torch.no_grad():
        q = model.posterior(x)
        assert torch.equal(model.encode(x), q.mean)
        assert torch.equal(model.eval()(x).code, q.mean)
        assert not torch.equal(model.train()(x).code, q.mean)
        parts = model.regularizers(model(x))
    assert parts["kl"] >= 0


def test_vae_beta_weights_the_kl_term():
    x = batch((6,))
    kl = {}
    for beta in (0.0, 1.0, 2.0):
        model = tiny("vae", {"backbone": "dense"}, (6,), beta=beta).eval()
        kl[beta] = model.regularizers(model(x))["kl"]
    assert kl[0.0] == 0
    assert kl[1.0] > 0
    assert torch.allclose(kl[2.0], 2 * kl[1.0])


# -- the sparse model and the losses ---------------------------------------------------------------------
def test_sparse_kl_code_is_a_firing_rate():
    model = tiny("sparse", {"backbone": "dense", "sparsity": "kl"}, (6,)).eval()
    code = model.encode(batch((6,)) * 10 - 5)
    assert ((code > 0) & (code < 1)).all()


def test_sparsity_penalties():
    rho = 0.05
    assert kl_sparsity(torch.full((8, 3), rho), rho).abs() < 1e-6  # on target: no penalty
    assert kl_sparsity(torch.full((8, 3), 0.5), rho) > 0.1
    assert l1_activity(torch.tensor([[1.0, -3.0]]), rho) == 2.0
    model = tiny("sparse", {"backbone": "dense", "sparsity": "l1"}, (6,), sparsity_weight=0.0)
    assert model.regularizers(model(batch((6,))))["sparsity"] == 0


def test_losses_with_a_learned_scale_are_exact_negative_log_likelihoods():
    g = torch.Generator().manual_seed(0)
    recon, target = torch.rand(4, 5, generator=g), torch.rand(4, 5, generator=g)
    log_scale = torch.tensor(-0.7)
    scale = log_scale.exp()
    mse = losses.RECONSTRUCTION["mse"](recon, recon, target, log_scale)
    l1 = losses.RECONSTRUCTION["l1"](recon, recon, target, log_scale)
    assert torch.allclose(mse, -torch.distributions.Normal(recon, scale).log_prob(target), atol=1e-5)
    assert torch.allclose(l1, -torch.distributions.Laplace(recon, scale).log_prob(target), atol=1e-5)
    assert torch.allclose(losses.RECONSTRUCTION["mse"](recon, recon, target, None), (recon - target) ** 2)


def test_bce_is_computed_from_logits_and_stays_finite_when_the_sigmoid_saturates():
    logits = torch.tensor([[-200.0, -1.0, 0.0, 3.0, 200.0]])
    target = torch.tensor([[0.0, 0.2, 0.5, 1.0, 1.0]])
    got = losses.RECONSTRUCTION["bce"](logits, torch.sigmoid(logits), target, None)
    assert torch.isfinite(got).all()
    assert torch.allclose(
        got[:, 1:4], F.binary_cross_entropy(torch.sigmoid(logits[:, 1:4]), target[:, 1:4], reduction="none")
    )


# -- bad settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "settings"),
    [v for v in VARIANTS if backbone_of(*v) == "conv"],
    ids=[i for v, i in zip(VARIANTS, VARIANT_IDS, strict=True) if backbone_of(*v) == "conv"],
)
def test_conv_on_a_table_says_to_use_dense(family, settings):
    with pytest.raises(ConfigError, match=r"needs images.*got rows of shape \(6,\).*kind='dense'"):
        tiny(family, settings, (6,))


@pytest.mark.parametrize(("family", "settings"), VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"code_size": 0}, r"code_size must be a positive integer; got 0"),
        ({"activation": "foo"}, r"activation='foo' is not one of 'relu'"),
        ({"loss": "foo"}, r"loss='foo' is not one of 'mse', 'l1', 'bce'"),
        ({"hidden": ()}, r"hidden must be a non-empty list"),
    ],
    ids=["code_size0", "activation", "loss", "hidden"],
)
def test_bad_common_settings_raise_config_error(family, settings, bad, message):
    with pytest.raises(ConfigError, match=message):
        tiny(family, settings, (1, 8, 8), **bad)


@pytest.mark.parametrize(
    ("family", "bad", "message"),
    [
        ("sparse", {"rho": 2.0}, r"rho .* must lie in \(0, 1\); got 2.0"),
        ("sparse", {"rho": 0.0}, r"rho .* got 0.0"),
        ("sparse", {"sparsity": "l2"}, r"sparsity='l2' is not one of 'l1', 'kl'"),
        ("sparse", {"sparsity_weight": -1.0}, r"sparsity_weight must be >= 0; got -1.0"),
        ("vae", {"beta": -1.0}, r"beta .* must be >= 0; got -1.0"),
        ("vae", {"backbone": "rnn"}, r"backbone='rnn' is not one of 'dense', 'conv'"),
    ],
)
def test_bad_family_settings_raise_config_error(family, bad, message):
    with pytest.raises(ConfigError, match=message):
        build_model(family, {"input_shape": (6,), "code_size": 2, "hidden": (4,), **bad})


def test_unknown_family_and_unknown_setting():
    with pytest.raises(ConfigError, match=r"unknown model kind 'gan'; choose one of dense"):
        build_model("gan", {"input_shape": (6,)})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['beta'\] for ModelConfig"):
        build_model("dense", {"input_shape": (6,), "beta": 1.0})
