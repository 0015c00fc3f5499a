"""Generation: sampling, interpolation, traversals, the IWAE likelihood, dynamic binarisation, KL warm-up,
and the ``aekit sample`` / ``aekit interpolate`` / ``aekit eval`` verbs, on tiny models (8x8 digits).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from aekit import AutoEncoder, generate
from aekit.cli import inspect as inspect_verbs
from aekit.data import load
from aekit.errors import ConfigError, DataError, PosteriorCollapseWarning
from aekit.estimators import autoencoder as autoencoder_module
from aekit.models import build_model
from cli_helpers import assert_one_error, run

TINY = dict(code_size=2, hidden=(8,), epochs=1, batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    import os
    from pathlib import Path

    os.environ.setdefault("AEKIT_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    return load("digits").x_train[:240]  # float32 (240, 8, 8) in [0, 1]


@pytest.fixture(scope="module")
def vae(digits) -> AutoEncoder:
    return AutoEncoder(kind="vae", loss="bce", **TINY).fit(digits)


@pytest.fixture(scope="module")
def plain(digits) -> AutoEncoder:
    return AutoEncoder(kind="dense", loss="mse", **TINY).fit(digits)  # its loss is then its MSE


@pytest.fixture(scope="module")
def models(tmp_path_factory, vae, plain):
    folder = tmp_path_factory.mktemp("generate-models")
    vae.save(folder / "vae.aek")
    plain.save(folder / "ae.aek")
    return folder


# -- code paths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_paths_start_and_end_at_the_two_codes(method):
    a, b = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([-3.0, 0.5, 2.0])
    z = generate.path(a, b, 5, method)
    assert z.shape == (5, 3)
    torch.testing.assert_close(z[0], a)
    torch.testing.assert_close(z[-1], b)


def test_slerp_follows_the_circle_and_moves_the_norm_linearly():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    z = generate.path(a, b, 3, "slerp")
    torch.testing.assert_close(z[1], torch.tensor([3.0, 3.0]) / math.sqrt(2.0))  # 45 degrees, norm (2+4)/2
    assert float(generate.path(a, b, 3, "linear")[1].norm()) < 3.0  # lerp cuts through the middle


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.0, 0.0], [1.0, 2.0]),  # a zero code: no direction
        ([1.0, 2.0], [2.0, 4.0]),  # parallel: no plane to turn in
        ([1.0, 2.0], [-1.0, -2.0]),  # opposite: no unique great circle
    ],
)
def test_slerp_falls_back_to_a_straight_line_where_the_angle_is_undefined(a, b):
    a, b = torch.tensor(a), torch.tensor(b)
    z = generate.path(a, b, 4, "slerp")
    assert torch.isfinite(z).all()
    torch.testing.assert_close(z, generate.path(a, b, 4, "linear"))


@pytest.mark.parametrize("steps, method", [(1, "linear"), (0, "slerp"), (4, "cubic")])
def test_bad_path_settings_raise(steps, method):
    with pytest.raises(ConfigError, match="steps|method"):
        generate.path(torch.zeros(2), torch.ones(2), steps, method)


def test_traversal_sets_one_dimension_and_keeps_the_others():
    base = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    grid = generate.traversal(base, 1, [-1.0, 0.0, 1.0])
    assert grid.shape == (2, 3, 3)
    assert grid[:, :, 1].tolist() == [[-1.0, 0.0, 1.0]] * 2
    torch.testing.assert_close(grid[:, :, 0], base[:, :1].expand(2, 3))
    torch.testing.assert_close(grid[:, :, 2], base[:, 2:].expand(2, 3))


@pytest.mark.parametrize("dim", [-1, 3, 1.5])
def test_traversal_dimension_out_of_range_says_the_range(dim):
    with pytest.raises(ConfigError, match="0 to 2"):
        generate.traversal(torch.zeros(1, 3), dim, [0.0])


# -- the estimator ------------------------------------------------------------------------------------------


def test_sample_gives_new_data_in_the_training_layout_reproducibly(vae, digits):
    s = vae.sample(5, random_state=3)
    assert s.shape == (5, 8, 8) and s.dtype == vae.reconstruct(digits[:1]).dtype
    np.testing.assert_array_equal(s, vae.sample(5, random_state=3))
    assert not np.array_equal(vae.sample(5, random_state=3), vae.sample(5, random_state=4))
    # the samples are the decoded prior codes, nothing else
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(s, vae.inverse_transform(z))


def test_sample_leaves_the_global_rng_alone(vae):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    vae.sample(4)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("n", [0, -2, 1.5, True])
def test_sample_needs_a_positive_count(vae, n):
    with pytest.raises(ConfigError, match="n must be a whole number >= 1"):
        vae.sample(n)


@pytest.mark.parametrize("call", ["sample", "traverse", "log_likelihood"])
def test_vae_only_methods_on_a_plain_autoencoder_name_the_fix(plain, digits, call):
    args = {"sample": (3,), "traverse": (None, 0), "log_likelihood": (digits[:2],)}[call]
    with pytest.raises(ConfigError, match="needs a variational autoencoder.*kind='dense'.*kind='vae'"):
        getattr(plain, call)(*args)


@pytest.mark.parametrize("kind", ["vae", "dense"])
@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_ends_at_the_reconstructions_of_the_inputs(vae, plain, digits, kind, method):
    est = vae if kind == "vae" else plain
    out = est.interpolate(digits[0], digits[5:6], steps=6, method=method)
    assert out.shape == (6, 8, 8)
    np.testing.assert_allclose(out[0], est.reconstruct(digits[:1])[0], atol=1e-6)
    np.testing.assert_allclose(out[-1], est.reconstruct(digits[5:6])[0], atol=1e-6)


@pytest.mark.parametrize("a", [np.zeros((8, 7)), np.zeros((2, 8, 8)), np.zeros(64)])
def test_interpolate_inputs_of_the_wrong_shape_say_the_shape(vae, digits, a):
    with pytest.raises(DataError, match=r"a must be one sample of shape \(8, 8\)"):
        vae.interpolate(a, digits[1])


def test_traverse_from_the_prior_and_from_inputs(vae, digits):
    grid = vae.traverse(None, dim=1, n=3, random_state=0)
    assert grid.shape == (3, 7, 8, 8)  # default values: -3..3 in 7 steps
    rows = vae.traverse(digits[:2], dim=0, values=[-1.0, 1.0])
    assert rows.shape == (2, 2, 8, 8)
    code = vae.transform(digits[:1])[0]
    code[0] = 1.0
    np.testing.assert_allclose(rows[0, 1], vae.inverse_transform(code[None])[0], atol=1e-6)


@pytest.mark.parametrize("dim", [2, -1])
def test_traverse_dimension_out_of_range(vae, dim):
    with pytest.raises(ConfigError, match="out of range: the code has 2 dimensions"):
        vae.traverse(None, dim=dim)


def test_traverse_values_must_be_finite(vae):
    with pytest.raises(ConfigError, match="finite"):
        vae.traverse(None, dim=0, values=[0.0, np.nan])


# -- the likelihood -----------------------------------------------------------------------------------------


def _tiny_vae(loss: str, seed: int = 0):
    """A 1-D code, 3 features: small enough that log p(x) can be integrated on a grid."""
    torch.manual_seed(seed)
    model = build_model(
        "vae",
        {
            "input_shape": (3,),
            "code_size": 1,
            "hidden": (4,),
            "loss": loss,
            "output": "sigmoid" if loss == "bce" else "identity",
        },
    ).eval()
    with torch.no_grad():
        model.log_scale.fill_(math.log(0.5))  # a scale at which p(x|z) varies, but not sharply, with z
    return model


def _exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log integral N(z; 0, 1) p(x | z) dz by the trapezoid rule on [-10, 10]: (B,)."""
    z = torch.linspace(-10.0, 10.0, 20001, dtype=torch.float64)
    log_joint = generate.log_likelihood_given_code(
        model.double(), x.double(), z[:, None, None].expand(-1, len(x), 1)
    )
    log_joint = log_joint + (-0.5 * z**2 - 0.5 * math.log(2 * math.pi))[:, None]  # (Z, B)
    dz = float(z[1] - z[0])
    weights = torch.full_like(z, dz)
    weights[[0, -1]] = dz / 2
    return torch.logsumexp(log_joint + weights.log()[:, None], dim=0)


@pytest.mark.parametrize("loss", ["bce", "mse", "l1"])
def test_iwae_estimate_matches_the_exact_log_likelihood(loss):
    model = _tiny_vae(loss)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    with torch.no_grad():
        exact = _exact_log_px(model, x)
        model.float()
        estimate = generate.iw_log_likelihood(model, x, k=20000, generator=torch.Generator().manual_seed(0))
        elbo = torch.stack([generate.elbo(model, x, torch.Generator().manual_seed(s)) for s in range(400)])
    torch.testing.assert_close(estimate.double(), exact, atol=0.02, rtol=0)
    # the ELBO is a lower bound: its mean over draws lies below log p(x), up to the draws' noise
    elbo = elbo.double()
    assert (elbo.mean(0) <= exact + 3 * elbo.std(0) / math.sqrt(len(elbo))).all()


def test_iwae_bound_tightens_with_k_and_stays_below_the_truth():
    model = _tiny_vae("bce", seed=1)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    with torch.no_grad():
        exact = _exact_log_px(model, x)
        model.float()
        means = [
            torch.stack(
                [
                    generate.iw_log_likelihood(model, x, k, torch.Generator().manual_seed(s))
                    for s in range(300)
                ]
            ).mean(0)
            for k in (1, 10, 100)
        ]
    assert (means[0] < means[1]).all() and (means[1] < means[2]).all()
    assert (means[2].double() <= exact + 0.01).all()


def test_iwae_in_chunks_is_the_same_estimate(monkeypatch):
    model = _tiny_vae("bce")
    x = torch.tensor([[1.0, 0.0, 1.0]])
    with torch.no_grad():
        exact = _exact_log_px(model, x)
        model.float()
        monkeypatch.setattr(generate, "IW_CHUNK_ELEMENTS", 3 * 64)  # 64 samples per chunk, a short last one
        chunked = generate.iw_log_likelihood(model, x, k=20000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(chunked.double(), exact, atol=0.02, rtol=0)


def test_log_likelihood_of_the_estimator(vae, digits, tmp_path):
    binary = (digits[:30] > 0.5).astype(np.float32)
    ll = vae.log_likelihood(binary, k=20)
    assert ll.shape == (30,) and ll.dtype == np.float64 and (ll < 0).all()
    np.testing.assert_array_equal(ll, vae.log_likelihood(binary, k=20))  # random_state=0 by default
    vae.save(tmp_path / "m.aek")
    np.testing.assert_array_equal(ll, AutoEncoder.load(tmp_path / "m.aek").log_likelihood(binary, k=20))
    # more samples: a tighter (higher) bound on average
    assert vae.log_likelihood(binary, k=200).mean() > vae.log_likelihood(binary, k=1).mean()
    grey = vae.log_likelihood(digits[:30], k=5, binarize_seed=0)
    assert np.isfinite(grey).all()
    with pytest.raises(ConfigError, match="k must be a whole number >= 1"):
        vae.log_likelihood(binary, k=0)


def test_binarize_seed_needs_a_bernoulli_likelihood(digits):
    est = AutoEncoder(kind="vae", loss="mse", **TINY).fit(digits)
    with pytest.raises(ConfigError, match="binarize_seed.*loss='mse'"):
        est.log_likelihood(digits[:3], binarize_seed=0)
    assert np.isfinite(est.log_likelihood(digits[:3], k=3)).all()


def test_binarize_draws_each_pixel_with_its_intensity():
    x = np.full((200, 50), 0.3)
    b = generate.binarize(x, seed=0)
    assert set(np.unique(b)) == {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 0.01
    np.testing.assert_array_equal(b, generate.binarize(x, seed=0))


# -- training options -----------------------------------------------------------------------------------


def test_dynamic_binarisation_trains_on_fresh_binary_pixels(digits):
    torch.manual_seed(0)
    batch = torch.full((400, 1, 8, 8), 0.25)
    first, target = autoencoder_module.bernoulli_pairs(batch)
    second, _ = autoencoder_module.bernoulli_pairs(batch)
    assert first is target and set(first.unique().tolist()) == {0.0, 1.0}
    assert abs(float(first.mean()) - 0.25) < 0.01 and not torch.equal(first, second)
    a = AutoEncoder(kind="vae", loss="bce", binarize=True, **TINY).fit(digits)
    b = AutoEncoder(kind="vae", loss="bce", binarize=True, **TINY).fit(digits)
    c = AutoEncoder(kind="vae", loss="bce", **TINY).fit(digits)
    assert a.history_[-1]["loss"] == b.history_[-1]["loss"]  # seeded: reproducible
    assert a.history_[-1]["loss"] != c.history_[-1]["loss"]  # and really trained on other pixels


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_binarize_needs_bce(digits, loss):
    with pytest.raises(ConfigError, match="binarize=True .* needs loss='bce'"):
        AutoEncoder(kind="vae", loss=loss, binarize=True, **TINY).fit(digits)


def test_kl_warmup_ramps_the_kl_weight_and_survives_save_and_load(digits, tmp_path):
    est = AutoEncoder(kind="vae", loss="bce", kl_warmup=2, beta=0.5, **{**TINY, "epochs": 3}).fit(digits)
    model = est.model_
    steps_per_epoch = math.ceil(len(digits) * 0.9 / TINY["batch_size"])
    assert model.config.kl_warmup_steps == 2 * steps_per_epoch
    assert int(model.kl_steps) == 3 * steps_per_epoch
    model.train()
    assert model.kl_weight() == 0.5  # warm-up over
    model.kl_steps.fill_(steps_per_epoch)
    assert model.kl_weight() == pytest.approx(0.25)
    model.eval()
    assert model.kl_weight() == 0.5  # validation always sees the full weight
    est.save(tmp_path / "w.aek")
    loaded = AutoEncoder.load(tmp_path / "w.aek")
    assert int(loaded.model_.kl_steps) == steps_per_epoch and loaded.kl_warmup == 2


@pytest.mark.parametrize("kind, warmup, message", [("dense", 2, "only kind='vae'"), ("vae", -1, ">= 0")])
def test_bad_kl_warmup(digits, kind, warmup, message):
    with pytest.raises(ConfigError, match=message):
        AutoEncoder(kind=kind, kl_warmup=warmup, **TINY).fit(digits)


# A VAE whose KL term wins: a large beta and a fast learning rate pull every code onto the prior in 2 epochs.
COLLAPSING = dict(
    kind="vae", loss="bce", beta=20.0, lr=0.03, code_size=2, hidden=(8,), epochs=2, batch_size=32
)


def test_a_collapsed_vae_warns_and_names_the_fix(digits):
    with pytest.warns(PosteriorCollapseWarning, match=r"kl_warmup=\d+; --kl-warmup \d+.*beta=5, --beta 5"):
        AutoEncoder(**COLLAPSING, random_state=0).fit(digits)


def test_a_working_vae_does_not_warn(digits):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PosteriorCollapseWarning)
        AutoEncoder(**{**COLLAPSING, "beta": 1.0, "lr": 6e-3}, random_state=0).fit(digits)


# -- the command line -----------------------------------------------------------------------------------


def test_cli_train_says_once_that_a_vae_collapsed(digits, tmp_path, capsys):
    np.save(tmp_path / "digits.npy", digits)
    options = ["--kind", "vae", "--loss", "bce", "--beta", "20", "--lr", "0.03", "--code-size", "2"]
    options += ["--hidden", "8", "--epochs", "2", "--batch-size", "32", "--seed", "0", "--quiet"]
    code, out, err = run(
        capsys, "train", "--data", tmp_path / "digits.npy", "--out", tmp_path / "v.aek",
        "--runs", tmp_path / "runs", *options,
    )  # fmt: skip
    assert code == 0 and "wrote" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aekit: warning: posterior collapse"), err
    assert "--kl-warmup" in lines[0] and "--beta" in lines[0]


def test_cli_sample_png_and_npy(models, tmp_path, capsys, vae):
    code, out, _ = run(capsys, "sample", models / "vae.aek", "-n", 10, "--cols", 4, "-o", tmp_path / "s.png")
    assert code == 0 and "10 samples" in out
    width, height = Image.open(tmp_path / "s.png").size
    # 8x8 tiles enlarged 6x to 48x48, 2-pixel gaps: 4 columns, 3 rows
    assert (width, height) == (4 * 50 + 2, 3 * 50 + 2)
    code, _, _ = run(capsys, "sample", models / "vae.aek", "-n", 3, "--seed", 7, "-o", tmp_path / "s.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), vae.sample(3, random_state=7))


def test_cli_sample_traversal(models, tmp_path, capsys):
    args = ("sample", models / "vae.aek", "-n", 2, "--traverse", 1, "--range", 2, "--steps", 5)
    code, out, _ = run(capsys, *args, "-o", tmp_path / "t.npy")
    assert code == 0 and "code dimension 1" in out
    assert np.load(tmp_path / "t.npy").shape == (2, 5, 8, 8)
    code, _, _ = run(capsys, *args, "-o", tmp_path / "t.png")
    assert code == 0 and Image.open(tmp_path / "t.png").size == (5 * 50 + 2, 2 * 50 + 2)


def test_cli_interpolate_from_two_files_or_one_file_and_indices(models, tmp_path, capsys, digits, plain):
    np.save(tmp_path / "a.npy", digits[0])
    np.save(tmp_path / "b.npy", digits[3][None])  # a batch of one is one sample too
    np.save(tmp_path / "many.npy", digits[:10])
    code, out, _ = run(
        capsys,
        "interpolate",
        models / "ae.aek",
        tmp_path / "a.npy",
        tmp_path / "b.npy",
        "-o",
        tmp_path / "i.npy",
    )
    assert code == 0 and "8 steps (linear)" in out
    np.testing.assert_array_equal(np.load(tmp_path / "i.npy"), plain.interpolate(digits[0], digits[3]))
    code, _, _ = run(
        capsys,
        "interpolate",
        models / "vae.aek",
        tmp_path / "many.npy",
        "--index",
        0,
        3,
        "--steps",
        4,
        "--method",
        "slerp",
        "-o",
        tmp_path / "i.png",
    )
    assert code == 0
    assert Image.open(tmp_path / "i.png").size == (6 * 50 + 2 + 2 * 4, 52)  # input, 4 steps, input


def test_cli_interpolate_between_two_png_images_of_an_8_bit_model(tmp_path, capsys, digits):
    pixels = np.rint(digits * 255).astype(np.uint8)  # (240, 8, 8) uint8, as images come
    AutoEncoder(kind="vae", loss="bce", **TINY).fit(pixels).save(tmp_path / "m.aek")
    Image.fromarray(pixels[0]).save(tmp_path / "a.png")
    Image.fromarray(pixels[1]).save(tmp_path / "b.png")
    code, _, _ = run(
        capsys,
        "interpolate",
        tmp_path / "m.aek",
        tmp_path / "a.png",
        tmp_path / "b.png",
        "--steps",
        3,
        "-o",
        tmp_path / "i.png",
    )
    grid = np.asarray(Image.open(tmp_path / "i.png"))
    assert code == 0 and grid.shape == (52, 5 * 50 + 2 + 2 * 4)
    # the input, shown as it is: each pixel a 6x6 block
    np.testing.assert_array_equal(grid[2:50, 2:50], pixels[0].repeat(6, axis=0).repeat(6, axis=1))


def test_cli_eval_reports_the_iwae_nll_for_a_vae_only(models, capsys):
    code, out, _ = run(capsys, "eval", models / "vae.aek", "--data", "digits", "--json", "--iw-samples", 7)
    ll = json.loads(out)["log_likelihood"]
    assert code == 0 and ll["k"] == 7 and ll["binarized"] and ll["nll_nats"] > 0
    code, out, err = run(capsys, "eval", models / "vae.aek", "--data", "digits")
    assert code == 0 and "NLL, nats/sample (IWAE" in out and "upper bound" in err
    code, out, _ = run(capsys, "eval", models / "ae.aek", "--data", "digits", "--json")
    report = json.loads(out)
    assert code == 0 and "log_likelihood" not in report
    assert report["autoencoder"]["loss"]["loss"] == report["autoencoder"]["loss"]["recon"]  # no other term
    assert inspect_verbs.IW_SAMPLES == autoencoder_module.IW_SAMPLES


def test_cli_eval_shows_each_number_once(models, capsys):
    """A plain autoencoder's loss is its recon, which on float data is the MSE: one row, not three."""
    mse = json.loads(run(capsys, "eval", models / "ae.aek", "--data", "digits", "--json")[1])["autoencoder"]
    code, out, _ = run(capsys, "eval", models / "ae.aek", "--data", "digits")
    assert code == 0 and out.count(f"{mse['mse']:.5g}") == 1
    assert "model recon" not in out and "model loss" not in out and "its MSE" in " ".join(out.split())
    code, out, _ = run(capsys, "eval", models / "vae.aek", "--data", "digits", "--iw-samples", 2)
    assert code == 0 and "model kl" in out and "model loss" in out  # a VAE's parts differ: each shown


def test_cli_help(capsys):
    for verb in ("sample", "interpolate"):
        code, out, _ = run(capsys, verb, "--help")
        assert code == 0 and "-o OUT" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (("sample", "{ae}", "-o", "{tmp}/x.png"), ("needs a variational autoencoder", "kind='vae'")),
        (("sample", "{vae}", "-n", "0", "-o", "{tmp}/x.png"), ("-n", ">= 1")),
        (("sample", "{vae}", "-n", "-3", "-o", "{tmp}/x.png"), ("-n", ">= 1")),
        (("sample", "{vae}", "--traverse", "2", "-o", "{tmp}/x.npy"), ("out of range", "2 dimensions")),
        (("sample", "{vae}", "--traverse", "0", "-o", "{tmp}/x.csv"), (".csv holds tables",)),
        (("sample", "{vae}", "-o", "{vae}"), ("refusing to overwrite",)),
        (
            ("interpolate", "{vae}", "{tmp}/many.npy", "{tmp}/a.npy", "-o", "{tmp}/x.npy"),
            ("holds 10 samples",),
        ),
        (
            ("interpolate", "{vae}", "{tmp}/wrong.npy", "{tmp}/a.npy", "-o", "{tmp}/x.npy"),
            ("(5, 5)", "(8, 8)"),
        ),
        (
            ("interpolate", "{vae}", "{tmp}/many.npy", "--index", "0", "10", "-o", "{tmp}/x.npy"),
            ("--index 10",),
        ),
        (("interpolate", "{vae}", "{tmp}/many.npy", "-o", "{tmp}/x.npy"), ("--index I J",)),
        (
            ("interpolate", "{vae}", "{tmp}/a.npy", "{tmp}/a.npy", "--steps", "1", "-o", "{tmp}/x.npy"),
            ("--steps",),
        ),
        (
            ("interpolate", "{vae}", "{tmp}/a.npy", "{tmp}/a.npy", "--method", "cubic", "-o", "{tmp}/x.npy"),
            ("cubic",),
        ),
        (
            ("interpolate", "{vae}", "{tmp}/a.npy", "{tmp}/a.npy", "-o", "{tmp}/a.npy"),
            ("refusing to overwrite",),
        ),
        (("eval", "{vae}", "--data", "digits", "--iw-samples", "0"), ("--iw-samples", ">= 1")),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(models, tmp_path, capsys, digits, argv, words):
    np.save(tmp_path / "a.npy", digits[0])
    np.save(tmp_path / "many.npy", digits[:10])
    np.save(tmp_path / "wrong.npy", digits[0, :5, :5])
    names = {"ae": models / "ae.aek", "vae": models / "vae.aek", "tmp": tmp_path}
    code, _, err = run(capsys, *(a.format(**names) for a in argv))
    assert_one_error(code, err, *words)


def test_cli_png_of_a_table_model_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    est = AutoEncoder(kind="vae", **TINY).fit(rng.normal(size=(64, 5)).astype(np.float32))
    est.save(tmp_path / "t.aek")
    code, _, err = run(capsys, "sample", tmp_path / "t.aek", "-o", tmp_path / "x.png")
    assert_one_error(code, err, "tables of 5 features", ".npy")
    code, _, _ = run(capsys, "sample", tmp_path / "t.aek", "-n", 4, "-o", tmp_path / "x.csv")
    assert code == 0 and np.loadtxt(tmp_path / "x.csv", delimiter=",", skiprows=1).shape == (4, 5)


def test_resume_mid_warm_up_with_binarisation_is_bit_identical(digits, tmp_path, monkeypatch):
    from aekit.training.trainer import Trainer

    params = dict(kind="vae", loss="bce", binarize=True, kl_warmup=3, **{**TINY, "epochs": 4})
    whole = AutoEncoder(**params).fit(digits)
    original = Trainer._write_epoch

    class Killed(Exception):
        pass

    def write_then_stop(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        if state["epoch"] == 2:
            raise Killed  # after epoch 2's checkpoint, as a kill would leave it

    monkeypatch.setattr(Trainer, "_write_epoch", write_then_stop)
    with pytest.raises(Killed):
        AutoEncoder(**params, run_dir=tmp_path).fit(digits)
    monkeypatch.setattr(Trainer, "_write_epoch", original)
    resumed = AutoEncoder(**params, run_dir=tmp_path, resume=True).fit(digits)
    assert int(resumed.model_.kl_steps) == int(whole.model_.kl_steps)
    for name, tensor in whole.model_.state_dict().items():
        assert torch.equal(resumed.model_.state_dict()[name], tensor), name
