"""The built-in restoration models: loaded by name with no training, on grayscale and RGB images of any size,
fine-tuned from, and refusing bad input with one line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aekit import tensorfile
from aekit.cli.main import main
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.restore import ImageRestorer, psnr
from aekit.restore.builtin import RESTORERS, builtin_for, builtin_names
from cli_helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]


def photo(size: tuple[int, int] = (40, 52), seed: int = 0) -> np.ndarray:
    """A small RGB test photograph: a Kodak crop (never trained on), so the models meet real content."""
    from aekit.data import data_dir

    with np.load(data_dir() / "kodak24.npz", allow_pickle=False) as f:
        image = f["kodim23"]
    top, left = 180 + 7 * seed, 300 + 5 * seed
    return image[top : top + size[0], left : left + size[1]].copy()


def gray(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L"))


@pytest.fixture(scope="module")
def models() -> dict[str, ImageRestorer]:
    return {name: ImageRestorer.pretrained(name, device="cpu") for name in RESTORERS.names()}


def test_every_builtin_ships_as_package_data_in_float16_within_10_mb():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "weights/*.aek" in data["aekit.restore"]
    for name in RESTORERS.names():
        path = RESTORERS.path(name)
        assert path.stat().st_size < 10 * 2**20, name
        declared, doc = tensorfile.read_header(path)
        assert {d.dtype for d in declared.values()} == {torch.float16}, name
        assert doc["estimator"] == "ImageRestorer"


@pytest.mark.parametrize("name", ["denoise", "upscale-x2", "upscale-x4", "inpaint", "colorize"])
@pytest.mark.parametrize("channels", [1, 3])
def test_each_builtin_restores_a_small_image_of_each_channel_count(models, name, channels):
    image = photo((37, 45))  # not a multiple of the networks' stride
    if channels == 1:
        image = gray(image)
    model = models[name]
    mask = None
    if name == "inpaint":
        mask = np.zeros(image.shape[:2], bool)
        mask[10:20, 12:30] = True
    out = model.restore(image, mask=mask)
    factor = {"upscale-x2": 2, "upscale-x4": 4}.get(name, 1)
    want = (37 * factor, 45 * factor) + (() if channels == 1 and name != "colorize" else (3,))
    assert out.shape == want and out.dtype == np.uint8
    if name == "inpaint":  # the known pixels pass through unchanged
        known = ~mask
        assert np.array_equal(out[known], image[known])
    if name == "colorize":  # colour out of a gray photo, and the gray photo's luminance kept
        assert np.abs(out.astype(int) - out.mean(axis=-1, keepdims=True)).mean() > 1
        assert np.abs(gray(out).astype(int) - gray(image if channels == 1 else image)).mean() < 2


def test_builtin_names_and_scales():
    assert builtin_names() == sorted(
        ["colorize", "denoise", "inpaint", "upscale", "upscale-x2", "upscale-x4"]
    )
    assert builtin_for("upscale") == "upscale-x2" and builtin_for("upscale", 4) == "upscale-x4"
    with pytest.raises(ConfigError, match="no built-in upscale model for scale 3; built-in scales: 2, 4"):
        builtin_for("upscale", 3)
    with pytest.raises(ModelFileError, match="'sharpen' is not a built-in model; built-in models: colorize"):
        ImageRestorer.pretrained("sharpen")


def test_the_blind_denoiser_estimates_the_level_and_leaves_a_clean_photo_alone(models):
    clean = photo((96, 128))
    den = models["denoise"]
    rng = np.random.default_rng(0)
    noisy = np.clip(np.round(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    blind, told = den.restore(noisy), den.restore(noisy, sigma=25 / 255)
    assert psnr(blind, clean) > psnr(noisy, clean) + 6  # sigma 25: 20.4 dB in
    assert abs(psnr(blind, clean) - psnr(told, clean)) < 1.0
    # sigma 0: a clean photo comes back almost as it was (the "must not smear a clean image")
    assert psnr(den.restore(clean), clean) > 40
    with pytest.raises(ConfigError, match=r"on the \[0, 1\] scale: give 25/255"):
        den.restore(noisy, sigma=25)


def test_sigma_is_only_for_the_blind_denoiser(models):
    with pytest.raises(ConfigError, match="sigma is for blind denoise models"):
        models["upscale-x2"].restore(photo(), sigma=0.1)


def test_fine_tuning_a_builtin_keeps_a_frozen_encoder_bit_identical(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(4):  # grayscale scans: the RGB built-in takes them as three equal channels
        Image.fromarray(gray(photo((48, 48), seed=i))).save(folder / f"{i}.png")
    out = tmp_path / "mine.aek"
    argv = ["train", "--task", "denoise", "--init", "denoise", "--freeze", "encoder", "--data", str(folder)]
    argv += ["--out", str(out), "--epochs", "1", "--crop", "32", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    start, tuned = ImageRestorer.pretrained("denoise"), ImageRestorer.load(out)
    assert tuned.settings_ == start.settings_ and tuned.model_.config == start.model_.config  # loss too
    before, after = start.model_.state_dict(), tuned.model_.state_dict()
    encoder = [k for k in before if k.split(".")[0] in ("head", "enc", "down")]
    decoder = [k for k in before if k.split(".")[0] in ("up", "dec", "tail")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    assert tuned.restore(gray(photo())).shape == (40, 52)


def test_fine_tuning_refuses_another_tasks_model_and_freeze_without_init():
    images = [photo((48, 48))] * 2
    with pytest.raises(ConfigError, match="init='upscale-x2' is a upscale model but task='denoise'"):
        ImageRestorer(task="denoise", init="upscale-x2", epochs=1, crop=32).fit(images)
    with pytest.raises(ConfigError, match="freeze holds a starting model's weights fixed; it needs init"):
        ImageRestorer(task="denoise", freeze="encoder", epochs=1).fit(images)
    with pytest.raises(ConfigError, match="crop=36 must be a multiple of 8 for the starting model"):
        ImageRestorer(task="denoise", init="denoise", epochs=1, crop=36).fit(images)


def test_cli_restores_with_builtin_names(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    assert (
        main(["restore", "upscale", "--scale", "4", str(src), "-o", str(tmp_path / "big.png"), "--quiet"])
        == 0
    )
    assert Image.open(tmp_path / "big.png").size == (52 * 4, 40 * 4)
    assert (
        main(["restore", "denoise", "--sigma", "15", str(src), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    )
    g = tmp_path / "g.png"
    Image.fromarray(gray(photo())).save(g)
    assert main(["restore", "colorize", str(g), "-o", str(tmp_path / "c.png"), "--quiet"]) == 0
    assert Image.open(tmp_path / "c.png").mode == "RGB"
    assert main(["info", "denoise"]) == 0  # a built-in's name stands for its file
    assert "image restoration model" in capsys.readouterr().out


def test_cli_bad_inputs_to_builtins_are_one_line_and_exit_2(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    out = str(tmp_path / "o.png")
    small_mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small_mask)
    one_line_error(
        capsys, ["restore", "inpaint", str(src), "--mask", str(small_mask), "-o", out], "mask", "52x40"
    )
    one_line_error(capsys, ["restore", "inpaint", str(src), "-o", out], "--mask")
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((20, 20, 4), np.uint8)).save(rgba)
    one_line_error(capsys, ["restore", "denoise", str(rgba), "-o", out], "alpha", "convert('RGB')")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    one_line_error(capsys, ["restore", "denoise", str(empty), "-o", out], "empty.png")
    one_line_error(capsys, ["restore", "upscale", "--sigma", "20", str(src), "-o", out], "--sigma")
    one_line_error(capsys, ["restore", "denoise", "--sigma", "300", str(src), "-o", out], "0-255")
    one_line_error(capsys, ["restore", "upscale", "--scale", "3", str(src), "-o", out], "--scale")
    one_line_error(capsys, ["restore", "sharpen", str(src), "-o", out], "sharpen")
    with pytest.raises(DataError, match=r"shape \(20, 20, 4\); expected a grayscale"):
        ImageRestorer.pretrained("denoise").restore(np.zeros((20, 20, 4), np.uint8))


# -- the pieces the built-ins are made of --------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_the_noise_estimate_is_close_on_flat_and_smooth_images(sigma):
    from aekit.restore.tasks import estimate_noise

    gen = torch.Generator().manual_seed(sigma)
    ramp = torch.linspace(0.2, 0.8, 256).view(1, 1, 1, -1).expand(2, 3, 192, 256)  # (2, 3, 192, 256)
    noisy = ramp + torch.randn(ramp.shape, generator=gen) * sigma / 255
    estimate = estimate_noise(noisy) * 255  # (2,)
    assert torch.allclose(estimate, torch.full((2,), float(sigma)), rtol=0.05), estimate
    assert float(estimate_noise(ramp).max()) < 1e-6  # a smooth clean image: no noise


def test_blind_training_inputs_carry_a_level_plane_the_network_is_told_or_estimates():
    from aekit.restore.tasks import LEVEL_UNIT, TASKS, Settings, training_input

    settings = Settings(noise_sigma=55 / 255, blind=True, grayscale=True)
    clean = torch.full((64, 3, 16, 16), 0.5)
    x = training_input(TASKS["denoise"], clean, settings, torch.Generator().manual_seed(0))
    assert x.shape == (64, 4, 16, 16)
    level = x[:, 3, 0, 0] * LEVEL_UNIT * 255  # (64,) on the 0-255 scale
    assert (x[:, 3] == x[:, 3, :1, :1]).all() and level.max() <= 55 * 1.3 and (level == 0).any()
    gray = training_input(TASKS["denoise"], clean, settings)  # equal channels in: the same noise in each
    assert (gray[:, 0] == gray[:, 1]).all() and (gray[:, 1] == gray[:, 2]).all()


def test_mixed_masks_and_network_settings_are_checked():
    from aekit.restore.network import RestorationNetConfig, RestorationUNet
    from aekit.restore.tasks import MASKS

    masks = MASKS["mixed"](16, 64, 64, torch.Generator().manual_seed(0), "cpu")
    assert masks.shape == (16, 1, 64, 64) and 0.02 < float(masks.mean()) < 0.5
    net = RestorationUNet(RestorationNetConfig(4, 3, width=8, depth=2, residual=True, unshuffle=2))
    assert net.stride == 8 and net(torch.rand(1, 4, 24, 40)).recon.shape == (1, 3, 24, 40)
    for bad, match in [
        ({"unshuffle": 3}, "unshuffle must be 1, 2 or 4"),
        ({"chroma_gain": 0}, "chroma_gain"),
    ]:
        with pytest.raises(ConfigError, match=match):
            RestorationNetConfig(3, 3, **bad).validate()
