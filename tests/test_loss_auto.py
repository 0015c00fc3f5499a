"""loss="auto" picks the usual loss for the data's range, and a code that could copy its input warns."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aekit import AutoEncoder
from aekit.errors import CopyWarning

TINY = dict(hidden=(8,), epochs=1, batch_size=16, random_state=0)


def test_auto_loss_is_cross_entropy_for_unit_range_data_and_squared_error_otherwise(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 4, 4), dtype=np.uint8)  # seen by the model as [0, 1]
    table = rng.normal(size=(40, 6)).astype(np.float32)
    unit = rng.random((40, 6)).astype(np.float32)
    for data, expected in ((images, "bce"), (table, "mse"), (unit, "bce")):
        ae = AutoEncoder(code_size=2, **TINY).fit(data)
        assert ae.loss_ == expected and ae.model_.config.loss == expected
    assert AutoEncoder(code_size=2, loss="l1", **TINY).fit(images).loss_ == "l1"  # a given loss is kept
    ae.save(tmp_path / "m.aek")
    loaded = AutoEncoder.load(tmp_path / "m.aek")
    assert loaded.loss == "auto" and loaded.loss_ == "bce"


def test_a_code_as_wide_as_the_input_warns_unless_something_stops_copying():
    x = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    with pytest.warns(CopyWarning, match=r"code_size=6 is as wide as the input \(6 features\).*noise="):
        AutoEncoder(code_size=6, **TINY).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CopyWarning)
        AutoEncoder(code_size=5, **TINY).fit(x)  # narrower than the input
        AutoEncoder(code_size=6, noise="gaussian", **TINY).fit(x)  # a denoising autoencoder
        AutoEncoder(code_size=6, kind="sparse", **TINY).fit(x)  # a penalty on the code
        AutoEncoder(code_size=6, kind="vae", **TINY).fit(x)
