"""Image restoration: the four tasks end to end on tiny images, tiling, model files, metrics and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aekit import AutoEncoder
from aekit.cli.main import main
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.restore import ImageRestorer, psnr, ssim
from aekit.restore.network import RestorationNetConfig, RestorationUNet, luma
from aekit.restore.restorer import run_tiled
from aekit.restore.tasks import MASKS, TASKS, Settings, smooth_fill
from cli_helpers import one_line_error

TINY = {"width": 4, "depth": 1, "crop": 8, "epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


def smooth_images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Blurry colour blobs: images with structure, so restoring them is a real task, unlike white noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, size // 4, size // 4, channels))
    x = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    x = (x + np.roll(x, 1, axis=1) + np.roll(x, 1, axis=2)) / 3
    x = np.round(x * 255).astype(np.uint8)
    return x[..., 0] if channels == 1 else x


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return smooth_images(24)


@pytest.fixture(scope="module")
def fitted(images) -> dict[str, ImageRestorer]:
    return {task: ImageRestorer(task=task, **TINY).fit(images) for task in TASKS}


# -- the tasks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_restores_any_size(fitted, images, task):
    est = fitted[task]
    image = images[0][:13, :11]  # not a multiple of the network's stride
    mask = np.zeros((13, 11), bool) if task == "inpaint" else None
    if mask is not None:
        mask[3:8, 2:6] = True
    out = est.restore(image, mask=mask)
    factor = 2 if task == "upscale" else 1
    assert out.shape == (13 * factor, 11 * factor, 3) and out.dtype == np.uint8
    batch = est.restore(images[:3], mask=None if mask is None else np.ones((16, 16)))
    assert batch.shape == (3, 16 * factor, 16 * factor, 3)
    assert len(est.history_) == 1 and np.isfinite(est.history_[0]["loss"])


def test_inpaint_keeps_known_pixels_and_fills_holes(fitted, images):
    image = images[1]
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    out = fitted["inpaint"].restore(image, mask=mask)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], np.full_like(out[mask], 128))  # the hole was filled, not left grey


def test_colorize_keeps_the_luminance_and_accepts_colour_photos(fitted, images):
    gray = np.round(luma(torch.from_numpy(images[:1].transpose(0, 3, 1, 2) / 255.0))[0, 0].numpy() * 255)
    gray = gray.astype(np.uint8)
    out = fitted["colorize"].restore(gray)
    assert out.shape == (16, 16, 3)
    out_luma = luma(torch.from_numpy(out.transpose(2, 0, 1)[None] / 255.0))[0, 0].numpy() * 255
    assert np.abs(out_luma - gray).max() <= 2.0  # rounding to uint8 and clipping only
    np.testing.assert_array_equal(fitted["colorize"].restore(images[0]), out)  # RGB in: its luminance is used


def test_denoise_learns_to_beat_the_noisy_input():
    """A few hundred steps on structured images must already remove much of the noise."""
    x = smooth_images(64, size=16, seed=1)
    est = ImageRestorer(
        task="denoise",
        width=8,
        depth=1,
        crop=16,
        epochs=30,
        batch_size=8,
        lr=5e-3,
        random_state=0,
        device="cpu",
    ).fit(x)
    clean = smooth_images(4, size=16, seed=2)
    gen = torch.Generator().manual_seed(0)
    t = torch.from_numpy(clean.transpose(0, 3, 1, 2) / 255.0).float()
    noisy = TASKS["denoise"].observe(t, Settings(), gen).image
    noisy = np.round(noisy.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    assert psnr(clean, est.restore(noisy)) > psnr(clean, noisy) + 2.0
    # fit measured the same gain on its validation crops
    assert est.psnr_["split"] == "validation" and est.psnr_["crops"] == 3
    assert est.psnr_["gain"] > 2.0 and est.psnr_["input_is"] == "the noisy input"


@pytest.mark.parametrize("task", list(TASKS))
def test_fit_measures_the_psnr_gain_over_the_tasks_input(fitted, images, task):
    p = fitted[task].psnr_
    assert p["gain"] == pytest.approx(p["restored"] - p["input"])
    assert 5 < p["input"] < 60 and p["input_is"] == TASKS[task].baseline
    est = ImageRestorer(task=task, **{**TINY, "validation_fraction": 0.0}).fit(images[:4])
    assert est.psnr_["split"] == "training" and est.psnr_["crops"] == 4  # no validation crops: training ones


def test_cli_psnr_line_says_when_training_barely_helped():
    from types import SimpleNamespace

    from aekit.cli.restore import psnr_line

    figures = {
        "restored": 20.61,
        "input": 20.60,
        "input_is": "the noisy input",
        "crops": 3,
        "split": "validation",
    }
    flat = psnr_line(SimpleNamespace(psnr_={**figures, "gain": 0.01}))
    assert "20.61 dB restored, 20.60 dB for the noisy input: +0.01 dB" in flat
    assert "barely improves on its input" in flat and "--epochs" in flat
    worse = psnr_line(SimpleNamespace(psnr_={**figures, "restored": 20.1, "gain": -0.5}))
    assert "-0.50 dB" in worse and "worse than its input" in worse
    good = psnr_line(SimpleNamespace(psnr_={**figures, "restored": 26.6, "gain": 6.0}))
    assert good.endswith("+6.00 dB") and "on 3 validation crops" in good


def test_grayscale_models_keep_grayscale_layout():
    gray = smooth_images(16, channels=1)
    est = ImageRestorer(task="upscale", **TINY).fit(gray)
    assert est.restore(gray[0]).shape == (32, 32)
    assert est.restore(gray[:2]).shape == (2, 32, 32)
    assert est.restore([gray[0], gray[1][:12, :10]])[1].shape == (24, 20)
    float_out = est.restore(gray[0] / 255.0)
    assert float_out.dtype == np.float32 and float_out.min() >= 0 and float_out.max() <= 1


def test_fit_takes_differently_sized_images_and_is_deterministic(images):
    mixed = [images[0], np.pad(images[1], ((0, 9), (0, 4), (0, 0))), images[2][:8, :12]]
    a = ImageRestorer(task="denoise", crops_per_image=3, **TINY).fit(mixed)
    b = ImageRestorer(task="denoise", crops_per_image=3, **TINY).fit(mixed)
    for pa, pb in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        assert torch.equal(pa, pb)
    state = torch.random.get_rng_state()
    ImageRestorer(task="denoise", **TINY).fit(images[:4])
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's global RNG is left alone


@pytest.mark.parametrize(
    ("params", "data", "error", "match"),
    [
        ({"task": "sharpen"}, None, ConfigError, "not a restoration task"),
        ({"task": "upscale", "scale": 5}, None, ConfigError, "scale=5"),
        ({"crop": 9}, None, ConfigError, "multiple of 2"),
        ({"task": "upscale", "scale": 3, "crop": 8}, None, ConfigError, "multiple of 6"),
        ({"noise_sigma": 25}, None, ConfigError, "25/255"),
        ({"mask": "circles"}, None, ConfigError, "mask shape"),
        ({"task": "colorize"}, smooth_images(4, channels=1), DataError, "colour images"),
        ({"crop": 32}, None, DataError, "smaller than the training crop"),
        # the fix in both spellings: the estimator's parameter and the command line's option
        ({"crop": 32}, None, DataError, r"use crop=16 \(--crop 16 on the command line\)"),
        ({"crop": 9}, None, ConfigError, r"try crop=8 \(--crop 8 on the command line\)"),
        (
            {"task": "upscale", "scale": 3, "crop": 24},
            smooth_images(4)[:, :9],
            DataError,
            r"crop=6 \(--crop 6",
        ),
        ({}, np.zeros((4, 16, 16, 2), np.uint8), DataError, "shape"),
        ({}, np.full((4, 16, 16), 2.0), DataError, r"outside \[0, 1\]"),
    ],
)
def test_bad_settings_and_data_say_what_to_fix(images, params, data, error, match):
    settings = {**TINY, **params}
    with pytest.raises(error, match=match):
        ImageRestorer(**settings).fit(images[:4] if data is None else data)


def test_restore_refuses_mismatched_images_and_masks(fitted, images):
    with pytest.raises(DataError, match="takes RGB"):
        fitted["denoise"].restore(images[0, ..., 0])
    with pytest.raises(DataError, match="needs a mask"):
        fitted["inpaint"].restore(images[0])
    with pytest.raises(DataError, match="mask for image 0 is 8x8"):
        fitted["inpaint"].restore(images[0], mask=np.ones((8, 8)))
    with pytest.raises(ConfigError, match="inpaint models only"):
        fitted["denoise"].restore(images[0], mask=np.ones((16, 16)))


# -- masks and tiles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(MASKS))
def test_masks_cover_part_of_each_image(shape):
    mask = MASKS[shape](64, 32, 32, torch.Generator().manual_seed(0), "cpu")
    assert mask.shape == (64, 1, 32, 32)
    covered = mask.mean(dim=(1, 2, 3))
    assert (covered > 0).all() and (covered < 0.8).all()
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_smooth_fill_keeps_known_pixels_and_guesses_holes_from_their_surroundings():
    # A smooth ramp with a box and a thin stroke missing: the fill must recover the ramp closely (a grey
    # fill would be off by the ramp's distance from 0.5), keep every known pixel, and handle a lone image
    # with nothing missing or everything missing.
    ramp = torch.linspace(0, 1, 40).view(1, 1, 1, 40).expand(2, 3, 36, 40).clone()
    mask = torch.zeros(2, 1, 36, 40)
    mask[0, :, 10:20, 5:15] = 1
    mask[1, :, 3, :] = 1
    out = smooth_fill(ramp, mask)
    assert out.shape == ramp.shape
    assert torch.equal(out * (1 - mask), ramp * (1 - mask))
    holes = mask.expand_as(ramp).bool()
    assert (out - ramp)[holes].abs().max() < 0.05
    assert (0.5 - ramp)[holes].abs().mean() > 0.15  # the grey fill's error, for scale
    assert torch.equal(smooth_fill(ramp, torch.zeros_like(mask)), ramp)
    assert torch.isfinite(smooth_fill(ramp, torch.ones_like(mask))).all()


def test_new_inpainters_fill_holes_smoothly_and_old_files_keep_grey(fitted, tmp_path):
    fitted["inpaint"].save(tmp_path / "i.aek")
    assert ImageRestorer.load(tmp_path / "i.aek").settings_.fill == "smooth"
    assert Settings().fill == "grey"  # what a file without the field was trained with


def test_tiles_blend_into_the_whole_image_result():
    torch.manual_seed(0)
    net = RestorationUNet(RestorationNetConfig(in_channels=3, out_channels=3, width=4, depth=1, blocks=1))
    torch.nn.init.normal_(net.tail.weight, std=0.1)  # a network that changes its input (the tail starts at 0)
    x = torch.rand(1, 3, 50, 70)
    whole = run_tiled(net, x, tile=512)
    tiled = run_tiled(net, x, tile=24)
    assert tiled.shape == whole.shape == (1, 3, 50, 70)
    # Pixels far from every tile's edge match exactly; near the seams the blend keeps the error small.
    assert (tiled - whole).abs().mean() < 0.01
    assert (tiled - whole).abs().max() < 0.1
    with pytest.raises(ConfigError, match="too small"):
        run_tiled(net, x, tile=4)


# -- model files ---------------------------------------------------------------------------------------------


def test_save_load_round_trip_and_wrong_kind_of_file(fitted, images, tmp_path):
    path = tmp_path / "sr.aek"
    fitted["upscale"].save(path)
    again = ImageRestorer.load(path, device="cpu")
    assert again.task == "upscale" and again.settings_.scale == 2
    np.testing.assert_array_equal(again.restore(images[0]), fitted["upscale"].restore(images[0]))
    with pytest.raises(ModelFileError, match="image restoration model.*ImageRestorer.load"):
        AutoEncoder.load(path)
    ae_path = tmp_path / "ae.aek"
    AutoEncoder(kind="dense", code_size=2, hidden=(4,), epochs=1, random_state=0).fit(
        images[:8, :4, :4]
    ).save(ae_path)
    with pytest.raises(ModelFileError, match="holds an autoencoder"):
        ImageRestorer.load(ae_path)
    damaged = tmp_path / "damaged.aek"
    damaged.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelFileError):
        ImageRestorer.load(damaged)


# -- metrics -------------------------------------------------------------------------------------------------


def test_metrics_come_from_scikit_image_and_behave():
    rng = np.random.default_rng(0)
    a = smooth_images(1, size=32)[0]
    noisy = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - noisy) ** 2)
    assert psnr(a, noisy) == pytest.approx(10 * np.log10(255**2 / mse))
    assert psnr(a, a) == np.inf
    assert ssim(a, a) == pytest.approx(1.0)
    assert 0 < ssim(a, noisy) < 0.99
    assert psnr(a / 255.0, noisy / 255.0) == pytest.approx(psnr(a, noisy))
    with pytest.raises(DataError, match="shapes"):
        psnr(a, a[:8])


# -- the command line ----------------------------------------------------------------------------------------


def _write_pngs(folder, images):
    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"im{i}.png")
    return folder


CLI_TINY = ["--width", "4", "--crop", "8", "--epochs", "1", "--batch-size", "16", "--lr", "2e-3", "--quiet"]


@pytest.mark.parametrize("task", list(TASKS))
def test_cli_trains_and_restores_each_task(task, images, tmp_path, capsys):
    photos = _write_pngs(tmp_path / "photos", images[:12])
    model = tmp_path / f"{task}.aek"
    runs = str(tmp_path / "runs")
    assert (
        main(["train", "--task", task, "--data", str(photos), "--out", str(model), "--runs", runs, *CLI_TINY])
        == 0
    )
    mask = []
    if task == "inpaint":
        m = np.zeros((16, 16), np.uint8)
        m[4:10, 4:10] = 255
        Image.fromarray(m).save(tmp_path / "mask.png")
        mask = ["--mask", str(tmp_path / "mask.png")]
    out = tmp_path / "out.jpg"
    assert main(["restore", str(model), str(photos / "im0.png"), "-o", str(out), *mask]) == 0
    factor = 2 if task == "upscale" else 1
    assert Image.open(out).size == (16 * factor, 16 * factor) and Image.open(out).format == "JPEG"
    assert main(["restore", str(model), str(photos), "-o", str(tmp_path / "restored"), *mask]) == 0
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == sorted(
        p.name for p in photos.iterdir()
    )
    assert task in capsys.readouterr().out


@pytest.fixture(scope="module")
def cli_model(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "denoise.aek"
    fitted["denoise"].save(path)
    return path


def test_cli_bad_inputs_are_one_line_and_exit_2(cli_model, images, tmp_path, capsys):
    gray = tmp_path / "gray.png"
    Image.fromarray(images[0, ..., 0]).save(gray)
    one_line_error(capsys, ["restore", str(cli_model), str(gray), "-o", str(tmp_path / "o.png")], "takes RGB")
    one_line_error(
        capsys,
        ["restore", str(cli_model), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")],
        "no such",
    )
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    one_line_error(
        capsys, ["restore", str(cli_model), str(text), "-o", str(tmp_path / "o.png")], "not a PNG or JPEG"
    )
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    one_line_error(
        capsys, ["restore", str(cli_model), str(fake), "-o", str(tmp_path / "o.png")], "not a readable"
    )
    one_line_error(
        capsys, ["restore", str(cli_model), str(gray), "-o", str(tmp_path / "o.bmp")], "not a PNG or JPEG"
    )
    one_line_error(capsys, ["restore", str(cli_model), str(gray), "-o", str(gray)], "refusing to overwrite")
    ae = tmp_path / "ae.aek"
    AutoEncoder(kind="dense", code_size=2, hidden=(4,), epochs=1, random_state=0).fit(
        images[:8, :4, :4]
    ).save(ae)
    one_line_error(
        capsys, ["restore", str(ae), str(gray), "-o", str(tmp_path / "o.png")], "holds an autoencoder"
    )
    one_line_error(capsys, ["eval", str(cli_model), "--data", "digits"], "image restoration model")
    assert main(["info", str(cli_model)]) == 0  # info describes every aekit file
    assert "denoise" in capsys.readouterr().out


def test_cli_folder_refuses_its_own_folder_and_names_the_bad_file(cli_model, images, tmp_path, capsys):
    photos = _write_pngs(tmp_path / "photos", images[:2])
    one_line_error(capsys, ["restore", str(cli_model), str(photos), "-o", str(photos)], "input folder")
    Image.fromarray(images[2, ..., 0]).save(photos / "z_gray.png")
    one_line_error(
        capsys, ["restore", str(cli_model), str(photos), "-o", str(tmp_path / "out")], "z_gray.png"
    )


def test_cli_train_refuses_wrong_settings(images, tmp_path, capsys):
    photos = _write_pngs(tmp_path / "photos", images[:4, ..., 0])
    out = str(tmp_path / "m.aek")
    one_line_error(
        capsys, ["train", "--task", "colorize", "--data", str(photos), "--out", out, *CLI_TINY], "colour"
    )
    one_line_error(
        capsys,
        ["train", "--task", "denoise", "--loss", "bce", "--data", str(photos), "--out", out, *CLI_TINY],
        "bce",
    )
    # 16x16 photos, 32x32 crops: the fix is spelled as the command line spells it
    one_line_error(
        capsys,
        ["train", "--task", "denoise", "--data", str(photos), "--out", out, *CLI_TINY, "--crop", "32"],
        "smaller than the training crop",
        "--crop 16",
    )


def test_follows_the_estimator_contract(fitted):
    from sklearn.base import clone

    copy = clone(fitted["upscale"])
    assert copy.get_params() == fitted["upscale"].get_params()
    assert not hasattr(copy, "model_")  # __init__ only stores the parameters
    with pytest.raises(ConfigError, match="task changed"):
        clone(fitted["denoise"]).set_params(task="denoise").fit(smooth_images(4)).set_params(
            task="upscale"
        ).restore(smooth_images(1)[0])


def test_cli_trains_on_a_folder_of_differently_sized_photos(images, tmp_path, capsys):
    photos = _write_pngs(tmp_path / "photos", images[:6])
    Image.fromarray(np.zeros((24, 20, 3), np.uint8)).save(photos / "wide.png")  # another size: fine
    model = tmp_path / "dn.aek"
    argv = ["train", "--task", "denoise", "--data", str(photos), "--out", str(model), *CLI_TINY]
    assert main([*argv, "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "7 images" in out and "--task denoise" in out
    assert "dB for the noisy input" in out  # what training bought, beside the input
    assert ImageRestorer.load(model).task == "denoise"
