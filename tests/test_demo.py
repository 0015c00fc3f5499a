"""``aekit demo`` end to end in quick mode (one run shared by the tests), and the report pieces alone."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aekit.reports import pieces
from aekit.reports.demo import FILES, MODELS, run_demo

PNGS = [name for name in FILES if name.endswith(".png")]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The report folder, the figures, and what the demo printed to a stdout that is not a terminal."""
    import contextlib
    import io

    import torch

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        figures = run_demo(out, quick=True)
    assert torch.get_num_threads() == threads  # the demo's single-thread setting is undone
    return out, figures, printed.getvalue()


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run[:2]


def test_writes_every_file(demo):
    out, figures = demo
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary files left behind
    assert figures["report"] == str(out / "index.html")


@pytest.mark.parametrize("name", PNGS)
def test_pngs_open_with_plausible_sizes(demo, name):
    out, _ = demo
    with Image.open(out / name) as image:
        assert image.format == "PNG"
        width, height = image.size
        image.load()
    assert 200 <= width <= 3000 and 100 <= height <= 3000, (name, image.size)
    assert np.asarray(image.convert("L")).std() > 5, f"{name} is blank"


def test_summary_json_has_every_model_with_finite_figures(demo):
    out, figures = demo
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["models"]) == [name for name, _, _ in MODELS]
    for name, m in summary["models"].items():
        assert math.isfinite(m["test_mse"]) and m["test_mse"] > 0, name
        assert m["test_psnr"] == pytest.approx(10 * math.log10(1 / m["test_mse"])), name
        assert m["parameters"] > 0 and m["epochs"] >= 1 and m["train_seconds"] > 0, name
        assert m["pca_mse"] == pytest.approx(
            summary["ae_vs_pca"]["pca_mse"][summary["ae_vs_pca"]["code_sizes"].index(m["code_size"])]
        )
    # summary.json holds exactly the returned figures (the report path aside)
    assert summary == json.loads(json.dumps({k: v for k, v in figures.items() if k != "report"}))


def test_index_links_every_image_offline(demo):
    out, _ = demo
    page = (out / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(PNGS)
    assert all((out / src).is_file() for src in sources)
    assert "<script" not in page and "http" not in page  # no JavaScript, nothing fetched from the web
    for name, _, _ in MODELS:
        assert f"<td>{name}</td>" in page


def test_report_page_is_one_self_contained_file(demo):
    out, _ = demo
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="samples"' in page and "aekit report: vae" in page  # aekit report's page on the VAE
    targets = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(targets) > 10
    assert all(t.startswith(("data:image/png;base64,", "#")) for t in targets), targets
    assert "<script" not in page and "http" not in page


def test_without_a_terminal_it_prints_a_line_per_step(demo_run):
    """A log or a pipe gets no spinner: a line per model, so ~40 s of training is not silent."""
    _, _, printed = demo_run
    lines = printed.splitlines()
    for _, label, _ in MODELS:
        if label != "dense autoencoder":  # the curve's dense model at the demo's code size is that one
            assert f"Training a {label}..." in lines, printed
    assert "Training a dense autoencoder with code size 8..." in lines
    assert lines.index("Writing the report...") < next(i for i, x in enumerate(lines) if "aekit demo:" in x)


def test_pca_error_is_the_same_figure_on_both_pages(demo):
    """index.html and report.html show PCA's error at the VAE's code size as one number, measured one way
    (clipped to the data's range, as 'aekit eval' does) and written with the same digits."""
    out, figures = demo
    index = (out / "index.html").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    row = re.search(r"<td>vae</td>(.*?)</tr>", index).group(1)
    shown_index = re.findall(r"<td class=num>([^<]+)</td>", row)[-1]  # the PCA MSE column
    k = figures["models"]["vae"]["code_size"]
    shown_report = dict(re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", page))[str(k)]
    assert shown_index == shown_report == f"{figures['models']['vae']['pca_mse']:.4g}"


def test_loss_panels_say_what_each_loss_is():
    from types import SimpleNamespace

    def fitted(loss, history, variational=False):
        model = SimpleNamespace(
            config=SimpleNamespace(loss=loss), **({"posterior": None} if variational else {})
        )
        return SimpleNamespace(model_=model, history_=history)

    plain = [{"epoch": 1, "recon": 0.1, "loss": 0.1, "val_recon": 0.1, "val_loss": 0.1, "lr": 1e-3}]
    sparse = [{"epoch": 1, "recon": 0.1, "sparsity": 0.01, "loss": 0.11, "seconds": 1.0}]
    assert pieces.loss_label(fitted("mse", plain)) == "MSE"
    assert pieces.loss_label(fitted("bce", sparse)) == "BCE + sparsity"
    assert pieces.loss_label(fitted("bce", plain, variational=True)) == "negative ELBO per value"


def test_models_learn_something(demo):
    """Even a few epochs must beat predicting the mean training image, and PCA's error must fall with size."""
    _, figures = demo
    baseline = figures["mean_image_mse"]
    curve = figures["ae_vs_pca"]
    assert curve["autoencoder_mse"][-1] < 0.8 * baseline, (curve, baseline)
    for name in ("dense", "sparse", "denoising"):
        assert figures["models"][name]["test_mse"] < baseline, (name, figures["models"][name], baseline)
    assert all(a > b for a, b in zip(curve["pca_mse"], curve["pca_mse"][1:], strict=False)), curve
    assert 0 < figures["denoising"]["noisy_input_mse"] < 0.2**2  # clipping to [0, 1] removes some noise


def test_importing_demo_loads_neither_torch_nor_matplotlib():
    modules = "aekit.reports.demo, aekit.reports.pieces, aekit.report"
    code = f"import sys, {modules}; print(sorted({{'torch', 'matplotlib'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_report_pieces_stand_alone(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((6, 5, 7)).astype(np.float32)
    pieces.image_rows(tmp_path / "rows.png", [("a", images), ("b <&>", images[:3])])
    pieces.image_grid(tmp_path / "grid.png", (images * 255).astype(np.uint8)[..., None], n_cols=4)
    pieces.loss_curves(
        tmp_path / "loss.png", {"m": [{"epoch": 1, "loss": -0.5}, {"epoch": 2, "loss": -0.7}]}, {"m": "NLL"}
    )
    for name in ("rows.png", "grid.png", "loss.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
    pieces.write_json(tmp_path / "s.json", {"x": np.float32(1.5), "inf": math.inf, "a": np.arange(2)})
    assert json.loads((tmp_path / "s.json").read_text()) == {"x": 1.5, "inf": None, "a": [0, 1]}
    pieces.write_index(tmp_path / "i.html", "t<", ["h"], [["<b>"]], images=[("x y.png", 'cap"')])
    page = (tmp_path / "i.html").read_text()
    assert "&lt;b&gt;" in page and "<b>" not in page and 'src="x y.png"' in page
    assert pieces.psnr(0.01) == pytest.approx(20.0) and pieces.psnr(0.0) == math.inf


@pytest.mark.parametrize(
    ("old", "new"), [("aekit.report", "aekit.reports.pieces"), ("aekit.compare", "aekit.reports.compare")]
)
def test_old_module_names_still_import(old, new):
    """Code written before aekit.reports still imports every public name, and gets the same objects."""
    import ast
    import importlib
    from pathlib import Path

    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    public = set()
    for node in ast.parse(Path(new_module.__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            public.add(node.name)
        elif isinstance(node, ast.Assign):
            public |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    public = {name for name in public if not name.startswith("_")}
    assert set(old_module.__all__) == public
    assert all(getattr(old_module, name) is getattr(new_module, name) for name in public)
