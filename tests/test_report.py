"""``aekit report`` end to end: tiny models trained through the CLI, their one-file HTML pages, bad inputs."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aekit.codec
from aekit import AnomalyDetector, AutoEncoder
from aekit.cli.main import main
from aekit.data import load
from aekit.reports import pieces
from cli_helpers import assert_one_error, run
from conftest import SHARED_DATA

TINY = ["--epochs", "2", "--hidden", "8", "--batch-size", "64", "--quiet"]
SECTIONS = ("summary", "losses", "reconstructions", "pca", "latent")
PNG_URL = "data:image/png;base64,"


class Page(HTMLParser):
    """Every tag's attributes, the ids, and the text, of one HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if "id" in a}

    def images(self) -> list[str]:
        return [a["src"] for t, a in self.tags if t == "img"]


def _section(text: str, sid: str) -> str:
    """The HTML of one <section id=...>."""
    match = re.search(rf'<section id="{sid}">(.*?)</section>', text, re.S)
    assert match, f"no section {sid}"
    return match.group(1)


def _decode(url: str) -> Image.Image:
    assert url.startswith(PNG_URL), url[:40]
    image = Image.open(io.BytesIO(base64.b64decode(url[len(PNG_URL) :], validate=True)))
    assert image.format == "PNG"
    image.load()
    return image


@pytest.fixture(scope="module")
def work(tmp_path_factory, monkeypatch_module):
    """Train a dense model, a VAE and a table model once; write each one's report."""
    root = tmp_path_factory.mktemp("report")
    runs = root / "runs"
    rng = np.random.default_rng(0)
    table = (rng.standard_normal((120, 6)) @ rng.standard_normal((6, 6))).astype(np.float32)
    np.save(root / "table.npy", table)  # no test split and no labels
    models = {
        "dense": ["--data", "digits", "--kind", "dense", "--code-size", "3"],
        "vae": ["--data", "digits", "--kind", "vae", "--code-size", "2"],
        "table": ["--data", root / "table.npy", "--kind", "dense", "--code-size", "2"],
    }
    for name, options in models.items():
        argv = ["train", *options, *TINY, "--runs", runs, "--out", root / f"{name}.aek"]
        assert main([str(a) for a in argv]) == 0, name
    data = {"dense": "digits", "vae": "digits", "table": root / "table.npy"}
    for name in models:
        argv = ["report", root / f"{name}.aek", "--data", data[name], "-o", root / f"{name}.html"]
        assert main([str(a) for a in argv]) == 0, name
    return root


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    """conftest's per-test settings, for the module fixture that trains outside any one test."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AEKIT_DATA_DIR", os.environ.get("AEKIT_DATA_DIR", str(SHARED_DATA)))
    mp.setenv("AEKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "aekit-cache"))
    mp.setenv("AEKIT_DATA_MIRROR", os.environ.get("AEKIT_TEST_MIRROR", "http://127.0.0.1:9/"))
    yield mp
    mp.undo()


def _page(work: Path, name: str) -> tuple[str, Page]:
    text = (work / f"{name}.html").read_text(encoding="utf-8")
    return text, Page(text)


@pytest.mark.parametrize("name", ["dense", "vae", "table"])
def test_page_is_self_contained(work, name):
    text, page = _page(work, name)
    links = [(tag, a[key]) for tag, a in page.tags for key in ("src", "href") if key in a]
    assert links, "the page links nothing"
    for tag, target in links:
        assert target.startswith(PNG_URL) or target.startswith("#"), (tag, target[:60])
    anchors = {target[1:] for _, target in links if target.startswith("#")}
    assert anchors <= page.ids(), anchors - page.ids()  # every in-page link has its target
    lowered = text.lower()
    for outside in ("<script", "<link", "@import", "url(", "http:", "https:", "<iframe"):
        assert outside not in lowered, outside
    assert "<style>" in text and text.startswith("<!doctype html>")
    assert not list(work.glob(".*.tmp")), "a temporary file was left behind"


@pytest.mark.parametrize(("name", "generation"), [("dense", "interpolation"), ("vae", "samples")])
def test_each_section_is_there_with_decodable_images(work, name, generation):
    text, page = _page(work, name)
    assert page.ids() >= {*SECTIONS, generation}
    assert ({"samples", "interpolation"} - {generation}).isdisjoint(page.ids())  # one or the other
    for sid in (*SECTIONS[1:], generation):
        images = Page(_section(text, sid)).images()
        assert images, f"section {sid} has no image"
        for url in images:
            image = _decode(url)
            if sid != "reconstructions":  # figures, not 8x8 thumbnails (a 2-epoch output may be flat)
                assert np.asarray(image.convert("L"), np.float32).std() > 1, f"a blank image in {sid}"
                assert min(image.size) >= 100, (sid, image.size)
    # 16 first and 8 worst test digits, each an input and a reconstruction, pixel for pixel
    cards = Page(_section(text, "reconstructions")).images()
    assert len(cards) == 2 * (16 + 8)
    assert all(_decode(url).size == (8, 8) for url in cards)


@pytest.mark.parametrize("name", ["dense", "vae"])
def test_numbers_match_the_model(work, name, capsys):
    """The summary, the per-image errors and PCA's errors agree with what aekit measures independently."""
    text, page = _page(work, name)
    est = AutoEncoder.load(work / f"{name}.aek", device="cpu")
    digits = load("digits")
    x = digits.x_test
    errors = ((est.reconstruct(x).astype(np.float64) - x) ** 2).reshape(len(x), -1).mean(axis=1)
    summary = _section(text, "summary")
    assert f"{errors.mean():.4g}" in summary
    assert f"{pieces.n_parameters(est):,}" in summary
    assert f"{len(est.history_)} epochs" in summary and len(est.history_) == 2
    assert f"<th>code size</th><td>{est.model_.config.code_size}<" in summary
    assert f"<th>family</th><td>{est.kind}" in summary

    recon = _section(text, "reconstructions")
    for i in (0, 5, 15):
        assert f"#{i} (label {digits.y_test[i]})<br>MSE {errors[i]:.4g}" in recon
    worst = re.search(r"<span>#(\d+)", recon[recon.index("worst") :]).group(1)
    assert int(worst) == int(np.argmax(errors))  # the worst reconstructed sample leads the worst ones

    # PCA's error at the model's own code size is the one 'aekit eval' reports
    code, out, err = run(
        capsys, "eval", work / f"{name}.aek", "--data", "digits", "--json", "--iw-samples", "2"
    )
    assert code == 0, err
    pca_mse = json.loads(out)["pca"]["mse"]
    k = est.model_.config.code_size
    rows = dict(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", _section(text, "pca")))
    assert float(rows[str(k)]) == pytest.approx(pca_mse, rel=1e-3)
    sizes = sorted(int(s) for s in rows)
    assert len(sizes) >= 3 and min(sizes) < k < max(sizes)  # sizes on both sides of the model's
    pca = [float(rows[str(s)]) for s in sizes]
    assert all(a > b for a, b in zip(pca, pca[1:], strict=False))  # more components, less error


def test_latent_map_says_how_it_was_made(work):
    dense, _ = _page(work, "dense")
    vae, _ = _page(work, "vae")
    assert "principal components of the 3-D codes" in _section(dense, "latent")
    assert "the 2-D code itself" in _section(vae, "latent")
    assert "coloured by label" in _section(vae, "latent")


def test_table_model_without_labels_or_test_split(work):
    text, page = _page(work, "table")
    assert page.ids() >= {*SECTIONS, "interpolation"}
    assert "120 training samples scored" in text  # no test split: scored on the training split
    assert "no labels to colour by" in _section(text, "latent")
    for sid, n in (("reconstructions", 2), ("interpolation", 1)):  # figures of feature profiles
        urls = Page(_section(text, sid)).images()
        assert len(urls) == n and all(_decode(url).size[0] >= 300 for url in urls), sid


def test_help(capsys):
    code, out, _ = run(capsys, "report", "--help")
    assert code == 0 and "--data" in out and "self-contained" in out


def test_bad_inputs_are_one_line_and_exit_2(work, tmp_path, capsys):
    model = work / "dense.aek"
    before = model.read_bytes()
    np.savez(tmp_path / "small.npz", x_train=np.zeros((20, 4, 4), np.float32))
    det = AnomalyDetector(epochs=1, n_estimators=1, refits=0, batch_size=64, random_state=0)
    det.fit(load("digits").x_train.reshape(-1, 64)[:200]).save(tmp_path / "det.aek")
    (tmp_path / "junk.aek").write_text("not a model")
    (tmp_path / "folder").mkdir()
    photo = Path(aekit.codec.__file__).parent / "weights" / "photo.aek"  # the built-in codec
    out = tmp_path / "r.html"
    cases = [
        (["report", tmp_path / "missing.aek", "-o", out], "missing.aek"),
        (["report", photo, "-o", out], "image codec"),
        (["report", tmp_path / "det.aek", "-o", out], "anomaly detector"),
        (["report", tmp_path / "junk.aek", "-o", out], "junk.aek"),
        (["report", model, "--data", tmp_path / "small.npz", "-o", out], "(4, 4)"),
        (["report", model, "-o", model], "overwrite"),
        (["report", model, "-o", tmp_path / "r.png"], ".html"),
        (["report", model, "-o", tmp_path / "folder"], "folder"),
    ]
    for argv, word in cases:
        code, _, err = run(capsys, *argv)
        assert_one_error(code, err, word)
    assert model.read_bytes() == before
    assert not out.exists()


def test_psnr_is_reported_for_unit_range_data(work):
    text, _ = _page(work, "dense")
    match = re.search(r"PSNR ([\d.]+) dB", _section(text, "summary"))
    mse = float(re.search(r"test MSE</th><td>([\d.e-]+)", text).group(1))
    assert match and float(match.group(1)) == pytest.approx(10 * math.log10(1 / mse), abs=0.02)


def test_latent_points_for_every_code_size():
    from aekit.reports.page import latent_points

    codes = np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32)
    points, method = latent_points(codes[:, :2])
    assert method == "code" and np.allclose(points, codes[:, :2])
    points, method = latent_points(codes)
    assert method == "pca" and points.shape == (50, 2)
    assert points[:, 0].var() >= points[:, 1].var()  # the first principal component leads
    points, method = latent_points(codes[:, :1])
    assert method == "jitter" and np.allclose(points[:, 0], codes[:, 0]) and np.abs(points[:, 1]).max() <= 0.5
