"""Model files: the save/load round trip for every family, and every kind of bad file raising one
ModelFileError without ever unpickling anything; ``tensorfile.flatten``/``unflatten``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.exceptions import NotFittedError

from aekit import AutoEncoder, io, tensorfile
from aekit.errors import ModelFileError
from aekit.models import FAMILIES
from aekit.training import CHECKPOINT
from families import family_variants

VARIANTS = family_variants()
VARIANT_IDS = ["-".join([family, *map(str, settings.values())]) for family, settings in VARIANTS]
RNG = np.random.default_rng(0)
TABLE = RNG.normal(5.0, 2.0, (40, 6))  # standard scaling: the file must carry the offsets and scales
GRAY = RNG.integers(0, 256, (32, 8, 8), dtype=np.uint8)


def fitted(kind: str = "dense", settings: dict | None = None, **params) -> tuple[AutoEncoder, np.ndarray]:
    settings = settings or {}
    conv = (settings.get("backbone") or getattr(FAMILIES[kind].config_class, "backbone", "dense")) == "conv"
    X = GRAY if conv else TABLE
    params = {"code_size": 2, "hidden": (4,), "epochs": 2, "batch_size": 16, "random_state": 0, **params}
    est = AutoEncoder(kind=kind, **settings, **params)
    return est.fit(X), X


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.aek"
    fitted()[0].save(path)
    return path


def load_error(path: Path) -> str:
    """Load ``path``, expecting exactly a ModelFileError with a one-line message; return the message."""
    with pytest.raises(Exception) as err:  # noqa: B017 - the point is to see which type comes out
        AutoEncoder.load(path)
    assert type(err.value) is ModelFileError, f"{type(err.value).__name__}: {err.value}"
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


# -- round trip ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("family", "settings"), VARIANTS, ids=VARIANT_IDS)
def test_save_load_round_trip(tmp_path, family, settings):
    est, X = fitted(family, settings, noise="mask")
    path = tmp_path / "m.aek"
    est.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.aek"]  # no temporary file left beside it
    back = AutoEncoder.load(path)
    assert back.get_params() == est.get_params()
    assert back.spec_.to_dict() == est.spec_.to_dict()
    assert back.history_ == est.history_
    assert back.model_.config == est.model_.config
    assert type(back.model_) is type(est.model_)
    assert back.n_features_in_ == est.n_features_in_
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    np.testing.assert_array_equal(back.reconstruct(X), est.reconstruct(X))
    np.testing.assert_array_equal(back.score_samples(X), est.score_samples(X))
    codes = est.transform(X)
    np.testing.assert_array_equal(back.inverse_transform(codes), est.inverse_transform(codes))


def test_saving_an_unfitted_estimator_raises(tmp_path):
    with pytest.raises(NotFittedError):
        AutoEncoder().save(tmp_path / "m.aek")
    assert list(tmp_path.iterdir()) == []


def test_a_random_state_object_is_saved_as_none(tmp_path):
    est, X = fitted(random_state=None)
    est.set_params(random_state=np.random.RandomState(0))
    est.save(tmp_path / "m.aek")
    back = AutoEncoder.load(tmp_path / "m.aek")
    assert back.random_state is None
    np.testing.assert_array_equal(back.transform(X), est.transform(X))


# -- bad files -------------------------------------------------------------------------------------------
def header_length(data: bytes) -> int:
    return int.from_bytes(data[:8], "little")  # safetensors: 8-byte length, JSON header, then the tensors


@pytest.mark.parametrize(
    "keep", [0, 7, 8, 100, 0.5, -1], ids=["empty", "7B", "8B", "100B", "half", "all-but-1"]
)
def test_truncated_file(tmp_path, model_file, keep):
    data = model_file.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep if keep >= 0 else len(data) + keep
    path = tmp_path / "cut.aek"
    path.write_bytes(data[:cut])
    load_error(path)


@pytest.mark.parametrize("where", [0, 1, 17, -1], ids=["first", "second", "middle", "last"])
def test_flipped_bytes_in_the_weights(tmp_path, model_file, where):
    data = bytearray(model_file.read_bytes())
    start = 8 + header_length(data)
    n = len(data) - start
    pos = start + (where if where >= 0 else n + where) if where != 17 else start + n // 2
    data[pos] ^= 0x01  # one bit: still a well-formed file, only the checksum can tell
    path = tmp_path / "flipped.aek"
    path.write_bytes(bytes(data))
    assert "checksum" in load_error(path)


def test_a_changed_digit_in_the_header_is_caught(tmp_path, model_file):
    # The header holds the data scaling: a flipped digit there keeps valid JSON but changes every output.
    data = model_file.read_bytes()
    marker = b'\\"offset\\": ['
    pos = data.index(marker) + len(marker) + 2  # a digit of the first offset (about 5.xxx)
    assert chr(data[pos]).isdigit()
    bad = bytearray(data)
    bad[pos] = ord("1") if data[pos] != ord("1") else ord("2")
    path = tmp_path / "header.aek"
    path.write_bytes(bytes(bad))
    assert "checksum" in load_error(path)


@pytest.mark.parametrize("where", ["length", "header"])
def test_flipped_bytes_in_the_safetensors_header(tmp_path, model_file, where):
    data = bytearray(model_file.read_bytes())
    data[3 if where == "length" else 8 + header_length(data) // 3] ^= 0xFF
    path = tmp_path / "flipped.aek"
    path.write_bytes(bytes(data))
    load_error(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "random.aek"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    load_error(path)


def test_a_safetensors_file_that_is_not_ours(tmp_path):
    plain, other = tmp_path / "plain.aek", tmp_path / "other.aek"
    save_file({"weight": torch.zeros(3)}, str(plain))
    save_file({"weight": torch.zeros(3)}, str(other), metadata={"format": "pt"})
    assert "not an aekit model file" in load_error(plain)
    assert "not an aekit model file" in load_error(other)


def rewrite_header(src: Path, dst: Path, **changes) -> Path:
    """A well-formed file (valid checksum) whose header differs from what the weights are."""
    tensors, doc = tensorfile.load(src)
    tensorfile.save(dst, tensors, {**doc, **changes})
    return dst


@pytest.mark.parametrize("family", ["vae", "conv", "gan"])
def test_a_header_naming_another_family(tmp_path, model_file, family):
    # (dense and sparse with the l1 penalty have identical weights, so only the header tells them apart.)
    message = load_error(rewrite_header(model_file, tmp_path / "m.aek", family=family))
    assert "damaged or mismatched" in message


def test_a_newer_format_version(tmp_path, model_file):
    message = load_error(rewrite_header(model_file, tmp_path / "m.aek", format_version=io.FORMAT_VERSION + 1))
    assert f"format {io.FORMAT_VERSION + 1}" in message and "upgrade aekit" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "something-else"},
        {"format_version": "1"},
        {"params": None},
        {"data": {"sample_shape": [6]}},
        {"model_config": {"input_shape": [6], "code_size": 2, "hidden": [5]}},
    ],
    ids=["format", "version-type", "params", "data", "config-weights-mismatch"],
)
def test_damaged_header_fields(tmp_path, model_file, changes):
    load_error(rewrite_header(model_file, tmp_path / "m.aek", **changes))


def test_a_header_that_is_not_a_json_object(tmp_path):
    path = tmp_path / "list.aek"
    tensorfile.save(path, {"w": torch.zeros(2)}, [1, 2])  # type: ignore[arg-type]
    load_error(path)


def test_a_checkpoint_is_not_a_model_file(tmp_path):
    fitted(run_dir=tmp_path / "run")
    assert "not an aekit model file" in load_error(tmp_path / "run" / CHECKPOINT)


def test_missing_path_and_directory(tmp_path):
    assert "no such model file" in load_error(tmp_path / "nothing.aek")
    assert "is a folder, not a model file; give the path of the .aek file" in load_error(tmp_path)
    fitted()[0].save(tmp_path / "model.aek")
    assert "(it holds model.aek)" in load_error(tmp_path)


# -- nothing is ever unpickled ---------------------------------------------------------------------------
class Payload:
    """Unpickling this creates ``marker``: proof that a loader ran pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_a_pickle_payload_is_never_unpickled(tmp_path, how):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control))).close()
    assert control.exists()  # the payload works: unpickling it does create its marker

    marker = tmp_path / "marker"
    path = tmp_path / "model.aek"
    if how == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    else:
        torch.save({"state_dict": Payload(marker)}, path)
    load_error(path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CHECKPOINT).write_bytes(path.read_bytes())
    with pytest.raises(ModelFileError):
        AutoEncoder(epochs=1, run_dir=run_dir, resume=True).fit(TABLE)
    assert not marker.exists()


# -- flatten / unflatten ---------------------------------------------------------------------------------
def assert_same(a, b) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)  # NaN == NaN here


def adam_after_two_steps():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def test_flatten_unflatten_round_trips_an_optimizer_state_through_json_and_disk(tmp_path):
    model, opt, sched = adam_after_two_steps()
    state = {
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "best": float("inf"),
        "none": None,
    }
    tensors: dict[str, torch.Tensor] = {}
    doc = json.loads(json.dumps(tensorfile.flatten(state, tensors, "s")))
    assert_same(tensorfile.unflatten(doc, tensors), state)
    assert isinstance(tensorfile.unflatten(doc, tensors)["optimizer"]["param_groups"][0]["betas"], tuple)

    tensorfile.save(tmp_path / "state.safetensors", tensors, {"state": doc})
    loaded_tensors, loaded_doc = tensorfile.load(tmp_path / "state.safetensors")
    back = tensorfile.unflatten(loaded_doc["state"], loaded_tensors)
    assert_same(back, state)

    # The restored optimizer takes exactly the step the original takes.
    twin, twin_opt, _ = adam_after_two_steps()
    twin_opt.load_state_dict(back["optimizer"])
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))


def test_flatten_keeps_tensors_whose_paths_collide():
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    state = {1: a, "1": b, "x.y": c, "x": {"y": a + 5}}
    tensors: dict[str, torch.Tensor] = {}
    doc = tensorfile.flatten(state, tensors)
    assert len(tensors) == 4
    assert_same(tensorfile.unflatten(json.loads(json.dumps(doc)), tensors), state)


def test_flatten_refuses_objects_it_cannot_store():
    with pytest.raises(TypeError, match="cannot store a Payload"):
        tensorfile.flatten({"x": Payload(Path("unused"))}, {})
