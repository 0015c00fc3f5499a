"""Data on the wrong scale warns (or is converted when unambiguous), and every verb reads files alike."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.data.scaling import DataSpec
from aekit.errors import DataRangeWarning
from cli_helpers import assert_one_error, run

SHARED = Path("/work/shared/datasets")
ODDS = SHARED / "odds" / "cardio.npz"
TINY = ("--epochs", "2", "--hidden", "8", "--code-size", "4", "--quiet")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))


def _images(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8, 8), np.uint8)
    for img, (r, c) in zip(x, rng.integers(0, 5, (n, 2)), strict=True):
        img[r : r + 4, c : c + 4] = 200
    return x + rng.integers(0, 50, x.shape, dtype=np.uint8)


def _train(capsys, data: Path, out: str, *options: str) -> Path:
    code, _, err = run(capsys, "train", "--data", data, "--out", out, *TINY, *options)
    assert code == 0, err
    return Path(out)


def _warnings(err: str) -> list[str]:
    """The data-range warnings; data far out of range is also atypical, a line test_typicality.py checks."""
    lines = [line for line in err.splitlines() if line.startswith("aekit: warning:")]
    return [line for line in lines if not line.startswith("aekit: warning: typicality:")]


@pytest.fixture
def uint8_model(capsys, tmp_path) -> Path:
    np.save(tmp_path / "pixels.npy", _images())
    return _train(capsys, tmp_path / "pixels.npy", "pixels.aek")


@pytest.fixture
def unit_model(capsys, tmp_path) -> Path:
    np.save(tmp_path / "unit.npy", _images().astype(np.float32) / 255)
    return _train(capsys, tmp_path / "unit.npy", "unit.aek")


# -- item 2: the training range ------------------------------------------------------------------------------


def test_reconstruct_of_0_to_16_digits_warns_once_with_both_ranges(uint8_model, capsys, tmp_path):
    digits = (_images(3000, seed=1) // 16).astype(np.uint8)  # 0..15 like scikit-learn's digits
    np.save(tmp_path / "digits.npy", digits)
    code, _, err = run(
        capsys, "reconstruct", uint8_model, tmp_path / "digits.npy", "-o", "r.npy", "--chunk-rows", "1024"
    )
    lines = _warnings(err)
    assert code == 0 and len(lines) == 1, err  # three chunks, one line
    assert "from 0 to 15" in lines[0] and "8-bit images from 0 to 249" in lines[0] and "x * 16.6" in lines[0]


def test_eval_on_wrong_scale_warns(uint8_model, capsys, tmp_path):
    np.savez(tmp_path / "digits.npz", x=(_images(40) // 16).astype(np.uint8))
    code, _, err = run(capsys, "eval", uint8_model, "--data", tmp_path / "digits.npz")
    assert code == 0 and len(_warnings(err)) == 1, err


def test_floats_in_unit_range_for_a_uint8_model_are_scaled_silently(uint8_model, capsys, tmp_path):
    np.save(tmp_path / "unit.npy", _images(10).astype(np.float32) / 255)
    code, _, err = run(capsys, "reconstruct", uint8_model, tmp_path / "unit.npy", "-o", "r.npy")
    assert code == 0 and not _warnings(err), err
    assert np.load("r.npy").max() > 100  # the model saw pixels, not near-black images


def test_8bit_pngs_for_a_unit_range_model_are_divided_by_255(unit_model, capsys, tmp_path):
    for i, image in enumerate(_images(2, seed=3)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    code, _, err = run(
        capsys,
        "interpolate",
        unit_model,
        tmp_path / "0.png",
        tmp_path / "1.png",
        "-o",
        "i.npy",
        "--steps",
        "3",
    )
    assert code == 0 and not _warnings(err), err
    path = np.load("i.npy")
    assert path.dtype == np.float32 and 0.1 < path.max() <= 1.5  # in the model's own [0, 1] units


def test_float_model_warns_on_data_far_outside_its_range(unit_model, capsys, tmp_path):
    np.save(tmp_path / "big.npy", _images(10).astype(np.float32))  # 0..255 floats: ambiguous, not scaled
    code, _, err = run(capsys, "encode", unit_model, tmp_path / "big.npy", "-o", "z.npy")
    lines = _warnings(err)
    assert code == 0 and len(lines) == 1 and "trained on data from 0 to 0.9765" in lines[0], err


def test_library_warns_with_a_warning_class(uint8_model):
    from aekit import AutoEncoder

    est = AutoEncoder.load(uint8_model, device="cpu")
    with pytest.warns(DataRangeWarning, match="8-bit images from 0 to 249"):
        est.reconstruct((_images(8) // 16).astype(np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.reconstruct(_images(8))  # data like the training data: nothing to say


def test_old_specs_without_low_high_load_and_derive_the_range():
    old = {
        "sample_shape": [4],
        "dtype": "float32",
        "scaling": "none",
        "offset": [],
        "scale": [],
        "unit_range": True,
    }
    assert DataSpec.from_dict(old).training_range == (0.0, 1.0)
    old.update(unit_range=False, scaling="standard", offset=[0.0] * 4, scale=[1.0] * 4)
    assert DataSpec.from_dict(old).training_range is None
    spec = DataSpec.from_dict({**old, "low": -2.0, "high": 3.5})
    assert spec.training_range == (-2.0, 3.5) and spec.to_dict()["high"] == 3.5


# -- item 4: one reader --------------------------------------------------------------------------------------


@pytest.mark.skipif(not ODDS.is_file(), reason="needs the shared ODDS data")
def test_odds_npz_with_key_X_trains_and_detects(capsys):
    det = _train(capsys, ODDS, "det.aek", "--task", "detect", "--refits", "0")
    code, out, err = run(capsys, "detect", det, ODDS, "-o", "scores.npy")  # X is stored in Fortran order
    assert code == 0, err
    assert "AUROC" in out and len(np.load("scores.npz" if False else "scores.npy")) == 1831
    _train(capsys, ODDS, "ae.aek", "--key", "X")  # an autoencoder on the same file


def test_fortran_order_npy_works_in_detect_and_encode(capsys, tmp_path):
    table = np.asfortranarray(np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32))
    np.save(tmp_path / "f.npy", table)
    det = _train(capsys, tmp_path / "f.npy", "det.aek", "--task", "detect", "--refits", "0")
    code, _, err = run(capsys, "detect", det, tmp_path / "f.npy", "-o", "s.npy")
    assert code == 0, err
    ae = _train(capsys, tmp_path / "f.npy", "ae.aek")
    code, _, err = run(capsys, "encode", ae, tmp_path / "f.npy", "-o", "z.npy")
    assert code == 0 and np.load("z.npy").shape == (200, 4), err


def test_key_picks_a_member_and_a_wrong_key_lists_the_keys(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "two.npz", a=rng.normal(size=(50, 3)), b=rng.normal(size=(50, 5)))
    code, _, err = run(capsys, "train", "--data", tmp_path / "two.npz", "--out", "m.aek", *TINY)
    assert_one_error(code, err, "'a', 'b'", "--key")  # ambiguous: says which keys and how to pick
    model = _train(capsys, tmp_path / "two.npz", "m.aek", "--key", "b")
    code, _, err = run(capsys, "encode", model, tmp_path / "two.npz", "--key", "b", "-o", "z.npy")
    assert code == 0 and np.load("z.npy").shape == (50, 4), err
    for verb in (
        ("encode", model, tmp_path / "two.npz", "-o", "z.npy"),
        ("eval", model, "--data", tmp_path / "two.npz"),
    ):
        code, _, err = run(capsys, *verb, "--key", "c")
        assert_one_error(code, err, "--key c", "'a', 'b'")


def test_mat_files_are_read_like_npz(capsys, tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    savemat(
        tmp_path / "odds.mat",
        {"X": rng.normal(size=(120, 4)), "y": (rng.random((120, 1)) < 0.1).astype(float)},
    )
    det = _train(capsys, tmp_path / "odds.mat", "det.aek", "--task", "detect", "--refits", "0")
    code, out, err = run(capsys, "detect", det, tmp_path / "odds.mat", "-o", "s.csv")
    assert code == 0 and "scored 120 samples" in out, err
