"""Every layer's outputs (``AutoEncoder.layer_outputs``, ``transform(X, layer=...)``) and ``aekit probe``.

Tiny models (widths 4-8, 8x8 digits, 1 epoch), each test in a second or two.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from aekit import AutoEncoder
from aekit.data import load
from aekit.errors import ConfigError
from cli_helpers import assert_one_error, run

N = 24
# kind -> (settings, {layer: shape of one sample's output}) on 8x8 digits
CASES = {
    "dense": (
        {"hidden": (8, 4)},
        {"encoder.1": (8,), "encoder.2": (4,), "code": (3,), "decoder.1": (4,), "decoder.2": (8,)},
    ),
    "conv": (
        {"hidden": (4, 6)},
        {
            "encoder.1": (4, 4, 4),
            "encoder.2": (6, 2, 2),
            "code": (3,),
            "decoder.1": (6, 2, 2),
            "decoder.2": (4, 4, 4),
        },
    ),
    "vae": (  # the encoder's last layer gives mean and log-variance; "code" is the mean
        {"hidden": (8,)},
        {"encoder.1": (8,), "code": (3,), "decoder.1": (8,)},
    ),
}


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def models(digits) -> dict[str, AutoEncoder]:
    return {
        kind: AutoEncoder(kind=kind, code_size=3, epochs=1, batch_size=64, random_state=0, **settings).fit(
            digits.x_train[:200]
        )
        for kind, (settings, _) in CASES.items()
    }


@pytest.mark.parametrize("kind", list(CASES))
def test_layer_outputs_have_every_layer_in_order_with_its_shape(models, digits, kind):
    est, x = models[kind], digits.x_test[:N]
    outputs = est.layer_outputs(x)
    expected = {**CASES[kind][1], "output": (1, 8, 8)}  # the model's view: channels first, scaled
    assert list(outputs) == list(expected)
    assert {name: out.shape[1:] for name, out in outputs.items()} == expected
    assert all(out.shape[0] == N and out.dtype == np.float32 for out in outputs.values())
    np.testing.assert_array_equal(outputs["code"], est.transform(x))
    np.testing.assert_array_equal(
        outputs["output"], est.spec_.to_model(est.reconstruct(x)).astype(np.float32)
    )
    for name, out in outputs.items():  # one layer alone: the same values, flattened
        np.testing.assert_array_equal(est.transform(x, layer=name), out.reshape(N, -1))


def test_layers_of_a_file_come_chunk_by_chunk_as_for_the_array(models, digits, tmp_path):
    x = digits.x_test[:N]
    np.save(tmp_path / "x.npy", x)
    est = models["dense"]
    np.testing.assert_array_equal(
        est.transform(tmp_path / "x.npy", layer="encoder.2"), est.transform(x, layer="encoder.2")
    )


def test_an_unknown_layer_lists_the_valid_ones(models, digits):
    with pytest.raises(ConfigError, match=r"layer='encoder\.7' is not a layer of this model; its layers: "):
        models["dense"].transform(digits.x_test[:4], layer="encoder.7")
    with pytest.raises(ConfigError, match="encoder.1, encoder.2, code, decoder.1, decoder.2, output"):
        models["dense"].transform(digits.x_test[:4], layer="encoder.7")


# -- aekit probe -------------------------------------------------------------------------------------------


@pytest.fixture
def files(models, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models["dense"].save("dense.aek")
    x, y = digits.x_test[:120], digits.y_test[:120]
    np.savez("labelled.npz", x_train=digits.x_train[:120], x_test=x, y_test=y)
    np.savez("unlabelled.npz", x=x)
    return tmp_path


def test_probe_writes_a_row_per_layer_and_pca_beside_it(files, capsys):
    code, out, err = run(capsys, "probe", "dense.aek", "--data", "labelled.npz", "--out", "p", "--quiet")
    assert code == 0, err
    doc = json.loads((files / "p" / "probe.json").read_text())
    assert (files / "p" / "probe.png").read_bytes().startswith(b"\x89PNG")
    rows = {row["name"]: row for row in doc["rows"]}
    layers = ["encoder.1", "encoder.2", "code", "decoder.1", "decoder.2", "output"]
    assert [row["name"] for row in doc["rows"] if row["source"] == "layer"] == layers
    assert {row["name"] for row in doc["rows"] if row["source"] == "pca"} == {
        "pca-3",
        "pca-4",
        "pca-8",
        "pca-64",
    }
    assert rows["code"]["pca"] == "pca-3" and rows["output"]["pca"] == "pca-64"  # at most 64 features
    assert rows["input"]["width"] == 64 and doc["n_classes"] == 10
    assert doc["n_probe_fit"] + doc["n_probe_score"] == 120
    for row in doc["rows"]:
        assert 0 <= row["probe_accuracy"] <= 1 and -1e-9 <= row["kmeans_nmi"] <= 1
    for name in ["input", *layers]:  # the table: one line each
        assert any(line.startswith(name) for line in out.splitlines())


def test_probe_some_layers_and_its_refusals(files, capsys):
    argv = ["probe", "dense.aek", "--data", "labelled.npz", "--quiet", "--max-rows", "60"]
    code, _, err = run(capsys, *argv, "--layers", "code", "--out", "q")
    assert code == 0, err
    doc = json.loads((files / "q" / "probe.json").read_text())
    assert [row["name"] for row in doc["rows"]] == ["input", "code", "pca-3"]
    code, _, err = run(capsys, *argv, "--layers", "code,encoder.9")
    assert_one_error(code, err, "encoder.9", "its layers: encoder.1")
    code, _, err = run(capsys, "probe", "dense.aek", "--data", "unlabelled.npz")
    assert_one_error(code, err, "has no labels")
    assert not (files / "probe-dense").exists()
    code, out, _ = run(capsys, "probe", "--help")
    assert code == 0 and out.startswith("usage: aekit probe")
