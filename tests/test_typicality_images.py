"""Typicality for image restorers and codecs: stored in the file and reloaded, spread over fresh images like
the training ones, unlike images flagged, --strict refusing before anything is written, old files without
it, damaged entries, the built-in models' files, and 'aekit info'."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aekit import AutoEncoder, tensorfile
from aekit.codec import ImageCodec
from aekit.errors import ModelFileError, NoTypicalityError, TypicalityWarning
from aekit.restore import ImageRestorer
from aekit.typicality import HEADER_KEY, LIMIT, check
from cli_helpers import assert_one_error, run

TINY_RESTORER = dict(width=4, depth=1, crop=8, epochs=2, batch_size=16, random_state=0, device="cpu")
TINY_CODEC = dict(hidden=8, latent=4, stages=2, pixel_width=8, pixel_layers=2, pixel_mixtures=2)


def gradients(n: int, seed: int = 0, size: int = 16) -> np.ndarray:
    """Smooth colour ramps (n, size, size, 3) uint8: a family that noise lies far from."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    a, b = rng.uniform(-1, 1, (2, n, 1, 1, 3))
    x = rng.uniform(0.3, 0.7, (n, 1, 1, 3)) + 0.3 * (a * yy[..., None] + b * xx[..., None])
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def gray(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1).round().astype(np.uint8)


def blobs(n: int, seed: int = 0, size: int = 16) -> np.ndarray:
    """Bright blobs on black (n, size, size) uint8, like tests/test_codec.py's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(2):
            cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, 5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * rng.uniform(0.5, 1.0)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def noise(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (n, *shape)).astype(np.uint8)


@pytest.fixture(scope="module")
def restorer() -> ImageRestorer:
    # colorize: its input is the gray image itself, so a gray image of anything can be given to it
    return ImageRestorer(task="colorize", **TINY_RESTORER).fit(gradients(64))


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec(**TINY_CODEC, lambdas=(0.01, 0.2), steps=40, batch_size=8, random_state=0).fit(
        blobs(64)
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory, restorer, codec):
    folder = tmp_path_factory.mktemp("models")
    restorer.save(folder / "colorize.aek")
    codec.save(folder / "codec.aek")
    return folder


def _without_typicality(source, target) -> None:
    tensors, doc = tensorfile.load(source)
    del doc[HEADER_KEY]
    tensorfile.save(target, tensors, doc)


def _with_entry(source, target, change) -> None:
    tensors, doc = tensorfile.load(source)
    change(doc[HEADER_KEY])
    tensorfile.save(target, tensors, doc)


# -- restorers -----------------------------------------------------------------------------------------------


def test_restorer_typicality_is_stored_and_reloaded(restorer, files):
    loaded = ImageRestorer.load(files / "colorize.aek", device="cpu")
    x = gray(gradients(8, seed=1))
    np.testing.assert_allclose(loaded.typicality(x).percentile, restorer.typicality(x).percentile)
    assert list(loaded.typicality_.quantiles) == ["features"] and loaded.typicality_.rows == 64


def test_restorer_fresh_images_like_the_training_ones_spread_and_pass(restorer):
    result = restorer.typicality(gray(gradients(64, seed=1)))
    assert result.atypical.sum() <= 1
    assert np.ptp(result.percentile) > 50  # spread over the range, not piled at one end


def test_restorer_noise_is_atypical_and_warns(restorer):
    result = restorer.typicality(noise(4, (16, 16)))
    assert (result.percentile > LIMIT).all()
    restored, same = restorer.restore(noise(4, (16, 16)), return_typicality=True)
    assert restored.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(same.percentile, result.percentile)
    with pytest.warns(TypicalityWarning, match="4 of 4 images"):
        check(result, what="images")


def _write(folder, images) -> None:
    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i}.png")


def test_restore_cli_reports_warns_and_strict_refuses_before_writing(files, tmp_path, capsys):
    _write(tmp_path / "in", [*gray(gradients(2, seed=2)), noise(1, (16, 16))[0]])
    model = files / "colorize.aek"
    code, out, err = run(capsys, "restore", model, tmp_path / "in", "-o", tmp_path / "out", "--quiet")
    assert code == 0 and len(list((tmp_path / "out").iterdir())) == 3
    assert "1 of 3 images is less typical than 99.9%" in err and "2.png" in err, err
    code, _, err = run(capsys, "restore", model, tmp_path / "in", "-o", tmp_path / "strict", "--strict")
    assert_one_error(code, err, "1 of 3 images", "2.png", "--strict refuses")
    assert not (tmp_path / "strict").exists()
    code, out, _ = run(capsys, "restore", model, tmp_path / "in" / "0.png", "-o", tmp_path / "a.png")
    assert code == 0 and "typicality: all 1 images are as typical" in out


def test_restorer_file_without_typicality_loads_and_says_so(files, tmp_path, capsys):
    _without_typicality(files / "colorize.aek", tmp_path / "old.aek")
    old = ImageRestorer.load(tmp_path / "old.aek", device="cpu")
    assert old.typicality_ is None and old.restore(gray(gradients(1))[0]).shape == (16, 16, 3)
    with pytest.raises(NoTypicalityError, match="no typicality stored"):
        old.typicality(gray(gradients(1)))
    Image.fromarray(gray(gradients(1))[0]).save(tmp_path / "a.png")
    code, _, err = run(capsys, "restore", tmp_path / "old.aek", tmp_path / "a.png", "-o", tmp_path / "b.png")
    assert code == 0 and "no typicality stored" in err
    code, _, err = run(
        capsys, "restore", tmp_path / "old.aek", tmp_path / "a.png", "-o", tmp_path / "c.png", "--strict"
    )
    assert_one_error(code, err, "--strict", "predates it")
    assert not (tmp_path / "c.png").exists()
    old.fit_typicality(gradients(64))  # measured again, weights untouched: the file can be repaired
    assert old.typicality(noise(2, (16, 16))).atypical.all()


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda e: e["features_gaussian"].update(rest=-1.0), "residual variance"),
        (lambda e: e["quantiles"].update(features=[1.0, 0.0]), "features quantiles"),
        (lambda e: e.pop("features_gaussian"), "features_gaussian"),
    ],
)
def test_restorer_damaged_typicality_is_one_clear_error(files, tmp_path, change, words):
    _with_entry(files / "colorize.aek", tmp_path / "bad.aek", change)
    with pytest.raises(ModelFileError, match="damaged typicality entry") as info:
        ImageRestorer.load(tmp_path / "bad.aek", device="cpu")
    assert words in str(info.value)


# -- codecs -------------------------------------------------------------------------------------------------


def test_codec_typicality_is_stored_reloaded_and_spread(codec, files):
    loaded = ImageCodec.load(files / "codec.aek")
    fresh = blobs(64, seed=1)
    result = loaded.typicality(fresh)
    np.testing.assert_allclose(result.percentile, codec.typicality(fresh).percentile)
    assert list(loaded.typicality_.quantiles) == ["rate"] and loaded.typicality_level_ == 1
    assert result.atypical.sum() <= 1 and np.ptp(result.percentile) > 50


def bright(n: int) -> np.ndarray:
    """Flat bright images: a tiny codec trained for a few steps has learned mostly its images' levels,
    dark backgrounds here, and a bright one costs it more bits than any of them (the built-in's test below
    uses noise)."""
    return np.linspace(230, 255, n).round().astype(np.uint8)[:, None, None] * np.ones((16, 16), np.uint8)


def test_codec_unlike_images_are_atypical(codec):
    result = codec.typicality(bright(3))
    assert result.atypical.all()
    with pytest.warns(TypicalityWarning, match="3 of 3 images"):
        check(result, what="images")


def test_compress_cli_warns_and_strict_writes_no_archive(files, tmp_path, capsys):
    _write(tmp_path / "in", [*blobs(2, seed=3), bright(1)[0]])
    model = files / "codec.aek"
    code, _, err = run(capsys, "compress", model, tmp_path / "in", "-o", tmp_path / "a.aez")
    assert code == 0 and (tmp_path / "a.aez").exists()
    assert "1 of 3 images is less typical" in err and "2.png" in err, err
    code, _, err = run(capsys, "compress", model, tmp_path / "in", "-o", tmp_path / "b.aez", "--strict")
    assert_one_error(code, err, "1 of 3 images", "2.png", "nothing was written")
    assert not (tmp_path / "b.aez").exists() and not list(tmp_path.glob("b.aez*"))
    np.save(tmp_path / "ok.npy", blobs(3, seed=5))
    code, out, _ = run(capsys, "compress", model, tmp_path / "ok.npy", "-o", tmp_path / "c.aez", "--strict")
    assert code == 0 and "all 3 images are as typical" in out


def test_codec_file_without_typicality_and_damaged_entries(files, tmp_path, capsys):
    _without_typicality(files / "codec.aek", tmp_path / "old.aek")
    old = ImageCodec.load(tmp_path / "old.aek")
    assert old.typicality_ is None
    with pytest.raises(NoTypicalityError, match="no typicality stored"):
        old.typicality(blobs(1))
    np.save(tmp_path / "x.npy", blobs(2))
    code, _, err = run(capsys, "compress", tmp_path / "old.aek", tmp_path / "x.npy", "-o", tmp_path / "x.aez")
    assert code == 0 and "no typicality stored" in err
    _with_entry(files / "codec.aek", tmp_path / "bad.aek", lambda e: e.update(level=9))
    with pytest.raises(ModelFileError, match="damaged typicality entry.*level 9"):
        ImageCodec.load(tmp_path / "bad.aek")


# -- aekit info and the built-in models --------------------------------------------------------------------


def test_info_says_whether_typicality_is_stored(files, tmp_path, capsys):
    table = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    AutoEncoder(code_size=2, hidden=(8,), epochs=1, random_state=0).fit(table).save(files / "ae.aek")
    stored = {"colorize.aek": ["features"], "codec.aek": ["rate"], "ae.aek": ["code", "reconstruction"]}
    for name, statistics in stored.items():
        code, out, _ = run(capsys, "info", files / name, "--json")
        assert code == 0 and json.loads(out)["typicality"] == {"statistics": statistics, "rows": 64}
    _without_typicality(files / "codec.aek", tmp_path / "old.aek")
    code, out, _ = run(capsys, "info", tmp_path / "old.aek", "--json")
    assert code == 0 and json.loads(out)["typicality"] is None
    code, out, _ = run(capsys, "info", tmp_path / "old.aek")
    assert "none stored" in out


@pytest.mark.parametrize("name", ["denoise", "upscale-x2", "upscale-x4", "inpaint", "colorize"])
def test_each_builtin_restorer_carries_typicality(name):
    est = ImageRestorer.pretrained(name, device="cpu")
    assert est.typicality_ is not None and est.typicality_.rows >= 100, "run bench/typicality_builtins.py"
    image = gradients(1, size=32)[0]
    image = gray(image[None])[0] if name == "colorize" else image
    mask = np.zeros((32, 32)) if name == "inpaint" else None
    assert len(est.typicality(image, mask=mask)) == 1


def test_the_builtin_codec_carries_typicality():
    from aekit.codec.builtin import builtin_path

    codec = ImageCodec.load(builtin_path("photo"))
    assert codec.typicality_ is not None and codec.typicality_.rows >= 100, "run bench/typicality_builtins.py"
    assert codec.typicality(noise(1, (32, 32, 3))).atypical.all()
