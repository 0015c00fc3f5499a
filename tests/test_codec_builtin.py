"""The built-in photo codec: the name resolves, the shipped file loads safely and codes real photos.

The weights are the ones bench/train_photo_codec.py trained (bench/results/train_photo_codec.json records
the fingerprint); any change to them must be deliberate, so the fingerprint is pinned here too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.cli.main import main
from aekit.codec import builtin
from aekit.codec.codec import ImageCodec, psnr
from aekit.codec.container import ArchiveReader
from aekit.errors import ModelFileError

ROOT = Path(__file__).resolve().parents[1]
# fingerprint of the shipped photo.aek (config + weights); bench/results/train_photo_codec.json has it too
PHOTO_FINGERPRINT = "78fef9e90623103f40d451df156b3d27"


@pytest.fixture(scope="module")
def photo() -> ImageCodec:
    return ImageCodec.load(builtin.builtin_path("photo"), name="photo")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A real photo crop whose sides are not multiples of the codec's stride (16): padding is exercised."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[40:90, 180:250])  # (50, 70, 3) uint8


def test_photo_resolves_to_the_shipped_file_inside_the_package():
    path = builtin.builtin_path("photo")
    assert builtin.is_builtin("photo") and "photo" in builtin.builtin_names()
    assert path.is_file() and path.parent == Path(builtin.__file__).parent / "weights"
    assert path.stat().st_size < 10 * 2**20  # small enough to ship in the wheel
    assert not builtin.is_builtin(str(path)) and not builtin.is_builtin(path)


def test_the_weights_are_package_data_so_the_wheel_carries_them():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    rel = builtin.builtin_path("photo").relative_to(Path(builtin.__file__).parent).as_posix()
    assert any(fnmatch.fnmatch(rel, pattern) for pattern in data.get("aekit.codec", [])), data


def test_unknown_name_and_missing_weights_are_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(ModelFileError, match=r"'faces' is not a built-in model; built-in models: photo"):
        builtin.builtin_path("faces")
    monkeypatch.setattr(builtin, "CODECS", dataclasses.replace(builtin.CODECS, folder=tmp_path))
    with pytest.raises(
        ModelFileError, match=r"built-in model 'photo' has no weights file: .*photo.aek is missing"
    ):
        builtin.builtin_path("photo")


def test_the_shipped_file_loads_without_unpickling_and_has_the_recorded_fingerprint(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model file must never be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    codec = ImageCodec.load(builtin.builtin_path("photo"), name="photo")
    assert codec.name_ == "photo"
    assert codec.channels_ == 3 and codec.n_qualities == 8
    assert codec.fingerprint_.hex() == PHOTO_FINGERPRINT
    recorded = json.loads((ROOT / "bench" / "results" / "train_photo_codec.json").read_text())
    assert recorded["fingerprint"] == PHOTO_FINGERPRINT


def test_python_api_round_trip_on_a_real_photo(photo, image, tmp_path):
    sizes, scores = [], []
    for q in (1, 4, 8):
        path = tmp_path / f"q{q}.aez"
        sizes.append(photo.compress_to(path, [image], quality=q, codec_name="photo"))
        with ArchiveReader(path) as reader:
            assert reader.codec_name == "photo" and reader.fingerprint == photo.fingerprint_
        out = photo.decompress(path)
        assert out.shape == (1, *image.shape) and out.dtype == np.uint8
        scores.append(psnr(image, out[0]))
    # a trained codec: more quality costs more bytes and buys PSNR, and the best level is good
    assert sizes[0] < sizes[1] < sizes[2], sizes
    assert scores[0] < scores[1] < scores[2], scores
    assert scores[2] > 28, scores
    assert sizes[2] < image.nbytes / 4  # far below the raw pixels even at the best level


def test_lossless_round_trip_is_bit_exact(photo, image):
    items = photo.compress(image, lossless=True)
    assert np.array_equal(photo.decompress(items)[0], image)
    assert len(items[0].payload) < image.nbytes  # the pixel head predicts better than 8 bits per value


def test_cli_compress_with_the_builtin_name_and_decompress_without_a_model(photo, image, tmp_path, capsys):
    png = tmp_path / "in.png"
    Image.fromarray(image).save(png)
    aez, out = tmp_path / "in.aez", tmp_path / "out"
    assert main(["compress", "photo", str(png), "-o", str(aez), "--quality", "5", "--quiet"]) == 0
    with ArchiveReader(aez) as reader:
        assert reader.codec_name == "photo" and reader.meta["codec"] == "photo"
    assert main(["decompress", str(aez), "-o", str(out), "--quiet"]) == 0
    (written,) = list(out.iterdir())
    decoded = np.asarray(Image.open(written))
    assert np.array_equal(decoded, photo.decompress(aez)[0])  # the CLI and the API agree to the bit
    assert psnr(image, decoded) > 24


def test_cli_unknown_builtin_name_is_one_line_error(image, tmp_path, capsys):
    png = tmp_path / "in.png"
    Image.fromarray(image).save(png)
    code = main(["compress", "no-such-codec", str(png), "-o", str(tmp_path / "x.aez")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "photo" in err[0], err
    assert not (tmp_path / "x.aez").exists()
