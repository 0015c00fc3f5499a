"""Fine-tuning: ``AutoEncoder(init_from=..., freeze=...)`` and ``aekit train --init --freeze``.

Tiny models (widths 4-8, 8x8 digits, 1-2 epochs), each test in about a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from aekit import AutoEncoder
from aekit.data import load
from aekit.errors import ConfigError
from cli_helpers import assert_one_error, run

TINY = {"hidden": (8, 4), "code_size": 3, "batch_size": 64, "epochs": 2}


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load("digits").x_train[:256]  # (256, 8, 8) uint8


@pytest.fixture(scope="module")
def dense(digits) -> AutoEncoder:
    return AutoEncoder(random_state=0, **TINY).fit(digits)


@pytest.fixture(scope="module")
def vae(digits) -> AutoEncoder:
    return AutoEncoder(kind="vae", random_state=0, **TINY).fit(digits)


def weights(est: AutoEncoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in est.model_.named_parameters()}


def test_the_starting_weights_are_loaded(dense, digits, monkeypatch, tmp_path):
    """With training skipped, a model started from a file is the file's model: the same outputs, bit for
    bit (its scaling is kept, since the data has its shape)."""
    from aekit.training import Trainer

    dense.save(tmp_path / "a.aek")
    monkeypatch.setattr(Trainer, "fit", lambda self, model, train, val=None: [{"epoch": 1, "loss": 0.0}])
    tuned = AutoEncoder(init_from=tmp_path / "a.aek", random_state=1).fit(digits[:100])
    assert tuned.spec_.to_dict() == dense.spec_.to_dict()
    np.testing.assert_array_equal(tuned.transform(digits), dense.transform(digits))
    np.testing.assert_array_equal(tuned.reconstruct(digits), dense.reconstruct(digits))


@pytest.mark.parametrize(
    ("start", "freeze", "frozen"),
    [
        ("dense", "encoder", ("encoder.",)),
        ("vae", "decoder", ("decoder.", "log_scale")),  # a VAE's likelihood scale belongs to its decoder
        ("dense", ["encoder.1", "code"], ("encoder.net.1.", "encoder.net.5.")),  # hidden (8, 4): 3 Linears
    ],
)
def test_frozen_weights_stay_bit_identical(request, digits, start, freeze, frozen):
    source = request.getfixturevalue(start)
    tuned = AutoEncoder(init_from=source, freeze=freeze, random_state=1, epochs=2).fit(digits)
    before, after = weights(source), weights(tuned)
    held = [k for k in before if k.startswith(frozen)]
    free = [k for k in before if not k.startswith(frozen)]
    assert held and free
    assert all(torch.equal(before[k], after[k]) for k in held)
    assert all(not p.requires_grad for k, p in tuned.model_.named_parameters() if k in held)
    assert any(not torch.equal(before[k], after[k]) for k in free)  # the rest did train
    assert type(tuned.model_) is type(source.model_)


def test_the_network_is_the_starting_models_and_a_conflict_is_refused(vae, digits, tmp_path):
    tuned = AutoEncoder(init_from=vae, epochs=1, random_state=0).fit(digits)  # kind="dense" by default
    assert type(tuned.model_) is type(vae.model_) and tuned.model_.config.code_size == 3
    assert tuned.get_params()["kind"] == "dense"  # fit leaves the parameters as they were
    tuned.save(tmp_path / "t.aek")
    back = AutoEncoder.load(tmp_path / "t.aek")  # the file says what the model is
    assert (back.kind, back.code_size, back.hidden) == ("vae", 3, (8, 4))
    with pytest.raises(ConfigError, match=r"code_size=5 conflicts with the starting model .* code_size=3"):
        AutoEncoder(init_from=vae, code_size=5, epochs=1).fit(digits)
    with pytest.raises(ConfigError, match=r"hidden=\(16,\) conflicts"):
        AutoEncoder(init_from=vae, hidden=(16,), epochs=1).fit(digits)
    AutoEncoder(init_from=vae, hidden=(8, 4), kind="vae", epochs=1).fit(digits[:64])  # agreeing: fine


def test_a_shape_mismatch_names_the_layer_and_both_shapes(dense):
    table = np.random.default_rng(0).normal(size=(64, 30)).astype(np.float32)
    with pytest.raises(ConfigError) as err:
        AutoEncoder(init_from=dense, epochs=1).fit(table)
    message = str(err.value)
    assert "encoder.net.1.weight: the starting model has (8, 64), this one needs (8, 30)" in message
    assert "decoder.net.4.weight: the starting model has (64, 8), this one needs (30, 8)" in message
    assert "trained on samples of shape (8, 8), these have shape (30,)" in message


def test_freeze_needs_init_from_and_known_names(dense, digits):
    with pytest.raises(
        ConfigError, match="freeze holds a starting model's weights fixed; it needs init_from"
    ):
        AutoEncoder(freeze="encoder", epochs=1).fit(digits)
    with pytest.raises(ConfigError) as err:
        AutoEncoder(init_from=dense, freeze=["encoder.1", "encoder.9"], epochs=1).fit(digits)
    assert "freeze='encoder.9' is not a part of this model" in str(err.value)
    assert "encoder.1, encoder.2, code, decoder.1, decoder.2, output" in str(err.value)
    with pytest.raises(ConfigError, match="holds every weight of the model fixed"):
        AutoEncoder(init_from=dense, freeze=["encoder", "decoder"], epochs=1).fit(digits)
    with pytest.raises(ConfigError, match="has not been fitted .* clone"):
        clone(AutoEncoder(init_from=dense, epochs=1)).fit(digits)  # clone() copies init_from unfitted


def test_scaling_is_kept_for_data_of_the_same_shape_unless_another_is_asked_for():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(128, 6)).astype(np.float32)
    b = 3 * a + 1  # the same kind of table on another scale
    start = AutoEncoder(hidden=(4,), code_size=2, epochs=1, random_state=0).fit(a)
    kept = AutoEncoder(init_from=start, freeze="encoder", epochs=1, random_state=0).fit(b)
    assert kept.spec_.to_dict() == start.spec_.to_dict()  # the frozen encoder sees what it learned on
    refit = AutoEncoder(init_from=start, scaling="standard", epochs=1, random_state=0).fit(b)
    np.testing.assert_allclose(refit.spec_.offset, b.mean(axis=0), rtol=1e-5)


def test_cli_train_init_freeze_end_to_end(dense, digits, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    dense.save("a.aek")
    np.savez("mine.npz", x_train=digits[:128])
    argv = ["train", "--data", "mine.npz", "--out", "b.aek", "--init", "a.aek", "--freeze", "encoder"]
    code, out, err = run(capsys, *argv, "--epochs", "1", "--quiet")
    assert code == 0, err
    assert "trained a dense autoencoder fine-tuned from a.aek (encoder frozen) on mine.npz" in out
    before, after = weights(dense), weights(AutoEncoder.load("b.aek"))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    code, _, err = run(capsys, "train", "--data", "mine.npz", "--out", "c.aek", "--freeze", "encoder")
    assert_one_error(code, err, "needs init_from")
    code, _, err = run(capsys, *argv[:-1], "encoder.7", "--out", "d.aek", "--epochs", "1", "--quiet")
    assert_one_error(code, err, "encoder.7", "encoder.1, encoder.2, code")
    detect = ["train", "--task", "detect", "--data", "mine.npz", "--out", "e.aek", "--init", "a.aek"]
    code, _, err = run(capsys, *detect)
    assert_one_error(code, err, "--task detect trains from scratch", "reconstruct")
