"""The ``aekit`` command: every verb end to end, every expected error as one line with exit status 2.

Most cases call ``main`` in-process; a few run ``python -m aekit`` to prove the entry point and that
``--help`` stays fast and free of torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit.cli import inspect as inspect_verbs
from aekit.cli import train as train_verb
from aekit.cli.main import VERB_MODULES, build_parser, main
from cli_helpers import assert_one_error, run

SRC = Path(__file__).resolve().parents[1] / "src"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
VERBS = ("train", "info", "eval", "encode", "decode", "reconstruct", "demo")
VERBS += ("sample", "interpolate", "embed", "compare", "restore", "detect")  # the applications
VERBS += ("compress", "decompress")
VERBS += ("report",)  # aekit report: one HTML page on a model
VERBS += ("dashboard",)  # aekit dashboard: the web app
VERBS += ("probe",)  # aekit probe: linear probe and k-means per layer
TINY = ["--epochs", "1", "--hidden", "8", "--code-size", "2", "--batch-size", "16", "--quiet"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Each test runs in its own empty folder (the default ./runs lands there), with the shared data sets."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    if SHARED.is_dir():
        monkeypatch.setenv("AEKIT_DATA_DIR", str(SHARED))
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))


# -- data and models shared by the tests ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    # 8x8 images of a bright square at random places: learnable structure, uint8 like real images
    images = np.zeros((80, 8, 8), np.uint8)
    for img, (r, c) in zip(images, rng.integers(0, 5, (80, 2)), strict=True):
        img[r : r + 4, c : c + 4] = 200
    images += rng.integers(0, 40, images.shape, dtype=np.uint8)
    np.savez(folder / "images.npz", x_train=images[:64], x_test=images[64:])
    np.save(folder / "many_images.npy", images[:40])
    table = rng.normal(size=(64, 5)).astype(np.float32) @ rng.normal(size=(5, 5)).astype(np.float32)
    np.save(folder / "table.npy", table)
    np.save(folder / "table_big.npy", np.abs(table) * 10)  # values far above 1
    with_nan = table.copy()
    with_nan[3, 2] = np.nan
    np.save(folder / "table_nan.npy", with_nan)
    return {p.stem: p for p in folder.iterdir()}


def _train(folder: Path, data: Path, *options: str) -> Path:
    out = folder / f"{data.stem}.aek"
    argv = ["train", "--data", str(data), "--out", str(out), "--runs", str(folder / "runs"), *TINY, *options]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def image_model(files, tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("image_model"), files["images"], "--kind", "conv")


@pytest.fixture(scope="module")
def table_model(files, tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("table_model"), files["table"])


# -- help and the entry point --------------------------------------------------------------------------------


def test_help_lists_every_verb_and_each_verb_has_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for verb in VERBS:
        assert verb in out
    for verb in VERBS:
        code, out, _ = run(capsys, verb, "--help")
        assert code == 0
        assert out.startswith(f"usage: aekit {verb}")
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("aekit ")


def test_help_is_fast_and_imports_nothing_heavy():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = (
        "import contextlib, io, sys\n"
        "from aekit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    codes = [main([*verb, '--help']) for verb in ([], *[[v] for v in {VERBS!r}])]\n"
        "heavy = [m for m in ('torch', 'sklearn', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "print(codes, heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{[0] * (len(VERBS) + 1)} []"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "aekit", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0 and "usage: aekit" in result.stdout
    assert elapsed < 1.0, f"'aekit --help' took {elapsed:.2f} s"


def test_python_m_aekit_trains_and_reports_errors_as_one_line(files, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-m", "aekit", "train", "--data", str(files["table"]), "--out", "m.aek", *TINY]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote m.aek" in result.stdout
    assert (tmp_path / "m.aek").is_file() and (tmp_path / "runs" / "m" / "metrics.jsonl").is_file()
    result = subprocess.run(
        [sys.executable, "-m", "aekit", "train", "--epochs", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_error(result.returncode, result.stderr, "--epochs")


# -- happy paths ---------------------------------------------------------------------------------------------


def test_train_prints_losses_and_writes_model_and_run_folder(files, capsys):
    code, out, err = run(
        capsys, "train", "--data", files["images"], "--out", "models/conv.aek", "--kind", "conv", *TINY
    )
    assert code == 0, err
    assert "final recon" in out and "val_loss" in out and "wrote models/conv.aek" in out
    assert Path("models/conv.aek").is_file()
    metrics = Path("runs/conv/metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 1 and json.loads(metrics[0])["epoch"] == 1
    assert Path("runs/conv/checkpoint.safetensors").is_file()


@pytest.mark.parametrize(
    "options",
    [
        ["--kind", "sparse", "--sparsity", "kl", "--rho", "0.1"],
        ["--kind", "vae", "--beta", "0.5", "--noise", "mask", "--noise-level", "0.1"],
    ],
)
def test_train_passes_family_options(files, capsys, options):
    code, _, err = run(capsys, "train", "--data", files["table"], "--out", "m.aek", *TINY, *options)
    assert code == 0, err
    code, out, _ = run(capsys, "info", "m.aek", "--json")
    info = json.loads(out)
    assert info["family"] == options[1]
    for name, value in zip(options[2::2], options[3::2], strict=True):
        key = name.removeprefix("--").replace("-", "_")
        stored = info["settings"].get(key, info["training"].get(key))
        assert str(stored) == value


def test_epochs_auto_stops_early_and_says_so(files, capsys):
    options = ["--epochs", "auto", "--patience", "1", "--lr", "0.05"]
    code, out, err = run(capsys, "train", "--data", files["table"], "--out", "m.aek", *TINY, *options)
    assert code == 0, err
    assert "stopped early" in out
    info = json.loads(run(capsys, "info", "m.aek", "--json")[1])
    assert info["training"]["epochs"] == "auto" and info["epochs_trained"] >= 2
    assert "(stopped early)" in run(capsys, "info", "m.aek")[1]


def test_image_model_info_eval_encode_decode_reconstruct(files, image_model, capsys):
    code, out, _ = run(capsys, "info", image_model)
    assert code == 0
    assert "conv" in out and "uint8" in out and "divide255" in out
    code, out, _ = run(capsys, "info", image_model, "--json")
    info = json.loads(out)
    assert info["family"] == "conv" and info["settings"]["code_size"] == 2 and info["parameters"] > 0
    assert info["data"] == {
        "sample_shape": [8, 8],
        "dtype": "uint8",
        "scaling": "divide255",
        "model_input_shape": [1, 8, 8],
    }
    assert info["epochs_trained"] == 1 and info["final"]["loss"] > 0 and info["format_version"] >= 1
    assert f"{info['parameters']:,}" in run(capsys, "info", image_model)[1]

    code, out, err = run(capsys, "eval", image_model, "--data", files["images"], "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["split"] == "test" and report["n_samples"] == 16 and "/ 255" in report["unit"]
    for side in ("autoencoder", "pca"):
        mse = report[side]["mse"]
        assert 0 < mse < 1
        assert report[side]["psnr_db"] == pytest.approx(10 * np.log10(1 / mse))
    assert report["pca"]["n_components"] == 2 and report["pca"]["n_train"] == 64
    assert report["autoencoder"]["loss"]["recon"] > 0
    code, out, _ = run(capsys, "eval", image_model, "--data", files["images"])
    assert code == 0 and "PSNR" in out and "PCA" in out

    x = np.load(files["images"])["x_test"]
    assert run(capsys, "encode", image_model, files["images"], "-o", "codes.npy")[0] == 0
    codes = np.load("codes.npy")
    assert codes.shape == (16, 2) and codes.dtype == np.float32
    assert run(capsys, "decode", image_model, "codes.npy", "-o", "decoded.npz")[0] == 0
    decoded = np.load("decoded.npz")["x"]
    assert decoded.shape == x.shape and decoded.dtype == np.uint8
    code, out, _ = run(capsys, "reconstruct", image_model, files["images"], "-o", "recon.npy")
    assert code == 0 and "(16, 8, 8)" in out
    np.testing.assert_allclose(np.load("recon.npy"), decoded, atol=1)  # encode+decode == reconstruct

    code, out, _ = run(capsys, "reconstruct", image_model, files["many_images"], "-o", "grid.png")
    assert code == 0 and "32 inputs" in out and "enlarged 6x" in out
    with Image.open("grid.png") as grid:
        assert grid.format == "PNG" and grid.mode == "L"
        # 32 of the 40 inputs, each 8x8 image enlarged 6x to 48x48 (visible), 2 px gaps
        assert grid.size == (32 * 48 + 33 * 2, 2 * 48 + 3 * 2)
        pixels = np.asarray(grid)
    # the first input, shown as it is (uint8), at the top left: each pixel a 6x6 block
    first = np.load(files["many_images"])[0]
    np.testing.assert_array_equal(pixels[2:50, 2:50], first.repeat(6, axis=0).repeat(6, axis=1))


def test_one_png_image_is_a_batch_of_one(image_model, capsys):
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save("one.png")
    assert run(capsys, "encode", image_model, "one.png", "-o", "code.csv")[0] == 0
    assert np.loadtxt("code.csv", delimiter=",", skiprows=1).shape == (2,)


def test_table_model_round_trip_through_csv_and_parquet(files, table_model, capsys):
    assert run(capsys, "encode", table_model, files["table"], "-o", "codes.csv")[0] == 0
    assert run(capsys, "decode", table_model, "codes.csv", "-o", "decoded.parquet")[0] == 0
    decoded = pd.read_parquet("decoded.parquet").to_numpy()
    assert decoded.shape == (64, 5)
    assert run(capsys, "reconstruct", table_model, files["table"], "-o", "recon.npy")[0] == 0
    np.testing.assert_allclose(np.load("recon.npy"), decoded, rtol=1e-4, atol=1e-4)

    code, out, err = run(capsys, "eval", table_model, "--data", files["table"], "--json")
    assert code == 0
    assert "no test split" in err  # a note, on stderr, so stdout stays one JSON object
    report = json.loads(out)
    assert report["split"] == "train" and "standardised" in report["unit"]
    assert report["autoencoder"]["psnr_db"] is None and report["pca"]["psnr_db"] is None
    assert report["pca"]["mse"] < 1.0  # 2 of 5 correlated features explain part of the variance


def test_named_data_set_train_and_eval(capsys):
    code, _, err = run(capsys, "train", "--data", "digits", "--out", "digits.aek", *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "eval", "digits.aek", "--data", "digits", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["data"] == "digits" and report["split"] == "test" and report["n_samples"] == 359


def test_interrupted_run_resumes_to_the_uninterrupted_result(files, capsys, monkeypatch):
    from aekit import AutoEncoder
    from aekit.training.trainer import Trainer

    args = ["train", "--data", files["table"], *TINY, "--epochs", "2"]
    assert run(capsys, *args, "--out", "whole.aek")[0] == 0

    original = Trainer._write_epoch

    def checkpoint_then_stop(self, model, optimizer, scheduler, state):
        original(self, model, optimizer, scheduler, state)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(Trainer, "_write_epoch", checkpoint_then_stop)
    code, _, err = run(capsys, *args, "--out", "part.aek")
    assert code == 130
    assert len(err.strip().splitlines()) == 1 and "--resume" in err and "Traceback" not in err
    assert not Path("part.aek").exists()
    monkeypatch.setattr(Trainer, "_write_epoch", original)
    code, out, err = run(capsys, *args, "--out", "part.aek", "--resume")
    assert code == 0, err
    assert "for 2 epoch(s)" in out
    whole, resumed = AutoEncoder.load("whole.aek").model_, AutoEncoder.load("part.aek").model_
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), name


def test_keyboard_interrupt_and_warnings_are_one_line(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(inspect_verbs, "run", interrupted)
    code, _, err = run(capsys, "info", "m.aek")
    assert code == 130 and err.count("\n") == 1 and err.startswith("aekit: interrupted")

    def warns(args):
        warnings.warn("something odd\nover two lines", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(inspect_verbs, "run", warns)
    code, _, err = run(capsys, "info", "m.aek")
    assert code == 0 and err == "aekit: warning: something odd over two lines\n"


# -- every expected error: one line on stderr, exit status 2 -------------------------------------------------


def _damaged(model: Path, how: str) -> Path:
    data = bytearray(model.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        data[-2] ^= 0xFF  # the weights come last
    path = Path(f"{how}.aek")
    path.write_bytes(bytes(data))
    return path


ERROR_CASES = {
    # name: (argv, with {placeholders} for the paths in the test below; words the one line must contain)
    "missing model": (["info", "missing.aek"], ["missing.aek"]),
    "missing model for encode": (["encode", "missing.aek", "{table_data}", "-o", "o.npy"], ["missing.aek"]),
    "missing input": (["encode", "{table}", "missing.npy", "-o", "o.npy"], ["missing.npy"]),
    "wrong features for the model": (["encode", "{table}", "{image_data}", "-o", "o.npy"], ["shape"]),
    "wrong image size for the model": (["reconstruct", "{image}", "{table_data}", "-o", "o.npy"], ["shape"]),
    "wrong code size": (["decode", "{table}", "{table_data}", "-o", "o.npy"], ["(N, 2)"]),
    "eval on data of another shape": (["eval", "{image}", "--data", "{table_data}"], ["shape"]),
    "NaN to encode": (["encode", "{table}", "{nan_data}", "-o", "o.npy"], ["NaN"]),
    "NaN to train on": (["train", "--data", "{nan_data}", "--out", "m.aek", *TINY], ["NaN"]),
    "bce on data above 1": (
        ["train", "--data", "{big_data}", "--out", "m.aek", "--loss", "bce", *TINY],
        ["bce"],
    ),
    "truncated model": (["info", "{truncated}"], ["truncated.aek"]),
    "flipped bytes in model": (
        ["encode", "{flipped}", "{table_data}", "-o", "o.npy"],
        ["flipped.aek", "damaged"],
    ),
    "a checkpoint is not a model": (["info", "{checkpoint}"], ["not an aekit model"]),
    "unknown data set": (["train", "--data", "no-such-set", "--out", "m.aek", *TINY], ["no-such-set"]),
    "unknown data set for eval": (["eval", "{table}", "--data", "no-such-set"], ["no-such-set"]),
    "unknown kind": (
        ["train", "--data", "{table_data}", "--out", "m.aek", "--kind", "nope", *TINY],
        ["nope"],
    ),
    "option of another family": (
        ["train", "--data", "{table_data}", "--out", "m.aek", "--rho", "0.1", *TINY],
        ["rho"],
    ),
    "epochs 0": (["train", "--data", "{table_data}", "--out", "m.aek", "--epochs", "0"], ["--epochs", "'0'"]),
    "hidden not sizes": (
        ["train", "--data", "{table_data}", "--out", "m.aek", "--hidden", "8,x"],
        ["--hidden"],
    ),
    "negative lr": (["train", "--data", "{table_data}", "--out", "m.aek", "--lr", "-1"], ["--lr"]),
    "lr nan": (["train", "--data", "{table_data}", "--out", "m.aek", "--lr", "nan"], ["--lr"]),
    "validation fraction 1": (
        ["train", "--data", "{table_data}", "--out", "m.aek", "--validation-fraction", "1"],
        ["--validation-fraction"],
    ),
    "unknown loss": (["train", "--data", "{table_data}", "--out", "m.aek", "--loss", "hinge"], ["hinge"]),
    "unknown device": (["encode", "{table}", "{table_data}", "-o", "o.npy", "--device", "gpu"], ["gpu"]),
    "missing required option": (["train", "--out", "m.aek"], ["--data"]),
    "no command": ([], ["command"]),
    "unknown command": (["fit"], ["fit"]),
    "resume without a checkpoint": (
        ["train", "--data", "{table_data}", "--out", "m.aek", "--resume", *TINY],
        ["checkpoint"],
    ),
    "png for a table model": (["reconstruct", "{table}", "{table_data}", "-o", "grid.png"], ["PNG", "table"]),
    "png from encode": (["encode", "{image}", "{image_data}", "-o", "codes.png"], ["encode"]),
    "unknown output type": (["encode", "{table}", "{table_data}", "-o", "codes.txt"], [".txt"]),
    "image array to csv": (["reconstruct", "{image}", "{image_data}", "-o", "recon.csv"], [".csv"]),
    "output inside a file": (
        ["encode", "{table}", "{table_data}", "-o", "{table_data}/codes.npy"],
        ["table.npy"],
    ),
    "output is a folder": (["encode", "{table}", "{table_data}", "-o", "."], ["folder"]),
    "output over the model": (["encode", "{table}", "{table_data}", "-o", "{table}"], ["overwrite"]),
    "train output over its data": (
        ["train", "--data", "{table_copy}", "--out", "{table_copy}", *TINY],
        ["overwrite"],
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_expected_errors_are_one_line_with_status_2(case, files, image_model, table_model, capsys):
    argv, words = ERROR_CASES[case]
    checkpoint = image_model.parent / "runs" / image_model.stem / "checkpoint.safetensors"
    table_copy = Path("table_copy.npy")
    table_copy.write_bytes(files["table"].read_bytes())
    places = {
        "image": image_model,
        "table": table_model,
        "image_data": files["images"],
        "table_data": files["table"],
        "nan_data": files["table_nan"],
        "big_data": files["table_big"],
        "truncated": _damaged(table_model, "truncated"),
        "flipped": _damaged(table_model, "flipped"),
        "checkpoint": checkpoint,
        "table_copy": table_copy,
    }
    before = {p: p.read_bytes() for p in places.values() if p.is_file()}
    code, out, err = run(capsys, *(a.format(**places) for a in argv))
    assert_one_error(code, err, *words)
    assert out == ""
    for path, content in before.items():  # no input was touched
        assert path.read_bytes() == content, path
    leftovers = [
        p.name for p in Path().iterdir() if p.name not in ("table_copy.npy", "truncated.aek", "flipped.aek")
    ]
    assert leftovers == [], "an output or a temporary file was left behind"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(image_model, files, capsys):
    Path("recon.csv").write_text("precious")
    # the reconstructions are 3-D, so writing them as a table fails half-way through write_array
    code, _, err = run(capsys, "reconstruct", image_model, files["images"], "-o", "recon.csv")
    assert_one_error(code, err, ".csv")
    assert Path("recon.csv").read_text() == "precious"
    assert [p.name for p in Path().iterdir()] == ["recon.csv"]


# -- the parser against the library --------------------------------------------------------------------------


def _train_actions() -> dict:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices["train"]._actions}


def test_train_choices_and_defaults_match_the_library():
    from typing import get_args, get_type_hints

    from aekit import AutoEncoder, losses, noise
    from aekit.data.scaling import SCALINGS
    from aekit.models.config import Backbone
    from aekit.models.sparse import SparseConfig

    actions = _train_actions()
    assert set(actions["loss"].choices) == {"auto", *losses.RECONSTRUCTION}
    assert set(actions["noise"].choices) == set(noise.NOISES)
    assert set(actions["scaling"].choices) == set(SCALINGS)
    assert set(actions["backbone"].choices) == set(get_args(Backbone))
    assert set(actions["sparsity"].choices) == set(get_args(get_type_hints(SparseConfig)["sparsity"]))
    defaults = AutoEncoder().get_params()
    for name in (
        "kind",
        "code_size",
        "hidden",
        "loss",
        "scaling",
        "epochs",
        "noise",
        "noise_level",
        "patience",
    ):
        assert actions[name].default == defaults[name], name
    assert actions["lr"].default is None  # each task's estimator keeps its own default learning rate
    # unset, these take the task's value: the autoencoder's, or (compress) the codec's own defaults
    for name in ("batch_size", "validation_fraction"):
        assert actions[name].default is None and train_verb.DEFAULTS[name] == defaults[name], name
    from aekit.codec.codec import ImageCodec

    codec = ImageCodec().get_params()
    for name, value in train_verb.TASKS["compress"].defaults.items():
        assert codec[name] == value, name
    for name in train_verb.FAMILY_OPTIONS:  # passed only when given: the estimator rejects them elsewhere
        assert actions[name].default is None, name


def test_every_verb_belongs_to_one_module():
    owned = [verb for module in VERB_MODULES for verb in module.VERBS]
    assert sorted(owned) == sorted(VERBS)


# -- demo ----------------------------------------------------------------------------------------------------


def test_demo_quick_writes_a_report(capsys):
    code, out, err = run(capsys, "demo", "--quick", "--out", "report")
    assert code == 0, err
    assert "dense" in out and "vae" in out  # the demo prints its own summary table
    assert (Path("report") / "index.html").is_file()


# -- file permissions --------------------------------------------------------------------------------------


def test_outputs_get_the_usual_file_permissions(table_model, files, capsys):
    umask = os.umask(0)
    os.umask(umask)
    assert run(capsys, "encode", table_model, files["table"], "-o", "codes.npy")[0] == 0
    assert Path("codes.npy").stat().st_mode & 0o777 == 0o666 & ~umask


def test_train_binarized_vae_with_kl_warmup(files, capsys):
    code, out, err = run(
        capsys, "train", "--data", files["images"], "--out", "vae.aek", "--kind", "vae", "--loss", "bce",
        "--binarize", "--kl-warmup", "1", *TINY,
    )  # fmt: skip
    assert code == 0, err
    from aekit import AutoEncoder

    est = AutoEncoder.load("vae.aek")
    assert est.binarize and est.kl_warmup == 1
    # the options that need a VAE / a Bernoulli likelihood say so in one line
    # (--loss auto is cross-entropy on images, which --binarize accepts; squared error it refuses)
    for option, word in ((["--kl-warmup", "2"], "kl_warmup"), (["--binarize", "--loss", "mse"], "binarize")):
        code, _, err = run(capsys, "train", "--data", files["images"], "--out", "d.aek", *option, *TINY)
        assert_one_error(code, err, word)


def test_info_describes_detector_and_restorer_files(capsys):
    from aekit import AnomalyDetector
    from aekit.restore import ImageRestorer

    rng = np.random.default_rng(0)
    table = rng.normal(size=(64, 5)).astype(np.float32)
    AnomalyDetector(epochs=1, n_estimators=2, random_state=0).fit(table).save("det.aek")
    images = rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    ImageRestorer(task="denoise", width=4, crop=8, epochs=1, random_state=0).fit(images).save("dn.aek")
    code, out, err = run(capsys, "info", "det.aek", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["holds"] == "anomaly detector" and report["settings"]["n_estimators"] == 2
    assert report["parameters"] > 0 and report["epochs_trained"] == 1
    code, out, err = run(capsys, "info", "dn.aek")
    assert code == 0, err
    assert "image restoration model" in out and "task=denoise" in out


def test_info_describes_codec_files(capsys):
    from aekit.codec import ImageCodec

    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16), dtype=np.uint8)
    settings = dict(hidden=8, latent=4, stages=2, pixel_width=8, pixel_layers=2, pixel_mixtures=2)
    codec = ImageCodec(**settings, batch_size=8, lambdas=(0.05,), steps=3, random_state=0).fit(images)
    codec.save("codec.aek")
    code, out, err = run(capsys, "info", "codec.aek", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["holds"] == "learned image codec" and report["fingerprint"] == codec.fingerprint_.hex()
    assert report["epochs_trained"] == 1 and report["parameters"] > 0  # 3 steps: one epoch
    code, out, err = run(capsys, "info", "codec.aek")
    assert code == 0 and "learned image codec" in out and "epochs trained" in out, err
