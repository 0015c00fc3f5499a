"""Ordered codes (nested dropout): ``AutoEncoder(ordered=True)``, ``code_size="auto"``, ``compare --ordered``.

Low-rank tables (3 directions of variance 9, 4 and 1 in 16 features, plus a little noise): an ordered model
must put the biggest direction first, so that each longer prefix reconstructs better until the third.
Tiny dense models, each fit about a second.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aekit import AutoEncoder
from aekit.data import load
from aekit.errors import ConfigError, DataError
from aekit.estimators import ordered
from aekit.reports.compare import compare_with_pca
from cli_helpers import run

RANK = 3
FIT = {"hidden": (32,), "epochs": 60, "batch_size": 32}
TINY = {"hidden": (8,), "batch_size": 64, "epochs": 1}


def low_rank(seed: int, n: int = 512, d: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, RANK)))[0].T  # (3, d), orthonormal rows
    x = (rng.normal(size=(n, RANK)) * [3.0, 2.0, 1.0]) @ basis + 0.05 * rng.normal(size=(n, d))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return low_rank(0)


@pytest.fixture(scope="module")
def auto(table) -> AutoEncoder:
    return AutoEncoder(code_size="auto", random_state=0, **FIT).fit(table)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_errors_fall_with_length_and_beat_a_plain_model(seed):
    x = low_rank(seed)
    est = AutoEncoder(code_size=6, ordered=True, random_state=seed, **FIT).fit(x)
    plain = AutoEncoder(code_size=6, random_state=seed, **FIT).fit(x)
    assert not hasattr(plain, "reconstruction_curve_") and plain.code_size_ == 6
    plain_curve = ordered.reconstruction_curve(plain.model_, torch.from_numpy(plain.spec_.to_model(x)))
    check_ordered(est.reconstruction_curve_, plain_curve)


def check_ordered(curve: np.ndarray, plain_curve: np.ndarray) -> None:
    """What nested dropout must give on ``low_rank`` data, with margins measured over ten seeds."""
    assert curve.shape == (6,) and curve.dtype == np.float64 and np.isfinite(curve).all()
    assert np.all(np.diff(curve) <= 0.05 * curve[:-1] + 0.005)  # a longer prefix is never worse (noise)
    # the second direction lowers the error a lot (standardised data: about 0.45, then 0.2, then 0.02);
    # the third is in by one unit past the rank (one seed in ten puts it in the fourth unit)
    assert curve[1] < 0.7 * curve[0] and curve[RANK] < 0.15 * curve[0]
    # a model trained without nested dropout spreads each direction over all its units
    assert curve[1] < 0.6 * plain_curve[1] and curve[2] < 0.5 * plain_curve[2]


def test_an_ordered_model_keeps_every_column_and_decodes_any_prefix(table):
    est = AutoEncoder(code_size=5, ordered=True, random_state=0, **TINY).fit(table)
    assert est.code_size_ == 5 and est.transform(table).shape == (len(table), 5)
    codes = est.transform(table[:10])
    two = est.inverse_transform(codes[:, :2])
    padded = est.inverse_transform(np.hstack([codes[:, :2], np.zeros((10, 3), np.float32)]))
    np.testing.assert_array_equal(two, padded)
    assert not est.model_.decoder._forward_pre_hooks  # nested dropout only while training
    with pytest.raises(DataError, match=r"\(N, w\) with w from 1 to 5"):
        est.inverse_transform(np.zeros((2, 6), np.float32))
    plain = AutoEncoder(code_size=5, random_state=0, **TINY).fit(table)
    with pytest.raises(DataError, match=r"\(N, 5\)"):
        plain.inverse_transform(codes[:, :2])


def test_auto_code_size_keeps_a_short_prefix_of_low_rank_data(auto, table):
    units = ordered.code_units("auto", table.shape[1])  # half the 16 features
    assert auto.model_.config.code_size == units == 8
    assert auto.reconstruction_curve_.shape == (units,)
    assert RANK <= auto.code_size_ < units
    curve = auto.reconstruction_curve_
    assert curve[auto.code_size_ - 1] <= curve[-1] * (1 + auto.code_tolerance)
    codes = auto.transform(table)
    assert codes.shape == (len(table), auto.code_size_)
    assert len(auto.get_feature_names_out()) == auto.code_size_
    np.testing.assert_allclose(auto.inverse_transform(codes), auto.reconstruct(table), atol=1e-5)
    # score_samples scores that same reconstruction
    recon = auto.spec_.to_model(auto.reconstruct(table))
    mse = ((recon - auto.spec_.to_model(table)) ** 2).mean(axis=1)
    np.testing.assert_allclose(-auto.score_samples(table), mse, rtol=1e-4, atol=1e-6)


def test_a_looser_tolerance_never_keeps_more():
    curve = np.array([0.5, 0.2, 0.03, 0.028, 0.025, 0.026])  # the last is not the lowest: noise
    widths = [ordered.smallest_within(curve, t) for t in (0.0, 0.05, 0.2, 10.0)]
    assert widths == [5, 5, 3, 2]


def test_save_and_load_keep_the_curve_and_the_width(auto, table, tmp_path):
    path = tmp_path / "auto.aek"
    auto.save(path)
    back = AutoEncoder.load(path)
    assert back.code_size_ == auto.code_size_ and back.code_size == "auto"
    np.testing.assert_array_equal(back.reconstruction_curve_, auto.reconstruction_curve_)
    np.testing.assert_array_equal(back.transform(table), auto.transform(table))
    assert back.get_feature_names_out().tolist() == auto.get_feature_names_out().tolist()
    plain = AutoEncoder(code_size=2, random_state=0, **TINY).fit(table)
    plain.save(tmp_path / "plain.aek")
    assert not hasattr(AutoEncoder.load(tmp_path / "plain.aek"), "reconstruction_curve_")


def test_a_refit_without_ordered_drops_the_curve(table):
    est = AutoEncoder(code_size=3, ordered=True, random_state=0, **TINY).fit(table)
    est.set_params(ordered=False).fit(table)
    assert not hasattr(est, "reconstruction_curve_") and est.code_size_ == 3


def test_the_same_seed_gives_the_same_curve(table):
    fits = [AutoEncoder(code_size=4, ordered=True, random_state=3, **TINY).fit(table) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].reconstruction_curve_, fits[1].reconstruction_curve_)


@pytest.mark.parametrize(
    ("kind", "settings"),
    [("vae", {}), ("sparse", {}), ("conv", {"hidden": (4, 8)}), ("dense", {"loss": "bce"})],
)
def test_every_family_trains_ordered(kind, settings):
    digits = load("digits").x_train[:256]  # 8x8 images
    est = AutoEncoder(kind=kind, code_size=4, ordered=True, random_state=0, **{**TINY, **settings})
    est.fit(digits)
    assert est.reconstruction_curve_.shape == (4,) and np.isfinite(est.reconstruction_curve_).all()
    assert est.inverse_transform(est.transform(digits[:3])[:, :1]).shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"ordered": "yes"}, "ordered must be True or False"),
        ({"code_size": "big"}, "code_size must be a whole number >= 1 or 'auto'"),
        ({"code_tolerance": -0.1}, "code_tolerance"),
        ({"code_size": "auto", "code_tolerance": float("nan")}, "code_tolerance"),
    ],
)
def test_bad_settings_are_refused_before_training(table, params, word):
    with pytest.raises(ConfigError, match=word):
        AutoEncoder(**{**TINY, **params}).fit(table)


def test_compare_ordered_draws_both_curves_from_one_fit_each():
    digits = load("digits")
    x_train, x_test = digits.x_train[:300], digits.x_train[300:400]
    result = compare_with_pca(x_train, x_test, code_sizes=(2, 4), kind="dense", ordered=True, **TINY)
    curves = result.curves
    assert curves["code_sizes"] == [1, 2, 3, 4] and result.settings["ordered"] is True
    for key in ("autoencoder", "pca", "pca_train_from_explained_variance"):
        assert len(curves[key]) == 4 and np.isfinite(curves[key]).all()
    assert np.all(np.diff(curves["pca"]) < 0)
    for row in result.rows:  # the table's rows are the curves' points
        assert row.ae_mse == pytest.approx(curves["autoencoder"][row.code_size - 1])
        assert row.pca_mse == pytest.approx(curves["pca"][row.code_size - 1], rel=1e-6)
    # one PCA fit's first k components score as PCA fitted with k components
    alone = compare_with_pca(x_train, x_test, code_sizes=(2,), kind="dense", **TINY)
    assert curves["pca"][1] == pytest.approx(alone.rows[0].pca_mse, rel=1e-4)


def test_compare_ordered_on_the_command_line(capsys, tmp_path):
    out = tmp_path / "report"
    argv = ["compare", "--data", "digits", "--code-sizes", "2,4", "--kind", "dense", "--epochs", "1"]
    code, stdout, err = run(capsys, *argv, "--max-train", "200", "--ordered", "--quiet", "--out", out)
    assert code == 0, err
    assert "one ordered autoencoder" in stdout
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["ordered"] is True and doc["curves"]["code_sizes"] == [1, 2, 3, 4]
    assert [row["code_size"] for row in doc["rows"]] == [2, 4]
    assert (out / "error_vs_code_size.png").stat().st_size > 0
    assert "one ordered dense autoencoder" in (out / "index.html").read_text()


def test_train_code_size_auto_on_the_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("t.npy", low_rank(1, n=256))
    code, out, err = run(capsys, "train", "--data", "t.npy", "--out", "o.aek", "--code-size", "auto",
                         "--hidden", "32", "--epochs", "20", "--quiet")  # fmt: skip
    assert code == 0, err
    kept = AutoEncoder.load("o.aek").code_size_
    assert kept < 8 and f"ordered code: {kept} of 8 units kept" in out  # 8: half the 16 features
    code, out, _ = run(capsys, "info", "o.aek", "--json")
    assert code == 0 and json.loads(out)["ordered"] == {"code_size": kept, "trained": 8}
    code, _, err = run(capsys, "train", "--data", "t.npy", "--out", "p.aek", "--code-size", "x")
    assert code == 2 and "--code-size" in err
