"""The built-in restoration models against what people use instead, on images no model was trained on.

    PYTHONPATH=src .venv/bin/python bench/restore_builtin.py                  # every task, both sets
    PYTHONPATH=src .venv/bin/python bench/restore_builtin.py --tasks denoise --sets kodak --minutes 60

Test sets: Kodak24 (``kodak24.npz``) and B100 (``bsds500/val``, the 100 images of BSD100); neither was
trained on nor used for any choice. Every baseline runs in this script; results are kept per image in a
cache (bench/results/restore_builtin_cache.json) so a run stopped by --minutes goes on where it was: CBM3D
alone takes about a minute per Kodak image on this CPU. The built-ins' entries are keyed by the model
file's digest, so new weights are measured anew. The report counts which cells are complete.

- denoise: Gaussian noise of sigma 15 / 25 / 50 (0-255 scale), added in float as the papers do ("float":
  the noisy image is not clipped or rounded) and as a saved 8-bit photo has it ("uint8": clipped, rounded).
  Ours is blind (the level estimated from the image) and, beside it, told the level; CBM3D (PyPI ``bm3d``,
  installed for the benchmark only) is told the true sigma, as are scikit-image's non-local means and
  wavelet (BayesShrink) denoisers. RGB PSNR of the 8-bit result. "s0": the clean photo through the blind
  model (its PSNR against the photo: how little a clean image is changed).
- upscale: x2 and x4, the clean image cropped to a multiple of the scale and shrunk by antialiased bicubic
  (torch's, Pillow's kernel), rounded to 8 bits; Y-channel PSNR (ITU-R BT.601, 16-235) with ``scale``
  border pixels cropped, the field's convention. Bicubic and Lanczos (Pillow) beside ours.
- inpaint: Kodak, a fixed random mask per image (strokes and boxes covering 10-30%, drawn per 128-pixel
  cell with the training's mask generator); PSNR on the masked pixels only. scikit-image's
  ``inpaint_biharmonic`` beside ours.
- colorize: Kodak, the 8-bit luminance in; PSNR of ours and of the gray image against the colour original,
  and colourfulness (Hasler & Suesstrunk 2003) as a share of the original's.
- speed: seconds per Kodak image for ours and for CBM3D, timed in this run on the same images.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from machine import git_version, machine, save_results  # bench/machine.py: the script's folder is on sys.path
from PIL import Image

from aekit.atomic import atomic_path, write_text_atomic
from aekit.restore import ImageRestorer
from aekit.restore.builtin import RESTORERS
from aekit.restore.restorer import run_tiled
from aekit.restore.tasks import MASKS, TASKS, Observed, quantize

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
CACHE = RESULTS / "restore_builtin_cache.json"
SIGMAS = (25, 15, 50, 0)  # 25 first: the figure most papers report, so a short run has it whole; 0: clean
VARIANTS = ("float", "uint8")
SCALES = (2, 4)
INPAINT_CELL = 128  # the side of the crops the inpainter trained on
PUBLISHED = {  # for the report's context only; measured baselines are the ones compared
    "denoise kodak float": {"CBM3D (FFDNet paper)": (34.28, 31.68, 28.46), "FFDNet": (34.63, 32.13, 28.98)},
    "upscale b100": {
        "bicubic": (29.56, None, 25.96),
        "SRCNN": (31.36, None, 26.90),
        "EDSR": (32.32, None, 27.71),
    },
}


# -- data ----------------------------------------------------------------------------------------------------


def load_set(name: str, limit: int | None) -> dict[str, np.ndarray]:
    data = Path(os.environ["AEKIT_DATA_DIR"])
    if name == "kodak":
        with np.load(data / "kodak24.npz", allow_pickle=False) as f:
            images = {k: f[k] for k in sorted(f.files)}
    else:
        paths = sorted((data / "bsds500" / "val").glob("*.jpg"))
        images = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in paths}
    names = sorted(images)[:limit]
    return {k: images[k] for k in names}


def seed_of(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255  # (1, 3, H, W)


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    a = x[0].permute(1, 2, 0).numpy() if isinstance(x, torch.Tensor) else x
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d[mask].mean() if mask is not None else d.mean()
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def y_psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """PSNR of the BT.601 luma (16-235), ``border`` pixels cropped: how super-resolution papers score."""

    def y(im: np.ndarray) -> np.ndarray:
        im = im.astype(np.float64) / 255
        return 16 + 65.481 * im[..., 0] + 128.553 * im[..., 1] + 24.966 * im[..., 2]

    ya, yb = y(a)[border:-border, border:-border], y(b)[border:-border, border:-border]
    return 10 * math.log10(255**2 / max(np.mean((ya - yb) ** 2), 1e-12))


def colourfulness(img: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003): std and mean of the opponent channels rg and yb."""
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# -- the methods ---------------------------------------------------------------------------------------------


class Ours:
    """The built-in models, run as ImageRestorer.restore runs them (float inputs may leave [0, 1] here)."""

    def __init__(self) -> None:
        self.models: dict[str, ImageRestorer] = {}
        self.digests: dict[str, str] = {}

    def get(self, name: str) -> ImageRestorer:
        if name not in self.models:
            path = RESTORERS.path(name)
            self.models[name] = ImageRestorer.load(path, device="cpu")
            self.digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return self.models[name]

    def tag(self, name: str) -> str:
        self.get(name)
        return f"ours@{self.digests[name]}"

    @torch.no_grad()
    def run(self, name: str, obs: Observed) -> torch.Tensor:
        r = self.get(name)
        x = r.task_.prepare(obs, r.settings_)
        return run_tiled(r.model_, x, 512).clamp(0, 1)


def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return bm3d.bm3d_rgb(noisy, sigma)


def nl_means(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1
    )


def wavelet(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(
        noisy,
        sigma=sigma,
        channel_axis=-1,
        convert2ycbcr=True,
        method="BayesShrink",
        mode="soft",
        rescale_sigma=True,
    )


def lanczos(small: np.ndarray, scale: int) -> np.ndarray:
    im = Image.fromarray(small)
    return np.asarray(im.resize((im.width * scale, im.height * scale), Image.LANCZOS))


def biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    return inpaint_biharmonic(image.astype(np.float64) / 255, mask, channel_axis=-1)


# -- the cache -----------------------------------------------------------------------------------------------


class Cache:
    """Per-image results by key, written back after each new one, so a stopped run loses at most one."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.path, self.deadline = path, deadline
        self.data: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}
        self.skipped = 0
        self.baselines_only = False
        self.later: set[str] = set()  # methods left for a second pass (the slow CBM3D)

    def score(self, key: str, method: Callable[[], Any], metrics: Callable[[Any], dict]) -> dict | None:
        """``metrics(method())`` with the method's seconds, from the cache when it holds ``key``; None
        once the deadline has passed (the cell is counted as skipped)."""
        if key in self.data:
            return self.data[key]
        if (self.baselines_only and "/ours@" in key) or key.rsplit("/", 1)[-1] in self.later:
            return None
        if time.time() > self.deadline:
            self.skipped += 1
            return None
        out, seconds = timed(method)
        entry = {**metrics(out), "seconds": seconds}
        # Merged with what is on disk: a --baselines-only run may be filling the same file meanwhile.
        on_disk = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.data = {**on_disk, **self.data, key: entry}
        write_text_atomic(self.path, json.dumps(self.data, indent=0, sort_keys=True))
        return entry


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - started, 3)


# -- the tasks -----------------------------------------------------------------------------------------------


def rgb_psnr(out, clean: np.ndarray) -> dict:
    return {"psnr": round(psnr(to_uint8(out), clean), 3)}


def denoise(cache: Cache, ours: Ours, sets: dict[str, dict[str, np.ndarray]], rows: list) -> None:
    tag = ours.tag("denoise")
    for set_name, images in sets.items():
        for sigma in SIGMAS:
            for variant in VARIANTS:
                cond = f"s{sigma} {variant}"
                for name, img in images.items():
                    clean = img.astype(np.float32) / 255
                    rng = np.random.default_rng(seed_of("denoise", set_name, name, sigma))
                    noisy = clean + rng.normal(0, sigma / 255, clean.shape).astype(np.float32)
                    if variant == "uint8":
                        noisy = np.round(np.clip(noisy, 0, 1) * 255).astype(np.float32) / 255
                    x = to_tensor(noisy * 255)
                    level = torch.tensor([sigma / 255])
                    if sigma == 0 and variant == "float":
                        continue  # a clean photo is the same either way
                    methods = {
                        "ours (blind)": (f"{tag}/blind", partial(ours.run, "denoise", Observed(x))),
                        "ours (told sigma)": (
                            f"{tag}/told",
                            partial(ours.run, "denoise", Observed(x, sigma=level)),
                        ),
                        "cbm3d": ("cbm3d", partial(cbm3d, noisy, sigma / 255)),
                        "nl_means": ("nl_means", partial(nl_means, noisy, sigma / 255)),
                        "wavelet": ("wavelet", partial(wavelet, noisy, sigma / 255)),
                    }
                    if sigma == 0:  # does the blind model leave a clean photo alone?
                        methods = {k: v for k, v in methods.items() if k == "ours (blind)"}
                    base = f"denoise/{set_name}/{name}/s{sigma}/{variant}"
                    for label, (key, method) in methods.items():
                        entry = cache.score(f"{base}/{key}", method, partial(rgb_psnr, clean=img))
                        rows.append(("denoise", set_name, cond, name, label, entry))
                    if sigma:
                        rows.append(("denoise", set_name, cond, name, "noisy input", rgb_psnr(noisy, img)))


def y_scores(out, hr: np.ndarray, scale: int) -> dict:
    image = out if isinstance(out, np.ndarray) and out.dtype == np.uint8 else to_uint8(out)
    return {"psnr_y": round(y_psnr(image, hr, scale), 3)}


def upscale(cache: Cache, ours: Ours, sets: dict[str, dict[str, np.ndarray]], rows: list) -> None:
    for set_name, images in sets.items():
        for scale in SCALES:
            model = f"upscale-x{scale}"
            settings = ours.get(model).settings_
            for name, img in images.items():
                h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
                hr = img[:h, :w]
                shrunk = F.interpolate(
                    to_tensor(hr), size=(h // scale, w // scale), mode="bicubic", antialias=True
                )
                small_t = quantize(shrunk)  # (1, 3, h / scale, w / scale)
                methods = {
                    ours.tag(model): partial(ours.run, model, Observed(small_t)),
                    "bicubic": partial(TASKS["upscale"].prepare, Observed(small_t), settings),
                    "lanczos": partial(lanczos, to_uint8(small_t), scale),  # uint8 out
                }
                for key, method in methods.items():
                    entry = cache.score(
                        f"upscale/{set_name}/{name}/x{scale}/{key}",
                        method,
                        partial(y_scores, hr=hr, scale=scale),
                    )
                    rows.append(("upscale", set_name, f"x{scale}", name, key.split("@")[0], entry))


def inpaint_mask(name: str, h: int, w: int) -> np.ndarray:
    """A fixed random mask covering 10-30% of the image: the image cut into 128-pixel cells, each with its own
    strokes or boxes from the training's mask generator (``tasks.mixed_mask``), so holes have the sizes of
    scratches and blotches rather than of a quarter of the photo."""
    gen = torch.Generator().manual_seed(seed_of("inpaint", name))
    cells_y, cells_x = -(-h // INPAINT_CELL), -(-w // INPAINT_CELL)
    while True:
        cells = MASKS["mixed"](cells_y * cells_x, INPAINT_CELL, INPAINT_CELL, gen, "cpu")[:, 0] > 0
        grid = cells.view(cells_y, cells_x, INPAINT_CELL, INPAINT_CELL).permute(0, 2, 1, 3)
        m = grid.reshape(cells_y * INPAINT_CELL, cells_x * INPAINT_CELL)[:h, :w].numpy()
        if 0.10 <= m.mean() <= 0.30:
            return m


def masked_scores(out, clean: np.ndarray, mask: np.ndarray) -> dict:
    return {
        "psnr_masked": round(psnr(to_uint8(out), clean, mask), 3),
        "coverage": round(float(mask.mean()), 4),
    }


def inpaint(cache: Cache, ours: Ours, sets: dict[str, dict[str, np.ndarray]], rows: list) -> None:
    for name, img in sets["kodak"].items():
        mask = inpaint_mask(name, *img.shape[:2])
        holed = img.copy()
        holed[mask] = 0
        m_t = torch.from_numpy(mask.astype(np.float32))[None, None]  # (1, 1, H, W)
        methods = {
            ours.tag("inpaint"): partial(ours.run, "inpaint", Observed(to_tensor(holed), m_t)),
            "biharmonic": partial(biharmonic, holed, mask),
        }
        for key, method in methods.items():
            entry = cache.score(
                f"inpaint/kodak/{name}/{key}", method, partial(masked_scores, clean=img, mask=mask)
            )
            rows.append(("inpaint", "kodak", "10-30%", name, key.split("@")[0], entry))


def colour_scores(out, clean: np.ndarray) -> dict:
    out = to_uint8(out)
    return {
        "psnr": round(psnr(out, clean), 3),
        "colourfulness": round(colourfulness(out) / colourfulness(clean), 3),
    }


def colorize(cache: Cache, ours: Ours, sets: dict[str, dict[str, np.ndarray]], rows: list) -> None:
    settings = ours.get("colorize").settings_
    for name, img in sets["kodak"].items():
        gray_t = TASKS["colorize"].observe(to_tensor(img), settings, None).image  # (1, 1, H, W), 8-bit luma
        methods = {
            ours.tag("colorize"): partial(ours.run, "colorize", Observed(gray_t)),
            "gray input": partial(gray_t.expand, -1, 3, -1, -1),
        }
        for key, method in methods.items():
            entry = cache.score(f"colorize/kodak/{name}/{key}", method, partial(colour_scores, clean=img))
            rows.append(("colorize", "kodak", "", name, key.split("@")[0], entry))


def speed(ours: Ours, images: dict[str, np.ndarray]) -> dict:
    """Seconds per image, ours (blind) and CBM3D, sigma 25, measured here, one after the other."""
    out: dict[str, list[float]] = {"ours": [], "cbm3d": []}
    names = list(images)[:2]
    for name in names:
        clean = images[name].astype(np.float32) / 255
        noisy = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape).astype(np.float32)
        out["ours"].append(timed(partial(ours.run, "denoise", Observed(to_tensor(noisy * 255))))[1])
        out["cbm3d"].append(timed(partial(cbm3d, noisy, 25 / 255))[1])
    return {k: round(float(np.mean(v)), 2) for k, v in out.items()} | {"images": names}


# -- the pictures --------------------------------------------------------------------------------------------

FIGURE_IMAGE, FIGURE_BOX = "kodim23", (120, 260, 192, 256)  # top, left, height, width: the parrots' heads


def strip(panels: list[tuple[str, np.ndarray]]) -> Image.Image:
    """Panels side by side, each at 2x with its label above: what docs/restore_<task>.png shows."""
    from PIL import ImageDraw

    h, w = panels[0][1].shape[:2]
    sheet = Image.new("RGB", (len(panels) * (2 * w + 8), 2 * h + 22), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(panels):
        im = Image.fromarray(img if img.ndim == 3 else np.repeat(img[..., None], 3, -1))
        sheet.paste(im.resize((2 * w, 2 * h), Image.NEAREST), (i * (2 * w + 8), 22))
        draw.text((i * (2 * w + 8) + 4, 4), label, fill="black")
    return sheet


def pictures(ours: Ours, out: Path) -> list[str]:
    """One comparison strip per task on a crop of one Kodak image: degraded, baseline(s), ours, original."""
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "kodak24.npz", allow_pickle=False) as f:
        full = f[FIGURE_IMAGE]
    top, left, h, w = FIGURE_BOX
    img = full[top : top + h, left : left + w]
    clean = img.astype(np.float32) / 255
    noisy = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape).astype(np.float32)
    noisy8 = to_uint8(noisy)
    small = to_uint8(
        quantize(F.interpolate(to_tensor(img), size=(h // 4, w // 4), mode="bicubic", antialias=True))
    )
    mask = inpaint_mask(FIGURE_IMAGE, h, w)
    holed = img.copy()
    holed[mask] = 255
    gray_t = TASKS["colorize"].observe(to_tensor(img), ours.get("colorize").settings_, None).image
    strips = {
        "denoise": [
            ("noisy, sigma 25", noisy8),
            ("CBM3D (told sigma)", to_uint8(cbm3d(noisy, 25 / 255))),
            ("ours (blind)", to_uint8(ours.run("denoise", Observed(to_tensor(noisy * 255))))),
            ("original", img),
        ],
        "upscale": [
            (
                "bicubic x4",
                to_uint8(
                    TASKS["upscale"].prepare(Observed(to_tensor(small)), ours.get("upscale-x4").settings_)
                ),
            ),
            ("Lanczos x4", lanczos(small, 4)),
            ("ours x4", to_uint8(ours.run("upscale-x4", Observed(to_tensor(small))))),
            ("original", img),
        ],
        "inpaint": [
            ("holes (white)", holed),
            ("biharmonic", to_uint8(biharmonic(holed, mask))),
            (
                "ours",
                to_uint8(
                    ours.run(
                        "inpaint",
                        Observed(to_tensor(holed), torch.from_numpy(mask.astype(np.float32))[None, None]),
                    )
                ),
            ),
            ("original", img),
        ],
        "colorize": [
            ("gray input", to_uint8(gray_t.expand(-1, 3, -1, -1))),
            ("ours", to_uint8(ours.run("colorize", Observed(gray_t)))),
            ("original", img),
        ],
    }
    written = []
    for task, panels in strips.items():
        path = out / f"restore_{task}.png"
        with atomic_path(path) as tmp:
            strip(panels).save(tmp, format="PNG")
        written.append(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
    return written


# -- the report ----------------------------------------------------------------------------------------------


def summarise(rows: list) -> dict:
    """Mean of every metric per (task, set, condition, method) over the images that every method of that
    condition has finished (so a method still running does not compare on other images), with their count;
    a method that has more images also gets its mean over all of them ("... [all N]")."""
    groups: dict[tuple, dict[str, dict]] = {}
    for task, set_name, cond, image, method, entry in rows:
        if entry is not None:
            groups.setdefault((task, set_name, cond, method), {})[image] = entry
    out = {}
    for (task, set_name, cond, method), entries in groups.items():
        peers = [e for (t, s_, c, _), e in groups.items() if (t, s_, c) == (task, set_name, cond)]
        common = sorted(set.intersection(*(set(e) for e in peers)))
        for label, images in ((method, common), (f"{method} [all {len(entries)}]", sorted(entries))):
            if not images or (label != method and len(images) == len(common)):
                continue
            chosen = [entries[i] for i in images]
            metrics = {k for e in chosen for k, v in e.items() if isinstance(v, int | float)}
            out[" | ".join((task, set_name, cond, label))] = {
                "n": len(chosen),
                **{k: round(float(np.mean([e[k] for e in chosen if k in e])), 3) for k in metrics},
            }
    return out


def markdown(doc: dict) -> str:
    lines = [
        "# Built-in restoration models vs the classical tools",
        "",
        f"{doc['date']}, {doc['machine']['cpu']} ({doc['machine']['cores']} cores), commit {doc['version']}.",
        f"Command: `{doc['command']}`. Per-image figures: restore_builtin.json (rows) and the cache.",
        "",
        "| task | set | condition | method | images | PSNR (dB) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in sorted(doc["summary"].items()):
        task, set_name, cond, method = key.split(" | ")
        metric = next((s[k] for k in ("psnr", "psnr_y", "psnr_masked") if k in s), "")
        extra = f" (colourfulness {s['colourfulness']:.0%})" if "colourfulness" in s else ""
        lines.append(
            f"| {task} | {set_name} | {cond} | {method} | {s['n']} | {metric}{extra} "
            f"| {s.get('seconds', '')} |"
        )
    if doc.get("speed"):
        sp = doc["speed"]
        lines += [
            "",
            f"Speed, sigma 25, Kodak ({', '.join(sp['images'])}), same run: ours {sp['ours']} s per "
            f"image, CBM3D {sp['cbm3d']} s ({sp['cbm3d'] / sp['ours']:.1f}x).",
        ]
    lines += [
        "",
        f"Cells not yet computed (the --minutes budget ran out): {doc['skipped']}.",
        "",
        "Published figures for context (not measured here): " + json.dumps(PUBLISHED),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="denoise,upscale,inpaint,colorize")
    ap.add_argument("--sets", default="kodak,b100")
    ap.add_argument("--images", type=int, help="only the first N images of each set")
    ap.add_argument("--minutes", type=float, default=600.0, help="stop computing new cells after this long")
    ap.add_argument("--no-speed", action="store_true", help="skip the same-run CBM3D timing")
    ap.add_argument("--no-pictures", action="store_true", help="skip docs/restore_<task>.png")
    ap.add_argument(
        "--baselines-only", action="store_true", help="fill the cache with the baselines' cells, no report"
    )
    ap.add_argument("--cache", type=Path, default=CACHE, help="per-image results kept between runs")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for restore_builtin.json/.md")
    args = ap.parse_args()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    sets = {s: load_set(s, args.images) for s in args.sets.split(",")}
    sets.setdefault("kodak", load_set("kodak", args.images))
    cache = Cache(args.cache, time.time() + args.minutes * 60)
    cache.baselines_only = args.baselines_only
    ours = Ours()
    jobs = {"denoise": denoise, "upscale": upscale, "inpaint": inpaint, "colorize": colorize}
    # Two passes: every cell but CBM3D's first, so a short --minutes still measures ours everywhere; then
    # CBM3D's (about a minute per Kodak image). Rows come from the second pass, cached cells and all.
    for later in ({"cbm3d"}, set()):
        cache.later, cache.skipped, rows = later, 0, []
        for task in args.tasks.split(","):
            jobs[task](
                cache, ours, sets if task in ("denoise", "upscale") else {"kodak": sets["kodak"]}, rows
            )
    if args.baselines_only:
        print(f"baselines cached in {args.cache}; {cache.skipped} cells left for a later run")
        return
    doc = {
        "command": "PYTHONPATH=src .venv/bin/python bench/restore_builtin.py " + " ".join(sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "version": git_version(),
        "models": {name: ours.digests[name] for name in ours.digests},
        "speed": None if args.no_speed or "denoise" not in args.tasks else speed(ours, sets["kodak"]),
        "skipped": cache.skipped,
        "pictures": [] if args.no_pictures else pictures(ours, ROOT / "docs"),
        "summary": summarise(rows),
        "rows": [list(r) for r in rows],
    }
    save_results(args.out, "restore_builtin", doc, markdown(doc))


if __name__ == "__main__":
    main()
