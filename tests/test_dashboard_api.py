"""The dashboard's HTTP API (aekit.dashboard) through FastAPI's TestClient, and the `aekit dashboard` verb.

One runs folder is built per module, with tiny real models: a dense autoencoder and a VAE trained by
`aekit train` (so their run folders hold run.json and metrics.jsonl), an anomaly detector, a restore
model, an autoencoder on table rows (the wrong shape for the digits), a damaged model file, an `aekit
compare` report, and a symlink pointing out of the folder; next to it, outside, a secret file that no
request may reach.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from aekit import AnomalyDetector, AutoEncoder
from aekit.cli.main import main
from aekit.dashboard import create_app, images
from aekit.dashboard import runs as runs_module
from aekit.dashboard.app import MAX_BODY_BYTES, MAX_HEAVY_REQUESTS
from aekit.data import load
from cli_helpers import assert_one_error, run

SECRET = "top-secret-sentinel-4711"
TINY = ["--hidden", "8", "--epochs", "2", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("dashboard")
    runs = base / "runs"
    for kind, size in (("dense", 4), ("vae", 2)):
        argv = ["train", "--data", "digits", "--kind", kind, "--code-size", str(size), *TINY]
        assert main([*argv, "--out", str(runs / f"{kind}.aek"), "--runs", str(runs)]) == 0
    digits = load("digits")
    AnomalyDetector(
        kind="dense", n_estimators=1, refits=0, epochs=1, code_size=2, hidden=(8,), random_state=0
    ).fit(digits.x_train[:300]).save(runs / "detector.aek")
    table = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    AutoEncoder(code_size=2, hidden=(4,), epochs=1, random_state=0).fit(table).save(runs / "table.aek")
    from aekit.restore import ImageRestorer

    photos = (np.random.default_rng(1).random((6, 32, 32, 3)) * 255).astype(np.uint8)
    ImageRestorer(
        task="denoise", width=4, depth=1, blocks=1, crop=16, epochs=1, validation_fraction=0, random_state=0
    ).fit(photos).save(runs / "denoise.aek")
    (runs / "broken.aek").write_bytes(b"not a model at all")
    (runs / "sub").mkdir()
    shutil.copy(runs / "dense.aek", runs / "sub" / "dense.aek")  # the same stem: listed as dense-2
    argv = ["compare", "--data", "digits", "--code-sizes", "2,4", "--kind", "dense", "--epochs", "1"]
    assert main([*argv, "--max-train", "200", "--out", str(runs / "cmp"), "--quiet"]) == 0
    outside = base / "outside"
    outside.mkdir()
    (outside / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "loss": SECRET}) + "\n")
    (outside / "comparison.json").write_text(json.dumps({"rows": [], "kind": SECRET}))
    (base / "secret.txt").write_text(SECRET)
    (runs / "evil").symlink_to(outside, target_is_directory=True)
    return base


@pytest.fixture(scope="module")
def client(root) -> TestClient:
    return TestClient(create_app(root / "runs", "digits", device="cpu"))


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def url_of(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def picture(url: str) -> np.ndarray:
    """A PNG data URL the API returned, as an array (checking that it is one)."""
    assert url.startswith(images.DATA_URL_PREFIX)
    with Image.open(io.BytesIO(base64.b64decode(url[len(images.DATA_URL_PREFIX) :]))) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def stroke(size: int = 200, dark_on_light: bool = False) -> bytes:
    """A drawn '1': a thick vertical bar, white on black (or black on white)."""
    im = np.zeros((size, size), np.uint8)
    im[size // 8 : -size // 8, size * 2 // 5 : size * 3 // 5] = 255
    return png(255 - im if dark_on_light else im)


def detail(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    message = response.json()["detail"]
    assert isinstance(message, str) and "\n" not in message and message
    for word in words:
        assert word in message, message
    assert SECRET not in response.text
    return message


# -- health, runs and metrics -----------------------------------------------------------------------------


def test_health(client, root):
    body = client.get("/api/health").json()
    assert body["runs_dir"] == str(root / "runs") and body["data"] == "digits" and body["version"]


def test_runs_list_the_training_runs_with_their_config(client, root):
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"dense", "vae"}  # not the symlink out of the folder, nor the compare report
    dense = runs["dense"]
    assert dense["config"]["kind"] == "dense" and dense["config"]["code_size"] == 4
    assert dense["config"]["epochs"] == 2 and dense["config"]["out"] == str(root / "runs" / "dense.aek")
    assert time.time() - 600 < dense["config"]["started"] <= dense["updated"] <= dense["config"]["finished"]
    assert dense["epochs"] == 2 and dense["last"]["epoch"] == 2 and "val_loss" in dense["last"]
    assert dense["trained"] == dense["config"]["trained"] == {"epochs": 2}
    assert dense["label"] == "dense autoencoder · code 4 · digits" and dense["model"] == "dense"
    assert dense["finished"] is True and dense["live"] is False  # written seconds ago, but finished


def test_metrics_since_and_live_rows(client, root):
    body = client.get("/api/runs/vae/metrics").json()
    assert [row["epoch"] for row in body["rows"]] == [1, 2] and body["next"] == 2
    assert client.get("/api/runs/vae/metrics?since=2").json() == {"rows": [], "next": 2}
    # a training run appends an epoch: the next poll gets exactly the new row
    metrics = root / "runs" / "vae" / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write(json.dumps({"epoch": 3, "loss": 1.5, "val_loss": float("nan")}) + "\n")
    body = client.get("/api/runs/vae/metrics?since=2").json()
    assert body == {"rows": [{"epoch": 3, "loss": 1.5, "val_loss": None}], "next": 3}  # NaN as null
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert runs["vae"]["epochs"] == 3 and runs["vae"]["last"]["loss"] == 1.5
    old = time.time() - 3600
    os.utime(metrics, (old, old))
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert runs["vae"]["live"] is False and runs["vae"]["updated"] == pytest.approx(old)


def write_run(folder: Path, config: dict, epochs: int = 0) -> None:
    """A run folder as 'aekit train' leaves it: run.json, and metrics.jsonl once an epoch is done."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(config))
    if epochs:
        rows = (json.dumps({"epoch": e, "loss": 1.0 / e}) + "\n" for e in range(1, epochs + 1))
        (folder / "metrics.jsonl").write_text("".join(rows))


def test_a_run_is_live_only_until_it_finishes(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "a", {"task": "reconstruct", "kind": "vae", "code_size": 2, "started": time.time()}, 3)
    client = TestClient(create_app(runs, device="cpu"))

    def the_run():
        [only] = client.get("/api/runs").json()["runs"]
        return only

    first = the_run()
    assert first["live"] is True and first["finished"] is False and first["trained"] == {"epochs": 3}
    old = time.time() - 3600  # killed an hour ago: neither live nor finished
    os.utime(runs / "a" / "metrics.jsonl", (old, old))
    assert (the_run()["live"], the_run()["finished"]) == (False, False)
    os.utime(runs / "a" / "metrics.jsonl")  # written again just now, then the model is saved
    config = {**first["config"], "finished": time.time(), "trained": {"epochs": 3}}
    (runs / "a" / "run.json").write_text(json.dumps(config))
    last = the_run()
    assert last["live"] is False and last["finished"] is True and last["label"] == "vae autoencoder · code 2"


def test_runs_from_before_the_finished_mark_are_finished_when_their_model_is_newer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(Path("runs", "m"), {"kind": "dense", "code_size": 8, "out": "m.aek"}, 2)  # --out as typed
    client = TestClient(create_app("runs", device="cpu"))
    [legacy] = client.get("/api/runs").json()["runs"]
    assert legacy["live"] is True and legacy["finished"] is False  # no model yet: still training
    tiny = AutoEncoder(code_size=2, hidden=(4,), epochs=1, random_state=0)
    tiny.fit(np.zeros((8, 3), np.float32)).save("m.aek")  # saved after the last epoch: the run ended
    [legacy] = client.get("/api/runs").json()["runs"]
    assert legacy["live"] is False and legacy["finished"] is True and legacy["model"] == "m"


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory) -> Path:
    """A detector and a denoiser trained by `aekit train --task`, their models written outside runs/."""
    base = tmp_path_factory.mktemp("tasks")
    tiny = ["--data", "digits", "--epochs", "1", "--batch-size", "64", "--runs", base / "runs", "--quiet"]
    detector = ["--task", "detect", "--refits", "0", "--hidden", "8", "--out", base / "det.aek"]
    denoiser = ["--task", "denoise", "--crop", "8", "--width", "4", "--out", base / "den.aek"]
    for argv in (detector, denoiser):
        assert main([str(a) for a in ["train", *argv, *tiny]]) == 0
    return base


def test_runs_are_labelled_by_their_task(task_runs):
    client = TestClient(create_app(task_runs / "runs", device="cpu"))
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert {"det", "den"} <= set(models)  # listed from run.json, though written outside the runs folder
    det, den = runs["det"], runs["den"]
    # a detector chooses its code size from the data: the label has the model's, run.json none
    assert "code_size" not in det["config"] and det["model"] == "det"
    code, members = models["det"]["code_size"], models["det"]["members"]
    assert det["label"] == f"dense anomaly detector · code {code} · {members} members · digits"
    assert det["epochs"] == 0 and det["trained"] == {"epochs": 1}  # no metrics.jsonl: run.json says
    assert det["finished"] is True and det["live"] is False
    # a restoration network has no family or code size
    assert not {"kind", "code_size", "hidden"} & set(den["config"]) and den["label"] == "denoiser · digits"
    assert den["trained"] == {"epochs": 1} and den["finished"] is True and den["live"] is False


@pytest.mark.parametrize(
    ("config", "label"),
    [
        (
            {"task": "reconstruct", "kind": "conv", "code_size": 32, "data": "mnist"},
            "conv autoencoder · code 32 · mnist",
        ),
        ({"kind": "dense", "code_size": 8, "noise": "gaussian"}, "dense denoising autoencoder · code 8"),
        ({"task": "detect", "kind": "dense", "code_size": 32}, "dense anomaly detector"),  # 32: not its own
        ({"task": "upscale", "kind": "dense", "code_size": 32, "data": "photos"}, "upscaler · photos"),
        ({"task": "compress", "latent": 64}, "codec"),
    ],
)
def test_run_labels_from_run_json_alone(config, label):
    """Before a run's model exists (and for run.json files from older versions, which list every
    option for every task), the label comes from run.json and leaves out what the task ignores."""
    assert runs_module.label(config) == label


def test_train_marks_run_json_finished_and_a_resume_takes_the_mark_back(tmp_path):
    from aekit.cli import train

    folder = tmp_path / "r"
    write_run(folder, {"task": "compress", "started": 1.0})
    train.finish_run_config(folder, [{"step": 50, "loss": 2.0}, {"step": 60, "loss": 1.0}])
    config = json.loads((folder / "run.json").read_text())
    assert config["trained"] == {"steps": 60} and config["finished"] >= config["started"]
    args = argparse.Namespace(resume=True)
    assert train.write_run_config(folder, args, tmp_path / "r.aek") is None
    assert json.loads((folder / "run.json").read_text()) == {"task": "compress", "started": 1.0}


def test_a_run_started_from_python_is_listed_and_labelled(tmp_path):
    """The trainer writes run.json when a run folder has none, and marks it finished at the end."""
    runs = tmp_path / "runs"
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    AutoEncoder(code_size=2, hidden=(4,), epochs=2, random_state=0, run_dir=runs / "py").fit(x)
    [run] = TestClient(create_app(runs, device="cpu")).get("/api/runs").json()["runs"]
    assert run["name"] == "py" and run["label"] == "dense autoencoder · code 2"
    assert run["finished"] is True and run["live"] is False and run["trained"] == {"epochs": 2}
    assert run["config"]["epochs"] == 2 and run["config"]["started"] <= run["config"]["finished"]


def test_the_trainer_keeps_the_cli_run_json_and_marks_it_finished(tmp_path, monkeypatch):
    from aekit.cli import train

    monkeypatch.setattr(train, "finish_run_config", lambda run_dir, history: None)  # the trainer alone
    runs = tmp_path / "runs"
    argv = ["train", "--data", "digits", "--code-size", "3", *TINY, "--runs", str(runs)]
    assert main([*argv, "--out", str(tmp_path / "m.aek")]) == 0
    config = json.loads((runs / "m" / "run.json").read_text())
    assert config["data"] == "digits" and config["out"] == str(tmp_path / "m.aek")  # the CLI's settings
    assert config["code_size"] == 3 and config["hidden"] == [8]
    assert config["trained"] == {"epochs": 2} and config["finished"] >= config["started"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/nope/metrics",
        "/api/runs/%2e%2e/metrics",
        "/api/runs/..%2Fsecret.txt/metrics",
        "/api/runs/..%2F..%2Foutside/metrics",
        "/api/runs/evil/metrics",  # a symlink out of the runs folder
        "/api/runs/dense%2F..%2F..%2Foutside/metrics",
    ],
)
def test_unknown_or_escaping_run_names_are_404(client, path):
    detail(client.get(path), 404)


def test_metrics_since_must_be_a_whole_number(client):
    detail(client.get("/api/runs/dense/metrics?since=-1"), 400, "since")
    detail(client.get("/api/runs/dense/metrics?since=x"), 400, "since")


# -- models --------------------------------------------------------------------------------------------------


def test_models_are_listed_with_type_and_shape(client):
    body = client.get("/api/models").json()
    models = {m["name"]: m for m in body["models"]}
    builtins = {"denoise", "upscale-x2", "upscale-x4", "inpaint", "colorize"}  # shipped restorers
    assert set(models) == {"photo", "dense", "dense-2", "vae", "detector", "table", "denoise-2"} | builtins
    types = {name: m["type"] for name, m in models.items()}
    assert types == {
        "photo": "codec",
        "dense": "autoencoder",
        "dense-2": "autoencoder",
        "vae": "autoencoder",
        "detector": "detector",
        "table": "autoencoder",
        "denoise-2": "restore",  # the runs' denoise.aek: built-in names come first
    } | dict.fromkeys(builtins, "restore")
    vae = models["vae"]
    assert vae["kind"] == "vae" and vae["is_vae"] and vae["code_size"] == 2 and vae["input_shape"] == [8, 8]
    assert vae["is_image"] and vae["params"] > 0
    assert models["dense"]["kind"] == "dense" and not models["dense"]["is_vae"]
    assert models["table"]["is_image"] is False and models["table"]["input_shape"] == [5]
    assert models["denoise-2"]["kind"] == "denoise" and models["photo"]["qualities"] == 8
    [skipped] = body["skipped"]
    assert skipped["name"] == "broken" and "broken.aek" in skipped["error"]


def test_reconstructions_are_the_models_with_their_errors(client, root):
    body = client.get("/api/models/dense/reconstructions?n=3").json()
    ae = AutoEncoder.load(root / "runs" / "dense.aek", device="cpu")
    x = load("digits").x_test
    recon = ae.reconstruct(x)
    errors = ((recon.astype(np.float64) - x) ** 2).reshape(len(x), -1).mean(axis=1)  # digits: scaling none
    assert [item["index"] for item in body["items"]] == [0, 1, 2]
    for i, item in enumerate(body["items"]):
        assert item["error"] == pytest.approx(errors[i], rel=1e-5)
        np.testing.assert_array_equal(picture(item["input"]), np.rint(x[i] * 255).astype(np.uint8))
        np.testing.assert_array_equal(picture(item["output"]), images.to_uint8(recon[i], (0.0, 1.0)))
    assert body["mean_error"] == pytest.approx(errors.mean(), rel=1e-5) and body["n_examples"] == len(x)
    typical = ae.typicality(x)  # each example's percentile among the training data (aekit.typicality)
    for i, item in enumerate(body["items"]):
        assert item["typicality"]["percentile"] == pytest.approx(typical.percentile[i], abs=0.01)
    assert body["typicality"]["stored"] and body["typicality"]["atypical"] == int(typical.atypical.sum())


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/models/nope/reconstructions", 404, ["nope", "/api/models"]),
        ("/api/models/..%2Fsecret.txt/reconstructions", 404, []),
        ("/api/models/%2e%2e/latent", 404, []),
        ("/api/models/dense/reconstructions?n=0", 400, ["n"]),
        ("/api/models/dense/reconstructions?n=many", 400, ["n"]),
        ("/api/models/table/reconstructions", 400, ["(5,)", "(8, 8)", "--data"]),
        ("/api/models/photo/reconstructions", 400, ["codec", "autoencoder"]),
        ("/api/models/denoise/latent", 400, ["restore"]),
        ("/api/models/broken/latent", 400, ["broken.aek"]),
    ],
)
def test_model_panels_refuse_bad_requests(client, path, status, words):
    detail(client.get(path), status, *words)


def test_latent_of_a_2d_code_is_the_code_itself(client, root):
    body = client.get("/api/models/vae/latent?n=50").json()
    ds = load("digits")
    codes = AutoEncoder.load(root / "runs" / "vae.aek", device="cpu").transform(ds.x_test)
    assert body["method"] == "code" and body["code_size"] == 2 and body["indices"] == list(range(50))
    np.testing.assert_allclose(body["points"], codes[:50], rtol=1e-5, atol=1e-6)
    assert body["labels"] == ds.y_test[:50].tolist()
    lo, hi = np.percentile(codes, [1, 99], axis=0)
    np.testing.assert_allclose(body["code_ranges"], np.column_stack([lo, hi]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(body["codes_mean"], codes.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_latent_of_a_wider_code_is_its_pca(client):
    body = client.get("/api/models/dense/latent").json()
    assert body["method"] == "pca" and body["code_size"] == 4 and len(body["points"]) == 359
    assert all(len(p) == 2 for p in body["points"]) and len(body["code_ranges"]) == 4
    assert all(lo <= hi for lo, hi in body["code_ranges"])
    spread = np.var(np.asarray(body["points"]), axis=0)
    assert spread[0] >= spread[1] > 0  # principal components: the first carries the most variance


def test_item_thumbnails(client):
    response = client.get("/api/models/dense/items/5.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as im:
        np.testing.assert_array_equal(np.asarray(im), np.rint(load("digits").x_test[5] * 255))
    for bad in ("359", "-1", "abc", "1e3", "..%2F..%2Fsecret"):
        detail(client.get(f"/api/models/dense/items/{bad}.png"), 404)
    detail(client.get("/api/models/nope/items/1.png"), 404)


def test_interpolation_runs_between_two_examples(client, root):
    for method in ("linear", "spherical"):
        body = client.post(
            "/api/models/vae/interpolate", json={"a": 0, "b": 7, "steps": 5, "method": method}
        ).json()
        assert len(body["images"]) == 5 and picture(body["images"][0]).shape == (8, 8)
    # the ends decode the two examples' codes
    ae = AutoEncoder.load(root / "runs" / "vae.aek", device="cpu")
    x = load("digits").x_test
    end = ae.inverse_transform(ae.transform(x[7:8]))[0]
    np.testing.assert_array_equal(picture(body["images"][-1]), images.to_uint8(end, (0.0, 1.0)))


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"a": 0, "b": 1, "method": "cubic"}, 400, ["method"]),
        ({"a": 0, "b": 1, "steps": 1}, 400, ["steps"]),
        ({"a": 0, "b": 1, "steps": 1000}, 400, ["steps"]),
        ({"a": 0}, 400, ["b"]),
        ({"a": 0, "b": 9999}, 404, ["9999"]),
        ({"a": -1, "b": 0}, 404, []),
    ],
)
def test_interpolation_refuses_bad_bodies(client, body, status, words):
    detail(client.post("/api/models/vae/interpolate", json=body), status, *words)


def test_decode_a_code(client, root):
    body = client.post("/api/models/vae/decode", json={"z": [0.5, -1.0]}).json()
    ae = AutoEncoder.load(root / "runs" / "vae.aek", device="cpu")
    expected = ae.inverse_transform(np.array([[0.5, -1.0]], np.float32))[0]
    np.testing.assert_array_equal(picture(body["image"]), images.to_uint8(expected, (0.0, 1.0)))
    detail(client.post("/api/models/vae/decode", json={"z": [0.5]}), 400, "2 numbers")
    detail(client.post("/api/models/vae/decode", json={"z": "abc"}), 400, "z")
    nan = client.post(
        "/api/models/vae/decode", content=b'{"z": [NaN, 1]}', headers={"content-type": "application/json"}
    )
    detail(nan, 400)
    detail(client.post("/api/models/nope/decode", json={"z": [0, 0]}), 404)


# -- the game ---------------------------------------------------------------------------------------------


def test_game_shows_what_the_model_makes_of_a_drawing(client, root):
    body = client.post("/api/models/dense/game", json={"image": url_of(stroke())}).json()
    seen = picture(body["input"])
    assert seen.shape == (8, 8) and seen[:, 3:5].mean() > seen[:, :2].mean()  # the bar, shrunk to 8x8
    ae = AutoEncoder.load(root / "runs" / "dense.aek", device="cpu")
    x = (seen / 255.0).astype(np.float32)[None]
    np.testing.assert_allclose(body["code"], ae.transform(x)[0], rtol=1e-4, atol=1e-5)
    recon = ae.reconstruct(x)
    assert body["error"] == pytest.approx(float(np.mean((recon - x) ** 2)), rel=1e-4)
    np.testing.assert_array_equal(picture(body["output"]), images.to_uint8(recon[0], (0.0, 1.0)))
    assert 0 <= body["anomaly"]["percentile"] <= 100 and body["anomaly"]["score"] == body["error"]
    assert body["noisy"] is None and body["denoised"] is None
    typical = body["typicality"]["sample"]  # the drawing's percentile among the training data
    assert typical["percentile"] == pytest.approx(ae.typicality(x).percentile[0], abs=0.01)
    assert typical["atypical"] == (typical["percentile"] > body["typicality"]["limit"])
    # dark strokes on white are inverted to the digits' white on black
    inverted = client.post(
        "/api/models/dense/game", json={"image": url_of(stroke(dark_on_light=True))}
    ).json()
    assert inverted["input"] == body["input"]


def test_game_noise_mode_and_detectors(client):
    body = client.post("/api/models/vae/game", json={"image": url_of(stroke(64)), "noise": 0.5}).json()
    noisy, denoised = picture(body["noisy"]), picture(body["denoised"])
    assert noisy.shape == denoised.shape == (8, 8)
    assert not np.array_equal(noisy, picture(body["input"]))
    body = client.post("/api/models/detector/game", json={"image": url_of(stroke())}).json()
    assert body["anomaly"]["score"] != body["error"] and 0 <= body["anomaly"]["percentile"] <= 100
    assert body["typicality"] is None  # a detector's anomaly score is its typicality


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"image": "data:image/png;base64,AAAA"}, 400, ["not an image"]),
        ({"image": "data:image/png;base64,@@@"}, 400, ["base64"]),
        ({"image": "hello"}, 400, ["data URL"]),
        ({"image": url_of(b"")}, 400, ["empty"]),
        ({"image": url_of(stroke()), "noise": 2}, 400, ["noise"]),
        ({"noise": 0.1}, 400, ["image"]),
        ({"image": url_of(png(np.zeros((1, 4097), np.uint8)))}, 413, ["4097x1", "4096"]),
    ],
)
def test_game_refuses_bad_drawings(client, body, status, words):
    detail(client.post("/api/models/dense/game", json=body), status, *words)


def test_game_needs_an_image_autoencoder(client):
    detail(client.post("/api/models/table/game", json={"image": url_of(stroke())}), 400, "(5,)")
    detail(client.post("/api/models/photo/game", json={"image": url_of(stroke())}), 400, "codec")


def test_anomalies_panel_explains_a_detectors_flagged_examples(client):
    body = client.get("/api/models/detector/explanations?n=3").json()
    assert body["kind"] == "image" and body["baseline"] == "training" and body["n_flagged"] > 0
    scores = [item["score"] for item in body["items"]]
    assert len(scores) == min(3, body["n_flagged"]) and scores == sorted(scores, reverse=True)
    item = body["items"][0]
    assert picture(item["input"]).shape == picture(item["output"]).shape == (8, 8)
    assert picture(item["heatmap"]).shape == (8, 8, 3)  # coloured: white where most of the error is
    detail(client.get("/api/models/dense/explanations"), 400, "not 'detector'", "--task detect")


def test_oversized_bodies_are_413_before_they_are_read(client):
    huge = "data:image/png;base64," + "A" * (images.MAX_UPLOAD_BYTES * 4 // 3 + 100 * 1024)
    detail(client.post("/api/models/dense/game", json={"image": huge}), 413, "MB")


# -- applications --------------------------------------------------------------------------------------------


def photo(seed: int = 0, size: int = 32) -> np.ndarray:
    """A smooth colour picture (blocks blurred by resizing): something a photo codec can do well."""
    small = (np.random.default_rng(seed).random((4, 4, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR))


def test_compress_against_jpeg_and_webp(client):
    image = photo()
    response = client.post(
        "/api/apply/compress", files={"file": ("a.png", png(image), "image/png")}, data={"quality": "3"}
    )
    body = response.json()
    assert response.status_code == 200, body
    ours = body["ours"]
    assert ours["bytes"] > 0 and ours["psnr"] > 15 and ours["quality"] == 3
    assert picture(ours["image"]).shape == (32, 32, 3)
    for name in ("jpeg", "webp"):
        other = body[name]
        assert 1 <= other["quality"] <= 100 and other["bytes"] > 0 and other["psnr"] > 0
        assert picture(other["image"]).shape == (32, 32, 3)
    # a grayscale JPEG upload is turned into the RGB the codec takes
    grey = client.post(
        "/api/apply/compress",
        files={"file": ("g.jpg", png(image[..., 0], "JPEG"), "image/jpeg")},
        data={"model": "photo", "quality": "8"},
    ).json()
    assert grey["ours"]["quality"] == 8 and grey["width"] == 32
    # the built-in codec stores its training photos' rates: each upload gets its percentile
    t = body["typicality"]
    assert t["stored"] and t["limit"] == 99.9 and 0 <= t["sample"]["percentile"] <= 100
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    flagged = client.post(
        "/api/apply/compress", files={"file": ("n.png", png(noise), "image/png")}, data={"quality": "3"}
    ).json()["typicality"]["sample"]
    assert flagged["atypical"] and flagged["percentile"] > 99.9


def test_pillow_baseline_picks_the_nearest_size():
    from aekit.dashboard.compression import _encode, pillow_nearest

    image = photo(1, 64)
    target = len(_encode("JPEG", image, 50))
    chosen = pillow_nearest("jpeg", image, target)
    assert chosen["bytes"] == target
    sizes = {q: len(_encode("JPEG", image, q)) for q in range(1, 101)}
    chosen = pillow_nearest("jpeg", image, target + 7)
    assert abs(chosen["bytes"] - target - 7) == min(abs(s - target - 7) for s in sizes.values())


def test_restore_an_upload(client):
    image = photo(2, 24)
    body = client.post(
        "/api/apply/restore", files={"file": ("a.png", png(image), "image/png")}, data={"model": "denoise"}
    ).json()
    out = picture(body["output"])
    assert out.shape == (24, 24, 3) and body["width"] == 24 and body["height"] == 24
    np.testing.assert_array_equal(picture(body["input"]), image)
    assert body["typicality"]["stored"] and 0 <= body["typicality"]["sample"]["percentile"] <= 100


@pytest.mark.parametrize(
    ("endpoint", "file", "data", "status", "words"),
    [
        ("compress", png(photo(3, 64))[:300], {}, 400, ["could not decode", "truncated"]),
        ("compress", b"plain text", {}, 400, ["not an image"]),
        ("compress", None, {"quality": "9"}, 400, ["quality", "1", "8"]),
        ("compress", None, {"quality": "high"}, 400, ["quality"]),
        ("compress", None, {"model": "dense"}, 400, ["autoencoder", "codec"]),
        ("compress", None, {"model": "../secret.txt"}, 404, []),
        ("restore", None, {"model": "photo"}, 400, ["codec", "restore"]),
        ("restore", None, {}, 400, ["model"]),
        ("restore", None, {"model": "nope"}, 404, ["nope"]),
        ("restore", b"GIF89a", {"model": "denoise"}, 400, []),
        ("restore", png(np.zeros((4100, 2), np.uint8)), {"model": "denoise"}, 413, ["4096"]),
    ],
)
def test_applications_refuse_bad_uploads(client, endpoint, file, data, status, words):
    content = png(photo()) if file is None else file
    response = client.post(
        f"/api/apply/{endpoint}", files={"file": ("x.png", content, "image/png")}, data=data
    )
    detail(response, status, *words)


def test_uploads_over_8_mb_are_413(client):
    big = os.urandom(images.MAX_UPLOAD_BYTES + 1)
    response = client.post(
        "/api/apply/compress", files={"file": ("big.png", big, "image/png")}, data={"model": "photo"}
    )
    detail(response, 413, "8 MB")


# -- compare -------------------------------------------------------------------------------------------------


def test_compare_results_with_their_example_images(client, root):
    [result] = client.get("/api/compare").json()["results"]  # not the one the symlink leads to
    saved = json.loads((root / "runs" / "cmp" / "comparison.json").read_text())
    assert result["name"] == "cmp" and result["data"] == "digits" and result["code_sizes"] == [2, 4]
    assert result["ae_error"] == [row["ae_mse"] for row in saved["rows"]]
    assert result["pca_error"] == [row["pca_mse"] for row in saved["rows"]]
    examples = result["examples"]
    with np.load(root / "runs" / "cmp" / "examples.npz", allow_pickle=False) as npz:
        inputs = npz["inputs"]
        assert inputs.dtype == np.uint8 and inputs.shape == (8, 8, 8)
        np.testing.assert_array_equal(inputs, np.rint(load("digits").x_test[:8] * 255))
        for k in (2, 4):
            assert npz[f"ae_{k}"].shape == npz[f"pca_{k}"].shape == (8, 8, 8)
        np.testing.assert_array_equal(picture(examples["sizes"]["4"]["pca"][3]), npz["pca_4"][3])
    assert len(examples["inputs"]) == 8 and set(examples["sizes"]) == {"2", "4"}


# -- the page and nothing else -------------------------------------------------------------------------------


def test_only_the_static_folder_is_served(client):
    from aekit.dashboard.app import STATIC_DIR

    page = client.get("/")
    if (STATIC_DIR / "index.html").is_file():
        assert page.status_code == 200 and "<html" in page.text.lower()
    else:
        detail(page, 404, "index.html")
    for asset in sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())[:3]:
        assert client.get(f"/static/{asset}").content == (STATIC_DIR / asset).read_bytes()
    for path in (
        "/static/..%2Fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/nope.js",
        "/runs/dense/metrics.jsonl",
        "/dense.aek",
        "/static/..%2F..%2F..%2F..%2Fsecret.txt",
    ):
        detail(client.get(path), 404)


def test_local_servers_refuse_other_host_names(root):
    app = create_app(root / "runs", allowed_hosts=("127.0.0.1", "localhost"))
    assert TestClient(app, base_url="http://127.0.0.1:8765").get("/api/health").status_code == 200
    detail(TestClient(app, base_url="http://evil.example:8765").get("/api/health"), 400, "evil.example")


# -- what another site's page cannot make the browser do -----------------------------------------------------


def black_png(width: int, height: int) -> bytes:
    """A black grayscale PNG written row by row: 20000 x 20000 is a 0.4 MB file that decodes to 400 MB,
    and this test never holds those pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate = zlib.compressobj(9)
    row = bytes(width + 1)  # filter type 0, then the pixels
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def upload(content: bytes | None = None) -> dict:
    return {"files": {"file": ("a.png", png(photo()) if content is None else content, "image/png")}}


def free_slots(client: TestClient) -> int:
    slots, free = client.app.state.heavy_slots, 0
    while free <= MAX_HEAVY_REQUESTS and slots.acquire(blocking=False):
        free += 1
    for _ in range(free):
        slots.release()
    return free


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a page opened from a file
        {"Origin": "http://testserver:9999"},  # another server on the same machine
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    ],
)
def test_other_sites_pages_are_refused(client, headers):
    response = client.post("/api/apply/compress", headers=headers, **upload())
    detail(response, 403, "another site", "http://testserver/")
    assert response.headers["x-content-type-options"] == "nosniff"
    detail(client.post("/api/models/dense/game", headers=headers, json={"image": url_of(stroke())}), 403)
    detail(client.post("/api/models/dense/decode", headers=headers, json={"z": [0, 0, 0, 0]}), 403)
    detail(client.get("/api/models/dense/reconstructions", headers=headers), 403)  # an <img> or <script>


def test_the_dashboards_own_page_is_served(client):
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/apply/compress", headers=own, **upload()).status_code == 200
    assert (
        client.post("/api/models/dense/game", headers=own, json={"image": url_of(stroke())}).status_code
        == 200
    )
    assert client.get("/api/models", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    # typed into the address bar, or a link to the dashboard followed from another site
    assert client.get("/api/health", headers={"Sec-Fetch-Site": "none"}).status_code == 200
    assert (
        client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == client.get("/").status_code
    )


def test_the_own_origin_is_the_host_the_page_was_served_from(client):
    served = TestClient(client.app, base_url="http://192.168.1.5:8800")  # e.g. --host 0.0.0.0 --port 8800
    body = {"z": [0, 0, 0, 0]}
    ok = served.post("/api/models/dense/decode", json=body, headers={"Origin": "http://192.168.1.5:8800"})
    assert ok.status_code == 200, ok.text
    refused = served.post("/api/models/dense/decode", json=body, headers={"Origin": "http://127.0.0.1:8765"})
    detail(refused, 403, "Origin: http://127.0.0.1:8765", "http://192.168.1.5:8800/")


def chunked(head: bytes, total: int, size: int = 2**20):
    """``total`` bytes starting with ``head``, as a generator: httpx sends it without a Content-Length."""
    yield head
    for start in range(len(head), total, size):
        yield b"A" * min(size, total - start)


MULTIPART_HEAD = (
    b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
)


@pytest.mark.parametrize(
    ("path", "content_type", "head"),
    [
        ("/api/models/dense/game", "application/json", b'{"image": "data:image/png;base64,'),
        ("/api/apply/compress", "multipart/form-data; boundary=x", MULTIPART_HEAD),
    ],
)
def test_chunked_bodies_over_the_limit_are_413(client, path, content_type, head):
    content = chunked(head, MAX_BODY_BYTES + 1)
    response = client.post(path, content=content, headers={"Content-Type": content_type})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    detail(response, 413, f"over {MAX_BODY_BYTES // 2**20} MB")
    assert free_slots(client) == MAX_HEAVY_REQUESTS


def test_the_guard_counts_the_body_for_any_app():
    """A body that passes the limit where no FastAPI route reads it: the guard answers 413 itself."""
    from starlette.responses import PlainTextResponse

    from aekit.dashboard.guard import Guard

    async def echo_length(scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        await PlainTextResponse(str(len(body)))(scope, receive, send)

    guarded = TestClient(Guard(echo_length, max_body=2**20, slots=threading.BoundedSemaphore(1)))
    assert guarded.post("/", content=chunked(b"", 2**20)).text == str(2**20)
    detail(guarded.post("/", content=chunked(b"", 2**20 + 1)), 413, "over 1 MB")


def test_chunked_bodies_under_the_limit_are_read(client):
    body = json.dumps({"image": url_of(stroke())}).encode()
    content = (body[i : i + 1000] for i in range(0, len(body), 1000))
    response = client.post(
        "/api/models/dense/game", content=content, headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert picture(response.json()["output"]).shape == (8, 8)


@pytest.mark.parametrize(
    "side",
    [
        20000,  # 400 megapixels: Image.open raises DecompressionBombError before it gives the size
        pytest.param(  # 100: Image.open only warns, and the header's size is over MAX_SIDE
            10000, marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
        ),
        pytest.param(10000, marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")),
    ],
)
def test_png_bombs_are_413(client, side):
    bomb = black_png(side, side)
    assert len(bomb) < images.MAX_UPLOAD_BYTES
    detail(client.post("/api/apply/compress", **upload(bomb)), 413, "4096x4096")
    detail(client.post("/api/models/dense/game", json={"image": url_of(bomb)}), 413, "4096x4096")


@pytest.mark.parametrize(("endpoint", "data"), [("compress", {}), ("restore", {"model": "denoise"})])
def test_compress_and_restore_take_at_most_2_megapixels(client, endpoint, data):
    limit = f"{images.MAX_APPLY_PIXELS:,}"
    black = black_png(4096, 4096)  # a few KB that once cost 108 s and 5 GB to compress
    detail(client.post(f"/api/apply/{endpoint}", data=data, **upload(black)), 413, "4096x4096", limit)
    detail(client.post(f"/api/apply/{endpoint}", data=data, **upload(black_png(1449, 1448))), 413, limit)


def test_the_game_shrinks_drawings_up_to_4096_a_side(client):
    body = client.post("/api/models/dense/game", json={"image": url_of(black_png(4096, 4096))}).json()
    assert picture(body["input"]).shape == (8, 8)


def test_image_requests_beyond_the_cap_are_503(client):
    slots, held = client.app.state.heavy_slots, 0
    while held <= MAX_HEAVY_REQUESTS and slots.acquire(blocking=False):
        held += 1  # as requests that are still running would
    try:
        assert held == MAX_HEAVY_REQUESTS
        busy = client.post("/api/apply/compress", **upload())
        detail(busy, 503, "try again")
        assert int(busy.headers["retry-after"]) > 0
        detail(client.post("/api/apply/restore", data={"model": "denoise"}, **upload()), 503)
        detail(client.post("/api/models/dense/game", json={"image": url_of(stroke())}), 503)
        # the rest of the API is not held up
        assert client.get("/api/models").status_code == 200
        assert client.post("/api/models/dense/decode", json={"z": [0, 0, 0, 0]}).status_code == 200
    finally:
        for _ in range(held):
            slots.release()
    assert client.post("/api/apply/compress", **upload()).status_code == 200
    detail(client.post("/api/apply/compress", **upload(b"plain text")), 400)
    assert free_slots(client) == MAX_HEAVY_REQUESTS  # answered or failed, each request gave its slot back


# -- the aekit dashboard verb --------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch):
    """uvicorn.run replaced by a recorder: the verb's checks and its call, without a server."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_dashboard_verb_serves_on_localhost(root, served, capsys):
    code, out, err = run(capsys, "dashboard", "--runs", root / "runs", "--model", root / "runs/sub/dense.aek")
    assert code == 0, err
    [(app, kw)] = served
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8765 and "warning" not in err
    assert "http://127.0.0.1:8765/" in out
    client = TestClient(app, base_url="http://localhost:8765")
    assert client.get("/api/health").json()["runs_dir"] == str(root / "runs")


def test_dashboard_verb_warns_about_other_hosts(root, served, capsys):
    code, _, err = run(capsys, "dashboard", "--runs", root / "runs", "--host", "0.0.0.0", "--port", "8799")
    assert code == 0 and served[0][1] == {"host": "0.0.0.0", "port": 8799, "log_level": "warning"}
    assert err.startswith("aekit: warning: --host 0.0.0.0") and "127.0.0.1" in err


def test_the_readmes_steps_list_the_model_trained_with_out(tmp_path, monkeypatch, served, capsys):
    """README: `aekit train ... --out model.aek`, then `aekit dashboard --runs runs`: the model is there,
    though --out wrote it beside the runs folder rather than in it."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", "digits", "--kind", "dense", "--code-size", "4", *TINY, "--out", "model.aek"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.aek", "runs"]
    code, _, err = run(capsys, "dashboard", "--runs", "runs")
    assert code == 0, err
    client = TestClient(served[0][0], base_url="http://127.0.0.1:8765")
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert models["model"]["type"] == "autoencoder" and models["model"]["code_size"] == 4
    assert client.get("/api/models/model/reconstructions?n=2").status_code == 200
    [model_run] = client.get("/api/runs").json()["runs"]
    assert model_run["model"] == "model" and model_run["label"] == "dense autoencoder · code 4 · digits"
    # run.json names the model by its absolute path: found from anywhere
    monkeypatch.chdir(tmp_path / "runs")
    models = TestClient(create_app(".", device="cpu")).get("/api/models").json()["models"]
    assert "model" in {m["name"] for m in models}


def test_dashboard_verb_takes_several_model_files(root, tmp_path, served, capsys):
    for name in ("a", "b", "c"):
        shutil.copy(root / "runs" / "dense.aek", tmp_path / f"{name}.aek")
    (tmp_path / "empty").mkdir()
    argv = ["--runs", tmp_path / "empty", "--model", tmp_path / "a.aek", tmp_path / "b.aek"]
    code, _, err = run(capsys, "dashboard", *argv, "--model", tmp_path / "c.aek")
    assert code == 0, err
    client = TestClient(served[0][0], base_url="http://127.0.0.1:8765")
    models = {m["name"] for m in client.get("/api/models").json()["models"]}
    assert {"a", "b", "c"} <= models


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--runs", "no-such-folder"], ["--runs no-such-folder", "does not exist"]),
        (["--runs", "{root}/secret.txt"], ["is a file"]),
        (["--data", "no-such-data"], ["no-such-data"]),
        (["--model", "missing.aek"], ["missing.aek"]),
        (["--model", "{root}/runs/dense.aek", "missing.aek"], ["missing.aek"]),
        (["--model", "{root}/secret.txt"], ["secret.txt"]),
        (["--model", "{root}/runs/broken.aek"], ["broken.aek"]),
        (["--port", "70000"], ["--port", "65535"]),
        (["--host", "no-such-host.invalid"], ["--host"]),
    ],
)
def test_dashboard_verb_bad_input_is_one_line_before_serving(root, served, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(root)  # its runs/ is the default --runs
    argv = [a.format(root=root) for a in argv]
    code, _, err = run(capsys, "dashboard", *argv)
    assert_one_error(code, err, *words)
    assert served == []


def test_dashboard_verb_port_in_use(root, served, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "dashboard", "--runs", root / "runs", "--port", port)
    assert_one_error(code, err, "cannot listen", str(port), "--port")
    assert served == []
