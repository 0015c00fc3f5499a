"""The dashboard end to end in a real browser: Debian's chromium driven by Playwright over `aekit dashboard`.

One server per module over a temporary runs folder holding a tiny dense autoencoder (2-D code), the run of a
tiny VAE whose model file `--out` wrote outside the folder (as the README's steps do), a tiny denoiser and a
tiny `aekit compare` result; each test opens the page, acts as a person would and fails on any console error
or uncaught exception in the page.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.cli.main import main
from dashboard_page import CHROMIUM, CHROMIUM_ARGS, draw, farthest_from_first, free_port, latent_xy

PANELS = ("runs", "recon", "latent", "bottleneck", "game", "apply")
WAIT_MS = 30_000  # generous: the machine running the tests may be busy


def aekit(*argv: object) -> None:
    """`aekit ARGV` in-process (no second torch import), which must succeed."""
    assert main([str(a) for a in argv]) == 0, argv


def train_tiny_runs(runs: Path, elsewhere: Path) -> None:
    """A dense AE with a 2-D code, a VAE with 4 code dimensions (its model file in ``elsewhere``), a denoiser
    and an AE-vs-PCA comparison."""
    tiny = ["--data", "digits", "--epochs", "2", "--runs", runs, "--quiet"]
    aekit("train", "--kind", "dense", "--code-size", "2", "--hidden", "16", "--out", runs / "m.aek", *tiny)
    aekit("train", "--kind", "vae", "--code-size", "4", "--hidden", "16", "--out", elsewhere / "v.aek", *tiny)
    denoise = ["--task", "denoise", "--crop", "8", "--width", "4", "--out", runs / "dn.aek"]
    aekit("train", *denoise, *tiny, "--epochs", "1")
    # a detector for the Anomalies panel; "z-" sorts it after m, the model picker's default
    detector = ["--task", "detect", "--refits", "0", "--hidden", "8", "--out", runs / "z-det.aek"]
    aekit("train", *detector, *tiny, "--epochs", "1")
    compare = ["--kind", "dense", "--code-sizes", "2,8,32", "--epochs", "1", "--max-train", "300"]
    aekit("compare", "--data", "digits", *compare, "--out", runs / "compare-digits", "--quiet")


def start_server(runs: Path, port: int, log: Path) -> subprocess.Popen:
    """`aekit dashboard` as a user starts it; its output goes to a file (a pipe nobody reads would fill up
    with access-log lines and stall the server)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "aekit", "dashboard", "--runs", str(runs), "--port", str(port)]
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(server: subprocess.Popen, url: str, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"aekit dashboard exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"aekit dashboard did not answer at {url} within {seconds} s")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """URL of a running `aekit dashboard` over a runs folder with tiny trained models."""
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("AEKIT_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    runs = tmp_path_factory.mktemp("runs")
    train_tiny_runs(runs, tmp_path_factory.mktemp("elsewhere"))
    port = free_port()
    log = tmp_path_factory.mktemp("dashboard-log") / "dashboard.log"
    server = start_server(runs, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, url, log)
        yield url, runs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard's browser test needs Debian's chromium. "
            "Install it with `apt-get install chromium` (bash scripts/setup.sh test does this)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class Console:
    """Every console error and uncaught exception of a page, so a test can demand there are none."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))


@pytest.fixture
def page(browser, dashboard):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.console = Console(page)
    page.goto(dashboard[0])
    page.wait_for_selector("#model-select option[value='m']", state="attached")
    yield page
    context.close()


def open_panel(page, name: str) -> None:
    page.click(f"#tab-{name}")
    assert page.is_visible(f"#panel-{name}")
    for other in PANELS:
        if other != name:
            assert page.is_hidden(f"#panel-{other}"), f"panel {other} still shows after opening {name}"


def pick_model(page, name: str) -> None:
    page.select_option("#model-select", name)


def image_src(page, selector: str) -> str:
    return page.get_attribute(selector, "src") or ""


def decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,"), url[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def painted_pixels(page, selector: str) -> int:
    """How many pixels of a canvas hold anything: a chart that drew nothing has none."""
    return page.evaluate(
        """(sel) => {
            const c = document.querySelector(sel);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n;
        }""",
        selector,
    )


def broken_images(page, panel: str) -> list[str]:
    """The images a person sees in a panel that show no picture (no src yet, or one that failed to load):
    Chromium draws those as broken-image icons."""
    return page.evaluate(
        """(panel) => Array.from(document.querySelectorAll(`#panel-${panel} img`))
            .filter((img) => img.getClientRects().length > 0 && getComputedStyle(img).visibility !== 'hidden')
            .filter((img) => !(img.complete && img.naturalWidth > 0))
            .map((img) => img.id || img.alt)""",
        panel,
    )


def test_game_reconstructs_the_drawing_and_follows_new_strokes(page):
    open_panel(page, "game")
    pick_model(page, "m")
    assert not image_src(page, "#game-output")
    assert broken_images(page, "game") == []  # nothing drawn yet: no broken-image icons either

    draw(page, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])  # a 7
    page.wait_for_function("document.querySelector('#game-output').src.startsWith('data:image/png')")
    page.wait_for_function("document.querySelector('#game-error').textContent !== '-'")
    first = image_src(page, "#game-output")
    model_input = decode_data_url(image_src(page, "#game-input"))
    assert model_input.shape[:2] == (8, 8), model_input.shape  # the drawing, resized to the digits' 8x8
    assert model_input.max() > model_input.min(), "the model saw a blank image, not the stroke"
    assert float(page.text_content("#game-error")) >= 0
    assert page.text_content("#game-anomaly") != "-"
    assert painted_pixels(page, "#game-code") > 0, "the code bar chart is empty"
    page.wait_for_selector("#game-typicality", state="visible")  # the drawing's typicality, or a warning
    assert "training data" in page.text_content("#game-typicality")

    draw(page, [(0.15, 0.5), (0.85, 0.5)])  # a bar across: a new drawing, so a new reconstruction
    page.wait_for_function(f"document.querySelector('#game-output').src !== {first!r}")
    assert not np.array_equal(decode_data_url(first), decode_data_url(image_src(page, "#game-output")))

    # noise mode: the noisy input and the denoised result appear
    page.check("#game-noise-on")
    page.wait_for_selector("#game-noise-row", state="visible")
    page.wait_for_function("document.querySelector('#game-denoised').src.startsWith('data:image/png')")
    assert image_src(page, "#game-noisy").startswith("data:image/png")

    # an uploaded image (dark digit on white, as scanned) goes through the model too
    page.uncheck("#game-noise-on")
    shown = image_src(page, "#game-input")
    digit = np.full((32, 32), 255, np.uint8)
    digit[6:26, 14:18] = 0  # a dark "1"
    out = io.BytesIO()
    Image.fromarray(digit).save(out, format="PNG")
    page.set_input_files(
        "#game-upload", {"name": "one.png", "mimeType": "image/png", "buffer": out.getvalue()}
    )
    page.wait_for_function(f"document.querySelector('#game-input').src !== {shown!r}")
    seen = decode_data_url(image_src(page, "#game-input")).astype(float)
    assert seen[:, 3:5].mean() > seen[:, :2].mean(), (
        "the dark-on-light upload was not turned into light-on-dark"
    )

    assert broken_images(page, "game") == []
    page.click("#game-clear")
    assert page.console.errors == []


def test_every_panel_shows_its_content_without_console_errors(page):
    open_panel(page, "runs")
    page.wait_for_selector("#runs-list .run-item[data-run='m']")
    page.wait_for_selector("#runs-list .run-item[data-run='v']")
    page.wait_for_function("document.querySelector('#run-config').children.length > 0")
    page.wait_for_function("document.querySelector('#run-title').textContent.startsWith('Loss: ')")
    page.click("#runs-list .run-item[data-run='m']")
    page.wait_for_function(
        """() => { const c = document.querySelector('#loss-chart');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n > 2000; }"""
    )
    # each run says what it trained and for how long; finished runs are not live
    m = page.text_content("#runs-list .run-item[data-run='m']")
    assert "dense autoencoder · code 2 · digits" in m and "2 epochs" in m and "live" not in m, m
    v = page.text_content("#runs-list .run-item[data-run='v']")
    assert "vae autoencoder · code 4" in v and "2 epochs" in v, v
    dn = page.text_content("#runs-list .run-item[data-run='dn']")
    assert "denoiser · digits" in dn and "1 epoch" in dn and "code" not in dn and "dense" not in dn, dn

    pick_model(page, "m")
    open_panel(page, "recon")
    page.wait_for_function("document.querySelectorAll('#recon-grid .recon-cell').length === 16")
    assert "error" in page.text_content("#recon-grid .recon-cell")
    assert "typicality" in page.text_content("#recon-grid .recon-cell")  # each example's percentile
    assert "training data" in page.text_content("#recon-mean")
    assert page.locator("#recon-grid img").count() == 32

    open_panel(page, "latent")
    page.wait_for_function("document.querySelector('#latent-method').textContent !== '-'")
    assert painted_pixels(page, "#latent-plot") > 500
    assert page.locator("#latent-legend span").count() == 10  # digits 0-9

    open_panel(page, "bottleneck")
    page.wait_for_selector("#bottleneck-chart svg polyline")
    assert page.locator("#bottleneck-chart svg polyline").count() == 2  # autoencoder and PCA
    assert page.locator(".size-col.just-right").count() == 1
    assert page.locator(".size-col[data-size]").count() == 3
    assert page.locator(".size-col img").count() > 0

    open_panel(page, "game")
    assert page.is_visible("#game-canvas")

    open_panel(page, "apply")
    assert page.is_visible("#apply-file")
    page.select_option("#apply-task", "compress")
    assert "photo" in [o.get_attribute("value") for o in page.locator("#apply-model option").all()]
    assert page.is_visible("#apply-quality")

    assert page.console.errors == []


def test_latent_hover_shows_the_item_and_two_clicks_interpolate(page):
    pick_model(page, "m")
    open_panel(page, "latent")
    page.wait_for_function("state.latent && state.latent.points.length > 0")
    assert page.evaluate("state.latent.method") == "code"  # a 2-D code is drawn as it is

    page.mouse.move(*latent_xy(page, 0))
    page.wait_for_selector("#latent-tooltip", state="visible")
    page.wait_for_function("document.querySelector('#latent-tooltip img').naturalWidth > 0")

    far = farthest_from_first(page)
    page.mouse.click(*latent_xy(page, 0))
    page.mouse.click(*latent_xy(page, far))
    page.wait_for_function("document.querySelectorAll('#latent-interp img').length >= 8")
    linear = [img.get_attribute("src") for img in page.locator("#latent-interp img").all()]
    page.check("input[name='interp-method'][value='spherical']")
    page.wait_for_function(f"document.querySelector('#latent-interp img:nth-child(4)').src !== {linear[3]!r}")
    assert page.console.errors == []


def test_vae_sliders_decode_live(page):
    pick_model(page, "v")
    open_panel(page, "latent")
    page.wait_for_function("document.querySelectorAll('#latent-sliders input[type=range]').length === 4")
    page.wait_for_function("document.querySelector('#latent-decoded').src.startsWith('data:image/png')")
    before = image_src(page, "#latent-decoded")
    for d in range(4):
        page.evaluate(
            f"""() => {{ const s = document.querySelectorAll('#latent-sliders input[type=range]')[{d}];
                        s.value = s.max; s.dispatchEvent(new Event('input')); }}"""
        )
    page.wait_for_function(f"document.querySelector('#latent-decoded').src !== {before!r}")
    assert page.console.errors == []


def png_bytes(size: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    img = np.stack([xx * 255 // size, yy * 255 // size, (xx + yy) * 127 // size], -1).astype(np.uint8)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG")
    return out.getvalue()


def test_applications_compress_compares_with_jpeg_and_webp(page):
    open_panel(page, "apply")
    page.select_option("#apply-task", "compress")
    page.select_option("#apply-model", "photo")
    page.set_input_files(
        "#apply-file", {"name": "gradient.png", "mimeType": "image/png", "buffer": png_bytes()}
    )
    page.click("#apply-run")
    page.wait_for_selector("#apply-result .result-card:nth-child(3)")
    text = page.text_content("#apply-result")
    for word in ("aekit codec", "JPEG", "WebP", "bytes", "PSNR", "Typicality"):
        assert word in text, text
    assert page.is_hidden("#apply-error")
    assert page.console.errors == []


def test_applications_restore_shows_the_input_and_the_restored_image(page):
    open_panel(page, "apply")
    page.select_option("#apply-task", "restore")
    page.select_option("#apply-model", "dn")
    assert page.is_hidden("#apply-quality")  # quality is a codec setting
    upload = {"name": "noisy.png", "mimeType": "image/png", "buffer": png_bytes(40)}
    page.set_input_files("#apply-file", upload)
    page.click("#apply-run")
    page.wait_for_selector("#apply-result .result-card.ours img")
    assert "40 × 40" in page.text_content("#apply-result")
    restored = decode_data_url(page.get_attribute("#apply-result .result-card.ours img", "src"))
    assert restored.shape[:2] == (40, 40)
    assert page.console.errors == []


def test_anomalies_panel_shows_a_detectors_heatmaps(page):
    pick_model(page, "z-det")
    open_panel(page, "anomalies")
    page.wait_for_selector("#anomalies-grid .anomaly-cell img")
    assert "examples flagged" in page.text_content("#anomalies-summary")
    assert page.locator("#anomalies-grid .anomaly-cell").first.locator("img").count() == 3
    assert broken_images(page, "anomalies") == []
    pick_model(page, "m")  # an autoencoder: the panel says to pick a detector
    page.wait_for_selector("#anomalies-error", state="visible")
    assert "--task detect" in page.text_content("#anomalies-error")
    assert all("status of 400" in e for e in page.console.errors), page.console.errors


def test_api_errors_show_their_detail_in_the_page(page):
    open_panel(page, "apply")
    page.select_option("#apply-task", "compress")
    page.select_option("#apply-model", "photo")
    page.set_input_files(
        "#apply-file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}
    )
    page.click("#apply-run")
    page.wait_for_selector("#apply-error", state="visible")
    message = page.text_content("#apply-error")
    assert "HTTP 400" in message and len(message) > 20, message
    # the browser logs the failed request itself; nothing else may go wrong
    assert all("status of 400" in e for e in page.console.errors), page.console.errors


def test_loss_chart_grows_while_training_writes_metrics(page, dashboard):
    """The Runs panel polls metrics.jsonl every 2 s: a new epoch line shows up without a reload."""
    metrics = dashboard[1] / "m" / "metrics.jsonl"
    open_panel(page, "runs")
    page.click("#runs-list .run-item[data-run='m']")
    rows = len(metrics.read_text().splitlines())
    page.wait_for_function(f"state.run === 'm' && state.rows.length === {rows}")
    before = painted_pixels(page, "#loss-chart")
    with metrics.open("a") as f:  # what the trainer does after each epoch
        f.write(json.dumps({"epoch": rows + 1, "loss": 0.5, "val_loss": 0.6, "seconds": 0.01}) + "\n")
    page.wait_for_function(f"state.rows.length === {rows + 1}", timeout=10_000)
    assert painted_pixels(page, "#loss-chart") != before  # the new point is drawn
    assert "0.6" in page.evaluate("JSON.stringify(state.rows.at(-1))")
    assert page.console.errors == []
