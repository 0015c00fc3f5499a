"""Your own networks (``AutoEncoder(encoder=..., decoder=...)``, ``models/custom.py``): training, the file
round trip with ``modules=[...]``, the refusals at fit and at load, and the command line's one line."""

from __future__ import annotations

import builtins
import json
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from aekit import AutoEncoder, tensorfile
from aekit.errors import ConfigError, ModelFileError, NetworksNeededError
from cli_helpers import one_line_error, run

RNG = np.random.default_rng(0)
TABLE = RNG.random((40, 6))  # in [0, 1]
GRAY = RNG.integers(0, 256, (32, 8, 8), dtype=np.uint8)  # the model sees (1, 8, 8)
TINY = {"code_size": 2, "epochs": 2, "batch_size": 16, "random_state": 0}


# -- networks: the scikit-learn convention (attributes named like the constructor's parameters) -----------
class TableEncoder(nn.Module):
    def __init__(self, n_in: int, width: int = 8):
        super().__init__()
        self.n_in, self.width = n_in, width
        self.net = nn.Sequential(nn.Linear(n_in, width), nn.ReLU())

    def forward(self, x):
        return self.net(x)  # (B, width): a head maps it to the code


class TableDecoder(nn.Module):
    def __init__(self, code_size: int, n_out: int, width: int = 8):
        super().__init__()
        self.code_size, self.n_out, self.width = code_size, n_out, width
        self.net = nn.Sequential(nn.Linear(code_size, width), nn.ReLU(), nn.Linear(width, n_out))

    def forward(self, z):
        return self.net(z)  # (B, n_out) logits


# -- networks: the Keras convention (get_config) ---------------------------------------------------------
class ConvEncoder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self._channels = channels

    def get_config(self) -> dict:
        return {"channels": self._channels}

    def forward(self, x):
        return torch.relu(self.conv(x))  # (B, C, 4, 4): flattened, then the head


class ConvDecoder(nn.Module):
    def __init__(self, code_size: int, channels: int):
        super().__init__()
        self._config = {"code_size": code_size, "channels": channels}
        self.fc = nn.Linear(code_size, channels * 16)
        self.up = nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1)
        self.channels = channels

    def get_config(self) -> dict:
        return dict(self._config)

    def forward(self, z):
        h = torch.relu(self.fc(z)).view(-1, self.channels, 4, 4)  # (B, C, 4, 4)
        return self.up(h)  # (B, 1, 8, 8)


def table_pair(code_size: int = 2) -> dict:
    return {"encoder": TableEncoder(6), "decoder": TableDecoder(code_size, 6)}


def assert_same_outputs(a: AutoEncoder, b: AutoEncoder, X: np.ndarray) -> None:
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.reconstruct(X), b.reconstruct(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    est = AutoEncoder(**table_pair(), **TINY).fit(TABLE)
    path = tmp_path_factory.mktemp("custom") / "table.aek"
    est.save(path)
    return est, path


# -- training and the round trip -------------------------------------------------------------------------
def test_a_dense_pair_trains_and_comes_back_from_its_file(table_file):
    est, path = table_file
    assert isinstance(est.model_.encoder.head, nn.Linear)  # 8 features -> a code of 2
    assert est.transform(TABLE).shape == (40, 2)
    back = AutoEncoder.load(path, modules=[TableEncoder, TableDecoder])
    assert_same_outputs(est, back, TABLE)
    assert back.model_.config == est.model_.config
    assert isinstance(back.encoder, TableEncoder) and isinstance(back.decoder, TableDecoder)
    assert back.encoder.get_parameter("net.0.weight") is back.model_.encoder.net.get_parameter("net.0.weight")


def test_a_conv_pair_with_get_config_trains_and_comes_back(tmp_path):
    est = AutoEncoder(
        kind="conv", encoder=ConvEncoder(4), decoder=ConvDecoder(3, 4), **{**TINY, "code_size": 3}
    )
    est.fit(GRAY)
    assert est.reconstruct(GRAY[:5]).shape == (5, 8, 8) and est.reconstruct(GRAY[:5]).dtype == np.uint8
    assert est.model_.config.networks["encoder"]["args"] == {"channels": 4}
    assert est.model_.config.networks["features"] == 4 * 4 * 4
    est.save(tmp_path / "conv.aek")
    back = AutoEncoder.load(tmp_path / "conv.aek", modules=[ConvEncoder, ConvDecoder])
    assert_same_outputs(est, back, GRAY)


def test_an_encoder_that_gives_the_code_itself_gets_no_head():
    est = AutoEncoder(encoder=TableEncoder(6, width=2), decoder=TableDecoder(2, 6), **TINY).fit(TABLE)
    assert isinstance(est.model_.encoder.head, nn.Identity)


def test_a_vae_puts_its_head_on_a_custom_encoder(tmp_path):
    est = AutoEncoder(kind="vae", encoder=TableEncoder(6, width=2), decoder=TableDecoder(2, 6), **TINY)
    est.fit(TABLE)
    head = est.model_.encoder.head
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (2, 4)  # mean, log-var
    assert {"recon", "kl"} <= set(est.history_[-1])
    assert est.sample(3, random_state=0).shape == (3, 6)
    assert np.isfinite(est.log_likelihood(TABLE[:4], k=2)).all()
    est.save(tmp_path / "vae.aek")
    back = AutoEncoder.load(tmp_path / "vae.aek", modules=[TableEncoder, TableDecoder])
    assert_same_outputs(est, back, TABLE)
    np.testing.assert_array_equal(back.sample(3, random_state=0), est.sample(3, random_state=0))


def test_fit_leaves_the_modules_given_as_they_were_and_starts_from_their_weights():
    encoder, decoder = TableEncoder(6), TableDecoder(2, 6)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    est = AutoEncoder(encoder=encoder, decoder=decoder, **{**TINY, "epochs": 1}).fit(TABLE)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert est.encoder is encoder and est.model_.encoder.net is not encoder
    again = AutoEncoder(encoder=encoder, decoder=decoder, **{**TINY, "epochs": 1}).fit(TABLE)
    np.testing.assert_array_equal(again.transform(TABLE), est.transform(TABLE))  # the same start and seed


def test_clone_and_get_params_work_with_networks():
    est = AutoEncoder(**table_pair(), **TINY)
    assert isinstance(est.get_params()["encoder"], TableEncoder)
    copy = clone(est)
    assert isinstance(copy.encoder, TableEncoder) and copy.encoder is not est.encoder
    assert copy.fit(TABLE).transform(TABLE).shape == (40, 2)


# -- refusals at fit: one ConfigError that names the shapes, or the fix ------------------------------------
def test_a_decoder_of_the_wrong_output_shape_is_named_at_fit():
    est = AutoEncoder(encoder=TableEncoder(6), decoder=TableDecoder(2, 5), **TINY)
    with pytest.raises(
        ConfigError, match=r"decoder returns shape \(1, 5\) for codes of shape \(1, 2\); expected \(1, 6\)"
    ):
        est.fit(TABLE)
    assert not hasattr(est, "model_")


def test_an_encoder_that_does_not_take_the_samples_is_named_at_fit():
    est = AutoEncoder(encoder=TableEncoder(5), decoder=TableDecoder(2, 6), **TINY)
    with pytest.raises(ConfigError, match=r"encoder fails on input of shape \(1, 6\).*RuntimeError"):
        est.fit(TABLE)


def test_a_table_encoder_on_images_names_the_shape_the_model_sees():
    est = AutoEncoder(encoder=TableEncoder(64), decoder=TableDecoder(2, 64), **TINY)
    with pytest.raises(ConfigError, match=r"input of shape \(1, 1, 8, 8\)"):
        est.fit(GRAY)


class Activated(nn.Module):
    """Takes a module as an argument: no JSON can hold it."""

    def __init__(self, n_in: int, act: nn.Module):
        super().__init__()
        self.n_in, self.act = n_in, act
        self.fc = nn.Linear(n_in, 4)

    def forward(self, x):
        return self.act(self.fc(x))


class Forgetful(nn.Module):
    """Does not keep its argument: nothing to read it back from."""

    def __init__(self, n_in: int):
        super().__init__()
        self.fc = nn.Linear(n_in, 4)

    def forward(self, x):
        return self.fc(x)


def test_constructor_arguments_that_json_cannot_hold_ask_for_get_config():
    est = AutoEncoder(encoder=Activated(6, nn.Tanh()), decoder=TableDecoder(2, 6), **TINY)
    with pytest.raises(ConfigError, match=r"act=Tanh\(\) \(a Tanh\).*add get_config\(\) to Activated") as err:
        est.fit(TABLE)
    assert "return {'n_in': self.n_in, 'act': self.act}" in str(err.value)


def test_a_constructor_argument_with_no_attribute_asks_for_get_config():
    est = AutoEncoder(encoder=Forgetful(6), decoder=TableDecoder(2, 6), **TINY)
    with pytest.raises(
        ConfigError, match=r"no attribute n_in .* store it \(self.n_in = n_in\) or add get_config"
    ):
        est.fit(TABLE)


def test_sequential_cannot_be_stored_by_name():
    est = AutoEncoder(encoder=nn.Sequential(nn.Linear(6, 4)), decoder=TableDecoder(2, 6), **TINY)
    with pytest.raises(ConfigError, match=r"Sequential takes positional-only arguments .*get_config"):
        est.fit(TABLE)


def test_arguments_that_rebuild_other_weights_are_refused_at_fit():
    encoder = TableEncoder(6)
    encoder.width = 5  # the module has width 8: a file would rebuild another network
    with pytest.raises(ConfigError, match=r"net.0.weight is \(8, 6\) in the module given, \(5, 6\) in"):
        AutoEncoder(encoder=encoder, decoder=TableDecoder(2, 6), **TINY).fit(TABLE)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"encoder": TableEncoder(6)}, r"encoder= is given but decoder= is not"),
        ({**table_pair(), "hidden": (4,)}, r"hidden=\(4,\) shapes aekit's built-in networks"),
        ({**table_pair(), "kind": "vae", "backbone": "conv"}, r"backbone='conv' shapes"),
        ({"encoder": "mypkg:Net", "decoder": TableDecoder(2, 6)}, r"encoder= must be a torch nn.Module"),
    ],
    ids=["encoder-alone", "hidden", "backbone", "not-a-module"],
)
def test_settings_that_do_not_fit_networks_are_refused(params, message):
    with pytest.raises(ConfigError, match=message):
        AutoEncoder(**{**TINY, **params}).fit(TABLE)


# -- refusals at load: one error, nothing imported ---------------------------------------------------------
def test_loading_without_the_classes_says_how_to_pass_them(table_file):
    _, path = table_file
    with pytest.raises(NetworksNeededError) as err:
        AutoEncoder.load(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"encoder {TableEncoder.__module__}:TableEncoder(n_in=6, width=8)" in message
    assert f"AutoEncoder.load('{path}', modules=[TableEncoder, TableDecoder])" in message
    assert isinstance(err.value, ModelFileError)


def test_a_file_naming_an_unknown_module_imports_nothing(tmp_path, monkeypatch):
    Encoder = type("Encoder", (TableEncoder,), {"__module__": "aekit_never_imported.nets"})
    est = AutoEncoder(encoder=Encoder(6), decoder=TableDecoder(2, 6), **TINY).fit(TABLE)
    est.save(tmp_path / "m.aek")
    asked = []
    real_import = builtins.__import__

    def watch(name, *args, **kwargs):
        asked.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", watch)
    with pytest.raises(NetworksNeededError, match=r"encoder aekit_never_imported.nets:Encoder\(n_in=6"):
        AutoEncoder.load(tmp_path / "m.aek", modules=[TableDecoder])
    monkeypatch.undo()
    assert not any("never_imported" in name for name in asked)
    assert "aekit_never_imported" not in sys.modules and "aekit_never_imported.nets" not in sys.modules
    back = AutoEncoder.load(tmp_path / "m.aek", modules=[Encoder, TableDecoder])
    assert_same_outputs(est, back, TABLE)


def test_a_wrong_class_given_is_named(table_file):
    _, path = table_file
    with pytest.raises(
        NetworksNeededError, match=r"modules= holds .*:ConvEncoder, .*:TableDecoder, not .*:TableEncoder"
    ):
        AutoEncoder.load(path, modules=[ConvEncoder, TableDecoder])
    with pytest.raises(
        ConfigError, match=r"modules= lists nn.Module classes.* got TableEncoder\( \(net\)"
    ) as err:
        AutoEncoder.load(path, modules=[TableEncoder(6), TableDecoder])
    assert "\n" not in str(err.value)


def test_a_class_that_builds_other_weights_now_is_named_by_layer(table_file):
    _, path = table_file

    class Changed(TableEncoder):  # the same name, but a wider first layer than the file's
        def __init__(self, n_in: int, width: int = 8):
            super().__init__(n_in, width + 1)

    Changed.__qualname__, Changed.__module__ = "TableEncoder", TableEncoder.__module__
    with pytest.raises(ModelFileError) as err:
        AutoEncoder.load(path, modules=[Changed, TableDecoder])
    message = str(err.value)
    assert "does not fit the classes given" in message and "has a class changed" in message
    assert "encoder.net.net.0.weight is (9, 6) by the settings, (8, 6) in the file" in message


def test_a_damaged_networks_entry_is_one_model_file_error(table_file, tmp_path):
    _, path = table_file
    tensors, doc = tensorfile.load(path)
    doc["model_config"]["networks"]["features"] = "many"
    tensorfile.save(tmp_path / "bad.aek", tensors, doc)
    with pytest.raises(ModelFileError, match=r"damaged or mismatched: networks' features must be a positive"):
        AutoEncoder.load(tmp_path / "bad.aek", modules=[TableEncoder, TableDecoder])


# -- the command line ---------------------------------------------------------------------------------------
def test_commands_refuse_a_custom_network_model_in_one_line(table_file, capsys):
    _, path = table_file
    line = one_line_error(
        capsys, ["eval", path, "--data", "digits"], "your own networks", "must be loaded from Python"
    )
    assert "modules=[TableEncoder, TableDecoder]" in line


def test_info_shows_the_classes_a_model_needs(table_file, capsys):
    _, path = table_file
    code, out, err = run(capsys, "info", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["networks"]["encoder"] == {
        "class": f"{TableEncoder.__module__}:TableEncoder",
        "args": {"n_in": 6, "width": 8},
    }
    assert report["networks"]["load"] == f"AutoEncoder.load('{path}', modules=[TableEncoder, TableDecoder])"
    assert report["parameters"] > 0 and "networks" not in report["settings"]
    code, out, err = run(capsys, "info", path)
    assert code == 0, err
    assert "│ networks" in out and "TableEncoder" in out


def test_a_detector_refuses_networks_in_its_autoencoder_params():
    from aekit import AnomalyDetector

    with pytest.raises(ConfigError, match=r"autoencoder_params cannot give encoder= or decoder="):
        AnomalyDetector(autoencoder_params=table_pair(), epochs=1).fit(TABLE)
