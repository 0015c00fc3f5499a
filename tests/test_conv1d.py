"""kind="conv1d" on series (N, T) and (N, T, C), the ``downsample`` option of the conv backbones, series
windows in ``AnomalyDetector``, ``aekit train --kind conv1d`` and the errors for the wrong layout.

The shared per-family checks (shapes, one optimiser step, save/load, determinism) run over conv1d and both
``downsample`` modes through ``tests/families.py``; these are the checks that are about series.
"""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

from aekit import AnomalyDetector, AutoEncoder, tensorfile
from aekit.data.scaling import DataSpec, fit_spec
from aekit.errors import ConfigError, DataError
from aekit.models import build_model
from aekit.models.config import Downsample
from cli_helpers import one_line_error, run

RNG = np.random.default_rng(0)
SERIES = RNG.normal(size=(32, 9)).astype(np.float32)  # (N, T), odd T
SERIES_C = RNG.normal(size=(32, 9, 3)).astype(np.float32)  # (N, T, C), channels last
TINY = {"code_size": 2, "hidden": (4, 4), "epochs": 2, "batch_size": 16, "random_state": 0}


def tiny(**params) -> AutoEncoder:
    return AutoEncoder(kind="conv1d", **{**TINY, **params})


# -- layout -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("X", [SERIES, SERIES_C], ids=["N,T", "N,T,C"])
@pytest.mark.parametrize("downsample", ["stride", "pool"])
def test_series_come_back_in_their_shape_and_layout(X, downsample):
    est = tiny(downsample=downsample).fit(X)
    assert est.model_.config.input_shape == ((X.shape[2] if X.ndim == 3 else 1), 9)  # (C, T)
    codes = est.transform(X)
    assert codes.shape == (32, 2) and codes.dtype == np.float32
    assert est.reconstruct(X).shape == est.inverse_transform(codes).shape == X.shape
    assert est.score_samples(X).shape == (32,)
    np.testing.assert_allclose(est.reconstruct(X), est.inverse_transform(codes), rtol=1e-5, atol=1e-5)


def test_the_spec_puts_channels_first_and_back_exactly():
    spec = fit_spec(SERIES_C, "none", "mse", series=True)
    model = spec.to_model(SERIES_C)  # (N, C, T)
    assert model.shape == (32, 3, 9)
    assert model[5, 2, 7] == SERIES_C[5, 7, 2]  # channel 2 at step 7
    np.testing.assert_array_equal(spec.from_model(model), SERIES_C)
    one = fit_spec(SERIES, "none", "mse", series=True)
    assert one.input_shape == (1, 9) and not one.is_image
    np.testing.assert_array_equal(one.from_model(one.to_model(SERIES)), SERIES)


def test_spec_files_without_the_series_field_read_as_before():
    spec = fit_spec(SERIES_C, "standard", "mse", series=True)
    assert DataSpec.from_dict(spec.to_dict()) == spec
    old = fit_spec(SERIES_C, "standard", "mse").to_dict()
    assert "series" not in old  # files of other kinds are written exactly as before
    assert DataSpec.from_dict(old).input_shape == (1, 9, 3)  # read as an image, as it always was


# -- files ------------------------------------------------------------------------------------------------
def test_save_and_load_give_identical_outputs(tmp_path):
    est = tiny(downsample="pool").fit(SERIES_C)
    est.save(tmp_path / "m.aek")
    back = AutoEncoder.load(tmp_path / "m.aek")
    assert back.spec_.series and back.downsample == "pool"
    np.testing.assert_array_equal(back.reconstruct(SERIES_C), est.reconstruct(SERIES_C))
    np.testing.assert_array_equal(back.transform(SERIES_C), est.transform(SERIES_C))
    np.testing.assert_array_equal(back.score_samples(SERIES_C), est.score_samples(SERIES_C))


def test_model_files_from_before_downsample_load_unchanged(tmp_path):
    images = RNG.integers(0, 256, (32, 9, 7), dtype=np.uint8)
    est = AutoEncoder(kind="conv", **TINY).fit(images)
    est.save(tmp_path / "new.aek")
    tensors, doc = tensorfile.load(tmp_path / "new.aek")
    del doc["model_config"]["downsample"], doc["params"]["downsample"]  # as files were written before
    tensorfile.save(tmp_path / "old.aek", tensors, doc)
    old = AutoEncoder.load(tmp_path / "old.aek")
    assert old.model_.config.downsample == "stride" and old.downsample == "stride"
    np.testing.assert_array_equal(old.reconstruct(images), est.reconstruct(images))


def test_an_old_style_config_dict_builds_the_strided_model():
    settings = {"input_shape": [1, 9, 7], "code_size": 2, "hidden": [4, 4]}  # no "downsample"
    model = build_model("conv", settings)
    assert model.config.downsample == "stride"
    assert isinstance(model.encoder.net[0], torch.nn.Conv2d) and model.encoder.net[0].stride == (2, 2)
    vae = build_model("vae", {**settings, "backbone": "conv"})
    assert vae.config.downsample == "stride"


# -- pooling ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("downsample", typing.get_args(Downsample))
@pytest.mark.parametrize(
    ("kind", "params", "X"),
    [
        ("conv1d", {}, SERIES_C),
        ("conv", {}, RNG.random((32, 9, 7)).astype(np.float32)),
        ("vae", {"backbone": "conv"}, RNG.random((32, 9, 7)).astype(np.float32)),
    ],
    ids=["conv1d", "conv", "vae-conv"],
)
def test_pool_and_stride_both_train(kind, params, X, downsample):
    est = AutoEncoder(kind=kind, downsample=downsample, **params, **{**TINY, "epochs": 6, "lr": 1e-2}).fit(X)
    losses = [h["loss"] for h in est.history_]
    assert losses[-1] < losses[0]
    pools = [m for m in est.model_.modules() if isinstance(m, torch.nn.MaxPool1d | torch.nn.MaxPool2d)]
    assert bool(pools) == (downsample == "pool")


def test_downsample_is_refused_where_nothing_convolves():
    with pytest.raises(ConfigError, match=r"downsample='pool' applies to kind=.*'conv'.*not kind='dense'"):
        AutoEncoder(downsample="pool", **TINY).fit(SERIES)
    with pytest.raises(ConfigError, match=r"downsample='pool' sets how a convolutional backbone"):
        AutoEncoder(kind="vae", downsample="pool", **TINY).fit(SERIES)
    with pytest.raises(ConfigError, match=r"downsample='avg' is not one of 'stride', 'pool'"):
        tiny(downsample="avg").fit(SERIES)


# -- the wrong layout -------------------------------------------------------------------------------------
def test_images_to_conv1d_and_series_to_conv_each_give_one_clear_error():
    with pytest.raises(
        DataError, match=r"kind='conv1d'\) takes series \(N, T\) or .*\(8, 8, 3\).*kind='conv'"
    ):
        tiny().fit(RNG.random((16, 8, 8, 3)))
    with pytest.raises(ConfigError, match=r"needs images.*shape \(9,\).*kind='conv1d' for series"):
        AutoEncoder(kind="conv", **TINY).fit(SERIES)
    with pytest.raises(ConfigError, match=r"1-D convolutional model needs series.*\(1, 8, 8\).*kind='conv'"):
        build_model("conv1d", {"input_shape": (1, 8, 8), "code_size": 2})


# -- anomaly detection on series windows ------------------------------------------------------------------
def test_a_conv1d_detector_flags_a_spike_in_a_sine():
    t = np.arange(400)
    x = np.sin(2 * np.pi * t / 25) + RNG.normal(0, 0.05, len(t))
    x[300] += 3.0
    det = AnomalyDetector(kind="conv1d", window=16, epochs=4, n_estimators=1, refits=0, random_state=0)
    scores = det.fit(x).decision_scores_
    assert det.estimators_[0].model_.config.input_shape == (1, 16)  # windows as series, not table rows
    assert det.sample_shape_ == (16, 1)
    assert scores.shape == (400,)
    assert scores[300] > np.quantile(scores, 0.95)
    assert 300 - 16 < int(np.argmax(scores)) <= 300 + 16  # the windows that hold the spike
    np.testing.assert_allclose(det.decision_function(x), scores)


# -- the command line -------------------------------------------------------------------------------------
def test_train_kind_conv1d_on_a_npy_of_series(tmp_path, capsys):
    np.save(tmp_path / "series.npy", SERIES_C)
    out = tmp_path / "m.aek"
    data = ["--data", tmp_path / "series.npy", "--out", out, "--runs", tmp_path, "--quiet"]
    model = ["--kind", "conv1d", "--downsample", "pool", "--code-size", 2, "--hidden", "4,4", "--epochs", 2]
    code, stdout, err = run(capsys, "train", *data, *model)
    assert code == 0, err
    assert "conv1d autoencoder" in stdout and "(9, 3)" in stdout
    est = AutoEncoder.load(out)
    assert est.kind == "conv1d" and est.model_.config.downsample == "pool"
    assert est.reconstruct(SERIES_C).shape == SERIES_C.shape


def test_train_downsample_choices_match_the_library(tmp_path, capsys):
    from aekit.cli import train

    assert typing.get_args(Downsample) == train.DOWNSAMPLES
    one_line_error(
        capsys,
        ["train", "--data", "digits", "--out", tmp_path / "m.aek", "--downsample", "pool", "--epochs", 1],
        "downsample='pool'",
        "kind='dense'",
    )
