"""Screenshots of every dashboard panel for docs/dashboard/<panel>.png, taken in Debian's headless chromium.

    .venv/bin/python bench/dashboard_screenshots.py [--runs DIR] [--out docs/dashboard]

Without --runs it trains small models on the bundled digits into a temporary runs folder first (a few
minutes on two CPU cores): a dense autoencoder with a 2-D code, a denoising autoencoder with 16 code units,
a VAE with 8, and an AE-vs-PCA comparison over code sizes 2-32. Then it starts `aekit dashboard` over the
folder, acts on each panel as a person would (draws a digit, hovers and clicks latent points, compresses a
photo) and saves one PNG per panel, quantised to 256 colours so each stays well under 300 KB.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dashboard_page import (  # noqa: E402  tests/dashboard_page.py: the page helpers the browser test uses
    CHROMIUM,
    CHROMIUM_ARGS,
    draw,
    farthest_from_first,
    free_port,
    latent_xy,
)

MAX_BYTES = 300_000
# A "3" as one stroke over the game canvas, in fractions of its side.
THREE = [
    (0.3, 0.22),
    (0.55, 0.15),
    (0.72, 0.28),
    (0.55, 0.47),
    (0.42, 0.5),
    (0.58, 0.52),
    (0.74, 0.68),
    (0.6, 0.85),
    (0.3, 0.8),
]


def aekit(*argv: object) -> None:
    command = [sys.executable, "-m", "aekit", *map(str, argv)]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def train_runs(runs: Path) -> None:
    common = ["--data", "digits", "--runs", runs, "--quiet"]
    aekit(
        "train",
        "--kind",
        "dense",
        "--code-size",
        "2",
        "--epochs",
        "60",
        "--out",
        runs / "digits-2d.aek",
        *common,
    )
    aekit(
        "train",
        "--kind",
        "dense",
        "--code-size",
        "16",
        "--noise",
        "gaussian",
        "--noise-level",
        "0.3",
        "--epochs",
        "60",
        "--out",
        runs / "digits-denoise.aek",
        *common,
    )
    aekit(
        "train",
        "--kind",
        "vae",
        "--code-size",
        "8",
        "--epochs",
        "60",
        "--out",
        runs / "digits-vae.aek",
        *common,
    )
    aekit(
        "compare",
        "--data",
        "digits",
        "--kind",
        "dense",
        "--code-sizes",
        "2,4,8,16,32",
        "--epochs",
        "40",
        "--out",
        runs / "compare-digits",
        "--quiet",
    )


def serve(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aekit", "dashboard", "--runs", str(runs), "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"aekit dashboard exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2).close()
            return server, url
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"aekit dashboard did not answer at {url}")


def save_small(png: bytes, path: Path) -> None:
    """The screenshot with a 256-colour palette: UI pixels lose nothing visible and the file shrinks ~3x."""
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{path} would be {len(data)} bytes, over {MAX_BYTES}: use a smaller viewport")
    path.write_bytes(data)
    print(f"wrote {path} ({len(data) // 1024} KB)")


def photo_png(tmp: Path) -> Path:
    from skimage import data

    path = tmp / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS).save(path)
    return path


def shoot(url: str, out: Path, tmp: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#model-select option", state="attached")

        page.click("#tab-runs")
        page.click("#runs-list .run-item[data-run='digits-denoise']")
        page.wait_for_function("state.rows.length > 10")
        save_small(page.screenshot(full_page=True), out / "runs.png")

        page.select_option("#model-select", "digits-denoise")
        page.click("#tab-recon")
        page.wait_for_function("document.querySelectorAll('#recon-grid .recon-cell').length === 16")
        save_small(page.screenshot(full_page=True), out / "recon.png")

        page.select_option("#model-select", "digits-vae")
        page.click("#tab-latent")
        page.wait_for_function(
            "state.latent && document.querySelector('#latent-decoded').src.startsWith('data:')"
        )
        far = farthest_from_first(page)
        page.mouse.click(*latent_xy(page, 0))
        page.mouse.click(*latent_xy(page, far))
        page.wait_for_function("document.querySelectorAll('#latent-interp img').length >= 8")
        page.mouse.move(*latent_xy(page, 5))
        page.wait_for_function("document.querySelector('#latent-tooltip img').naturalWidth > 0")
        save_small(page.screenshot(full_page=True), out / "latent.png")

        page.click("#tab-bottleneck")
        page.wait_for_selector(".size-col.just-right")
        save_small(page.screenshot(full_page=True), out / "bottleneck.png")

        page.select_option("#model-select", "digits-denoise")
        page.click("#tab-game")
        page.check("#game-noise-on")
        draw(page, THREE)
        page.wait_for_function("document.querySelector('#game-denoised').src.startsWith('data:')")
        page.wait_for_timeout(500)
        save_small(page.screenshot(full_page=True), out / "game.png")

        page.click("#tab-apply")
        page.select_option("#apply-task", "compress")
        page.select_option("#apply-model", "photo")
        page.set_input_files("#apply-file", str(photo_png(tmp)))
        page.click("#apply-run")
        page.wait_for_selector("#apply-result .result-card:nth-child(3) img")
        page.wait_for_function("[...document.querySelectorAll('#apply-result img')].every((i) => i.complete)")
        save_small(page.screenshot(full_page=True), out / "apply.png")
        browser.close()
        if errors:
            raise SystemExit("the page logged errors:\n" + "\n".join(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="an existing runs folder (default: train a fresh one)")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs
        if runs is None:
            runs = Path(tmp) / "runs"
            train_runs(runs)
        server, url = serve(runs)
        try:
            shoot(url, args.out, Path(tmp))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
