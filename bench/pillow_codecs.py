"""Pillow's image codecs as baselines for aekit's codecs: bytes, PSNR, sweeps, bpp-matched PSNR, speed.

Imported by bench/codec_mnist.py, bench/codec_kodak.py and bench/codec_photos.py (the script's folder is on
sys.path):

    from pillow_codecs import CODECS, QUALITIES, evaluate, sweep, curve_at, psnr_at_bpp, speed, zstd19

Run it to print (and record) the baseline figures the issue quotes, as a check of these helpers:

    PYTHONPATH=src .venv/bin/python bench/pillow_codecs.py          # writes results/pillow_baselines.*
    PYTHONPATH=src .venv/bin/python bench/pillow_codecs.py --quick  # 1,000 MNIST, 4 Kodak images; no files

Conventions, the same for every codec:
- Images are uint8, (H, W) grayscale or (H, W, 3) RGB; each is encoded on its own, so every byte of the
  file Pillow writes (headers included) counts. Grayscale goes in as Pillow mode "L" (JPEG and AVIF code
  one channel; WebP has no grayscale mode and codes it as YUV 4:2:0 with flat chroma), RGB as "RGB";
  the decoded image is converted back to the input's mode before it is compared.
- PSNR is scikit-image's ``peak_signal_noise_ratio`` with ``data_range=255`` per image; an exact
  reconstruction has infinite PSNR.
- Over a set of images, ``Point.bytes`` is the mean file size per image, ``Point.bpp`` the mean of each
  image's bits per pixel (8 * bytes / (H * W)), and ``Point.psnr`` the mean of the per-image PSNRs (not
  the PSNR of the mean squared error, which is lower): the averaging behind the issue's figures.
- Sweeps run qualities 5, 10, ..., 100 (``QUALITIES``): the sweep the issue's MNIST figures come from.
  Pillow goes down to quality 0 (WebP q0 on MNIST is smaller and worse than q5): ``QUALITIES_FROM_0``
  adds it, which bpp-matched figures on Kodak need (see ``psnr_at_bpp``).
- Lossless codecs (PNG with optimize=True, WebP lossless) have one setting; ``evaluate`` checks that
  each of their images round-trips exactly.
- JPEG XL ("jxl") is not in Pillow itself: it is the pillow-jxl-plugin package (libjxl through Rust), used
  when it imports, from the venv or from bench/.venv-jxl (benchmark-only packages stay out of the project's
  venv): ``.venv/bin/pip install --no-deps --target bench/.venv-jxl pillow-jxl-plugin``. ``jxl_status()``
  says why it is not available otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, features
from skimage.metrics import peak_signal_noise_ratio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUALITIES = tuple(range(5, 101, 5))
QUALITIES_FROM_0 = (0, *QUALITIES)  # for bpp-matched figures at low rates (see psnr_at_bpp)
ZSTD_VENV = (
    ROOT / "bench" / ".venv-zstd"
)  # python3 -m venv bench/.venv-zstd && bench/.venv-zstd/bin/pip install zstandard
# .venv/bin/pip install --no-deps --target bench/.venv-jxl pillow-jxl-plugin (see jxl_status)
JXL_DIR = ROOT / "bench" / ".venv-jxl"


@dataclass(frozen=True)
class PillowCodec:
    """One Pillow format at fixed settings; ``quality`` (0..100) is the only knob a sweep turns."""

    name: str
    format: str
    lossless: bool = False
    options: dict = field(default_factory=dict)

    def encode(self, image: np.ndarray, quality: int | None = None) -> bytes:
        buf = io.BytesIO()
        extra = {} if quality is None else {"quality": int(quality)}
        Image.fromarray(_plain(image)).save(buf, self.format, **self.options, **extra)
        return buf.getvalue()

    def decode(self, data: bytes, like: np.ndarray) -> np.ndarray:
        """The image in ``data``, as uint8 in the mode of ``like`` (the image that was encoded)."""
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L" if _plain(like).ndim == 2 else "RGB"))


# Pillow's defaults otherwise (JPEG: 4:2:0 subsampling, no optimize; WebP: method 4; AVIF: speed 6; JPEG XL:
# the plugin's effort 7). AVIF and JPEG XL get one thread (num_threads=0: libjxl without a thread pool),
# like everything else in aekit's benchmarks on this shared 2-core machine; WebP has one anyway.
CODECS: dict[str, PillowCodec] = {
    c.name: c
    for c in (
        PillowCodec("jpeg", "JPEG"),
        PillowCodec("webp", "WEBP"),
        PillowCodec("avif", "AVIF", options={"max_threads": 1}),
        PillowCodec("jxl", "JXL", options={"num_threads": 0}),
        PillowCodec("png", "PNG", lossless=True, options={"optimize": True}),
        PillowCodec("webp-lossless", "WEBP", lossless=True, options={"lossless": True}),
    )
}


def available(name: str) -> bool:
    """Whether this Pillow was built with the codec (AVIF needs Pillow >= 11.2 with libavif; JPEG XL the
    plugin: see ``jxl_status``)."""
    if name == "jxl":
        return jxl_status() is None
    return features.check({"jpeg": "jpg", "png": "zlib", "avif": "avif"}.get(name, "webp"))


_JXL: list[str | None] = []  # the one answer of jxl_status, once asked


def jxl_status() -> str | None:
    """None when Pillow can write JPEG XL here (pillow-jxl-plugin, one decoding thread), else why not."""
    if not _JXL:
        _JXL.append(_load_jxl())
    return _JXL[0]


def _load_jxl() -> str | None:
    try:
        import pillow_jxl  # noqa: F401  (registers the "JXL" format with Pillow)
    except ImportError:
        if not JXL_DIR.is_dir():
            return (
                "pillow-jxl-plugin is not installed (.venv/bin/pip install --no-deps --target "
                "bench/.venv-jxl pillow-jxl-plugin)"
            )
        sys.path.append(str(JXL_DIR))
        try:
            import pillow_jxl  # noqa: F401
        except ImportError as exc:
            return f"pillow-jxl-plugin in {JXL_DIR.relative_to(ROOT)} does not import: {exc}"
    from pillow_jxl import JpegXLImagePlugin

    JpegXLImagePlugin.DECODE_THREADS = 0  # the plugin decodes on every core by default
    if "JXL" not in Image.SAVE:
        return "pillow-jxl-plugin imported but registered no JXL writer with Pillow"
    return None


def jxl_version() -> str | None:
    """The pillow-jxl-plugin version in use (the libjxl it bundles has no version to ask for), or None."""
    if jxl_status() is not None:
        return None
    from importlib import metadata

    try:
        return "pillow-jxl-plugin " + metadata.version("pillow-jxl-plugin")
    except metadata.PackageNotFoundError:
        return "pillow-jxl-plugin (version unknown)"


def _plain(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"Pillow baselines take uint8 images; got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"expected one (H, W) or (H, W, 3) image; got shape {image.shape}")
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (data range 255); infinite when they are equal."""
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=255))


@dataclass
class Point:
    """One codec at one quality over a set of images: means per image, plus the per-image values."""

    codec: str
    quality: int | None
    n: int
    bytes: float  # mean file size per image
    bpp: float  # mean bits per pixel
    psnr: float  # mean of the per-image PSNRs (dB); inf for a lossless codec
    sizes: list[int]  # per image
    bpps: list[float]
    psnrs: list[float]

    @classmethod
    def measured(
        cls, codec: str, quality: int | None, sizes: list[int], bpps: list[float], psnrs: list[float]
    ) -> Point:
        """The point of per-image measurements: the means come from the lists."""
        means = (float(np.mean(v)) for v in (sizes, bpps, psnrs))
        return cls(codec, quality, len(sizes), *means, sizes, bpps, psnrs)

    def summary(self) -> dict:
        """The means only (for JSON results)."""
        d = asdict(self)
        for k in ("sizes", "bpps", "psnrs"):
            del d[k]
        return d


def evaluate(codec: str, images: Sequence[np.ndarray], quality: int | None = None) -> Point:
    """Encode and decode every image at ``quality``; sizes and PSNRs per image and their means."""
    c = CODECS[codec]
    q = None if c.lossless else (75 if quality is None else quality)
    sizes, bpps, psnrs = [], [], []
    for img in images:
        data = c.encode(img, q)
        out = c.decode(data, img)
        if c.lossless and not np.array_equal(out, _plain(img)):
            raise AssertionError(f"{codec} did not round-trip an image exactly")
        sizes.append(len(data))
        bpps.append(8 * len(data) / (img.shape[0] * img.shape[1]))
        psnrs.append(psnr(_plain(img), out))
    return Point.measured(codec, q, sizes, bpps, psnrs)


def sweep(codec: str, images: Sequence[np.ndarray], qualities: Sequence[int] = QUALITIES) -> list[Point]:
    """``evaluate`` at every quality (one point for a lossless codec), smallest files first."""
    if CODECS[codec].lossless:
        return [evaluate(codec, images)]
    return sorted((evaluate(codec, images, q) for q in qualities), key=lambda p: p.bytes)


def curve_at(points: Sequence[Point], at: float, x: str = "psnr", y: str = "bytes") -> float:
    """Read the mean curve of a sweep: ``y`` where ``x`` equals ``at``, linear between neighbouring points.

    E.g. ``curve_at(webp, 36.6)`` = WebP's mean bytes per image at a mean PSNR of 36.6 dB (the issue's MNIST
    comparison "at equal PSNR"). Raises ValueError outside the sweep's range rather than extrapolating.
    """
    xs = np.array([getattr(p, x) for p in points])
    ys = np.array([getattr(p, y) for p in points])
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not xs[0] <= at <= xs[-1]:
        raise ValueError(f"{x}={at} is outside the sweep's range {xs[0]:.4g}..{xs[-1]:.4g}")
    return float(np.interp(at, xs, ys))


def _per_image_at(points: Sequence[Point], bpp: float) -> float:
    per_image = []
    for i in range(points[0].n):
        bs = np.array([p.bpps[i] for p in points])
        ps = np.array([p.psnrs[i] for p in points])
        order = np.argsort(bs)
        bs, ps = bs[order], ps[order]
        if not bs[0] <= bpp <= bs[-1]:
            raise ValueError(f"image {i}: its sweep spans {bs[0]:.3f}..{bs[-1]:.3f} bpp, which misses {bpp}")
        per_image.append(float(np.interp(bpp, bs, ps)))
    return float(np.mean(per_image))


AT_BPP = {
    "per-image": _per_image_at,
    "mean-curve": lambda points, bpp: curve_at(points, bpp, x="bpp", y="psnr"),
}


def psnr_at_bpp(points: Sequence[Point], bpp: float, method: str = "per-image") -> float:
    """Mean PSNR at ``bpp`` from a sweep; raises ValueError where the sweep does not reach ``bpp``.

    ``method="per-image"``: interpolate each image's own PSNR-vs-bpp points (linearly in bpp), then average
    over images, so every image is compared at exactly ``bpp``. ``method="mean-curve"``: interpolate the
    curve of the per-quality means (mean bpp, mean PSNR); this is how the issue's Kodak figures were read
    (JPEG 29.05 dB, WebP 31.32, AVIF 32.51 at 0.5 bpp), and it comes out 0.3-0.5 dB lower for these codecs
    (a mean over images of a concave curve lies below the curve). Compare codecs with one method.
    Per image, a sweep from quality 5 misses 0.5 bpp on one Kodak image for WebP (kodim13: 0.53 bpp at
    q5): sweep ``QUALITIES_FROM_0`` there.
    """
    return AT_BPP[method](points, bpp)


def speed(codec: str, images: Sequence[np.ndarray], quality: int | None = 75, repeats: int = 3) -> dict:
    """Encode and decode speed in MB/s of raw pixels (H * W * channels bytes; 1 MB = 10^6 bytes).

    Each repeat encodes (then decodes) every image in turn, timed with ``time.perf_counter``; the best
    repeat counts, as the least disturbed by other processes on a shared machine.
    """
    c = CODECS[codec]
    q = None if c.lossless else quality
    raw = sum(_plain(img).nbytes for img in images)
    coded = [c.encode(img, q) for img in images]
    enc = dec = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for img in images:
            c.encode(img, q)
        enc = min(enc, time.perf_counter() - t)
        t = time.perf_counter()
        for data, img in zip(coded, images, strict=True):
            c.decode(data, img)
        dec = min(dec, time.perf_counter() - t)
    return {"codec": codec, "quality": q, "encode_MBps": raw / enc / 1e6, "decode_MBps": raw / dec / 1e6}


def zstd19(data: bytes) -> tuple[int, str]:
    """Size of ``data`` compressed by zstd at level 19, and which zstd did it.

    The issue's figure (1,418,470 B for MNIST's test array) is python-zstandard's (libzstd 1.5.7); the zstd
    command line here is 1.5.4 and gives about 1% more. Uses bench/.venv-zstd if it exists (benchmark-only
    packages stay out of the project's venv), else the ``zstd`` command.
    """
    py = ZSTD_VENV / "bin" / "python"
    if py.exists():
        code = (
            "import sys, zstandard as z; d = z.ZstdCompressor(level=19).compress(sys.stdin.buffer.read()); "
            "sys.stdout.buffer.write(d); sys.stderr.write('python-zstandard %s, libzstd %s' % "
            "(z.__version__, '.'.join(map(str, z.ZSTD_VERSION))))"
        )
        r = subprocess.run([str(py), "-c", code], input=data, capture_output=True, check=True)
        return len(r.stdout), r.stderr.decode()
    if shutil.which("zstd"):
        r = subprocess.run(["zstd", "-19", "-c", "-q"], input=data, capture_output=True, check=True)
        version = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip()
        return len(r.stdout), version
    raise RuntimeError("no zstd: create bench/.venv-zstd (pip install zstandard) or install the zstd command")


# -- the self-check: the issue's baseline figures ---------------------------------------------------------


def _data_dir() -> Path:
    return Path(os.environ.get("AEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))


def mnist_figures(n: int | None, log: Callable[[str], None]) -> dict:
    with np.load(_data_dir() / "mnist.npz", allow_pickle=False) as f:
        x = f["x_test"][:n]
    out: dict = {"images": len(x), "sweeps": {}}
    for codec in ("webp", "jpeg"):
        t = time.perf_counter()
        pts = sweep(codec, x)
        out["sweeps"][codec] = [p.summary() for p in pts]
        log(f"MNIST {codec}: {len(pts)} qualities in {time.perf_counter() - t:.0f} s")
    webp = {p["quality"]: p for p in out["sweeps"]["webp"]}
    out["webp_smallest"] = min(out["sweeps"]["webp"], key=lambda p: p["bytes"])
    out["webp_q50"], out["webp_q90"] = webp[50], webp[90]
    out["webp_q0"] = evaluate("webp", x, 0).summary()
    out["jpeg_smallest"] = min(out["sweeps"]["jpeg"], key=lambda p: p["bytes"])
    out["jpeg_q0"] = evaluate("jpeg", x, 0).summary()
    for codec in ("png", "webp-lossless"):
        out[codec] = evaluate(codec, x).summary()
    out["zstd19_raw_array_bytes"], out["zstd19_by"] = zstd19(np.ascontiguousarray(x).tobytes())
    sub = x[:1000]
    out["speed_images"] = len(sub)
    out["speed"] = [
        speed(c, sub, q) for c, q in (("jpeg", 75), ("webp", 75), ("png", None), ("webp-lossless", None))
    ]
    return out


def kodak_figures(n: int | None, log: Callable[[str], None]) -> dict:
    with np.load(_data_dir() / "kodak24.npz", allow_pickle=False) as f:
        images = [f[k] for k in sorted(f.files)[:n]]
    out: dict = {"images": len(images), "bpp": 0.5, "qualities": QUALITIES_FROM_0, "sweeps": {}}
    out["psnr_at_bpp"] = {method: {} for method in AT_BPP}
    for codec in ("jpeg", "webp", "avif"):
        if not available(codec):
            log(f"Kodak {codec}: not in this Pillow, skipped")
            continue
        t = time.perf_counter()
        pts = sweep(codec, images, QUALITIES_FROM_0)
        out["sweeps"][codec] = [p.summary() for p in pts]
        for method, values in out["psnr_at_bpp"].items():
            values[codec] = psnr_at_bpp(pts, 0.5, method)
        got = ", ".join(f"{m} {v[codec]:.2f} dB" for m, v in out["psnr_at_bpp"].items())
        log(f"Kodak {codec} at 0.5 bpp: {got} ({time.perf_counter() - t:.0f} s)")
    out["speed"] = [speed(c, images, 75) for c in ("jpeg", "webp", "avif") if available(c)]
    return out


ISSUE = {  # the issue's figures, to compare with
    "mnist": "WebP 135 B at 28.1 dB (smallest), 204 B at 36.6 dB, 320 B at 46.5 dB; JPEG >= 379 B; "
    "PNG 274 B; WebP-lossless 206 B; zstd-19 1,418,470 B",
    "kodak": "JPEG 29.05, WebP 31.32, AVIF 32.51 dB at 0.5 bpp",
}


def issue_check(res: dict) -> list[str]:
    """The issue's figures this run does not reproduce to the digits the issue gives (empty: all match)."""
    m, k = res["mnist"], res["kodak"]["psnr_at_bpp"]["mean-curve"]
    checks = [  # (what, measured, the issue's figure, decimals it gives)
        ("WebP smallest bytes", m["webp_smallest"]["bytes"], 135, 0),
        ("WebP smallest PSNR", m["webp_smallest"]["psnr"], 28.1, 1),
        ("WebP q50 bytes", m["webp_q50"]["bytes"], 204, 0),
        ("WebP q50 PSNR", m["webp_q50"]["psnr"], 36.6, 1),
        ("WebP q90 bytes", m["webp_q90"]["bytes"], 320, 0),
        ("WebP q90 PSNR", m["webp_q90"]["psnr"], 46.5, 1),
        ("JPEG smallest bytes (floor)", math.floor(m["jpeg_smallest"]["bytes"]), 379, 0),
        ("PNG bytes", m["png"]["bytes"], 274, 0),
        ("WebP lossless bytes", m["webp-lossless"]["bytes"], 206, 0),
        ("zstd-19 bytes", m["zstd19_raw_array_bytes"], 1418470, 0),
        ("Kodak JPEG", k.get("jpeg", math.nan), 29.05, 2),
        ("Kodak WebP", k.get("webp", math.nan), 31.32, 2),
        ("Kodak AVIF", k.get("avif", math.nan), 32.51, 2),
    ]
    # Within one unit of the issue's last digit: it rounds some figures and truncates others (320.7 B: "320").
    return [
        f"{w}: {got:.{d + 1}f}, issue {want}" for w, got, want, d in checks if not abs(got - want) < 10**-d
    ]


def report(res: dict) -> str:
    m, k, v = res["mnist"], res["kodak"], res["versions"]
    lines = [
        f"Pillow baselines; {res['date']}, {res['machine']['cpu']}, {res['machine']['cores']} cores "
        f"(shared); `{res['command']}`",
        "",
        f"Pillow {v['pillow']} (libjpeg-turbo {v.get('libjpeg_turbo', '?')}, libwebp {v['webp']}, "
        f"libavif {v['avif']}), scikit-image {v['skimage']}; {res['seconds']} s in all. "
        "Sizes are whole files, one per image; PSNR is the mean of per-image PSNRs (scikit-image, "
        "data_range=255); quality sweeps 5..100 step 5 on MNIST, 0..100 step 5 on Kodak "
        "(see bench/pillow_codecs.py). "
        + (
            f"Not as in the issue: {'; '.join(missed)}."
            if (missed := issue_check(res))
            else "Every figure the issue quotes is reproduced (to within one unit of its last digit)."
        ),
        "",
        f"## MNIST test set ({m['images']:,} images, 28x28, one file per image)",
        "",
        "| codec | setting | bytes / image | PSNR dB | issue |",
        "|---|---|---|---|---|",
    ]
    row = "| {} | {} | {:.1f} | {:.2f} | {} |"
    lines += [
        row.format(
            "WebP",
            f"q{m['webp_smallest']['quality']} (smallest of the sweep)",
            m["webp_smallest"]["bytes"],
            m["webp_smallest"]["psnr"],
            "135 B at 28.1 dB",
        ),
        row.format("WebP", "q50", m["webp_q50"]["bytes"], m["webp_q50"]["psnr"], "204 B at 36.6 dB"),
        row.format("WebP", "q90", m["webp_q90"]["bytes"], m["webp_q90"]["psnr"], "320 B at 46.5 dB"),
        row.format("WebP", "q0 (below the sweep)", m["webp_q0"]["bytes"], m["webp_q0"]["psnr"], ""),
        row.format(
            "JPEG",
            f"q{m['jpeg_smallest']['quality']} (smallest of the sweep)",
            m["jpeg_smallest"]["bytes"],
            m["jpeg_smallest"]["psnr"],
            ">= 379 B",
        ),
        row.format("JPEG", "q0 (below the sweep)", m["jpeg_q0"]["bytes"], m["jpeg_q0"]["psnr"], ""),
        f"| PNG | optimize=True | {m['png']['bytes']:.1f} | lossless | 274 B |",
        f"| WebP lossless | default | {m['webp-lossless']['bytes']:.1f} | lossless | 206 B |",
        f"| zstd -19 | the whole raw array | {m['zstd19_raw_array_bytes'] / m['images']:.1f} "
        f"({m['zstd19_raw_array_bytes']:,} B in all; {m['zstd19_by']}) | lossless | 1,418,470 B in all |",
        "",
        "Full sweeps (bytes / PSNR per quality) are in `pillow_baselines.json`.",
        "",
        f"## Kodak ({k['images']} images, 768x512 RGB): PSNR at 0.5 bpp",
        "",
        "Qualities 0, 5, ..., 100. *mean curve*: the per-quality means (mean bpp, mean PSNR over the images) "
        "interpolated linearly at 0.5 bpp, the issue's method; *per image*: each image's own PSNR-vs-bpp "
        "points interpolated at 0.5 bpp, then the mean over images (`psnr_at_bpp(points, 0.5, method)`).",
        "",
        "| codec | mean curve: PSNR dB at 0.5 bpp | issue | per image: PSNR dB at 0.5 bpp |",
        "|---|---|---|---|",
    ]
    issue = {"jpeg": "29.05", "webp": "31.32", "avif": "32.51"}
    at = k["psnr_at_bpp"]
    lines += [
        f"| {c} | {v:.2f} | {issue[c]} | {at['per-image'][c]:.2f} |" for c, v in at["mean-curve"].items()
    ]
    lines += [
        "",
        "## Speed (MB/s of raw pixels, best of 3, one thread, under contention from other jobs)",
        "",
        "| data | codec | quality | encode MB/s | decode MB/s |",
        "|---|---|---|---|---|",
    ]
    for name, part in (("MNIST (1,000 images)", m), (f"Kodak ({k['images']} images)", k)):
        for s in part["speed"]:
            q = "lossless" if s["quality"] is None else s["quality"]
            lines.append(f"| {name} | {s['codec']} | {q} | {s['encode_MBps']:.1f} | {s['decode_MBps']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from machine import cpu_model  # bench/machine.py

    from aekit.atomic import write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 MNIST, 4 Kodak images; print, write nothing")
    ap.add_argument("--report", action="store_true", help="only rewrite the .md from the recorded .json")
    args = ap.parse_args(argv)
    if args.report:
        res = json.loads((RESULTS / "pillow_baselines.json").read_text())
        res["versions"].setdefault("libjpeg_turbo", features.version("libjpeg_turbo"))
        write_text_atomic(RESULTS / "pillow_baselines.json", json.dumps(res, indent=1) + "\n")
        write_text_atomic(RESULTS / "pillow_baselines.md", report(res))
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    import skimage

    res = {
        "benchmark": "pillow_baselines",
        "command": "PYTHONPATH=src .venv/bin/python bench/pillow_codecs.py"
        + (" --quick" if args.quick else ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count()},
        "versions": {
            "pillow": Image.__version__,
            "jpeg": features.version("jpg"),
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "webp": features.version("webp"),
            "avif": features.version("avif"),
            "skimage": skimage.__version__,
            "numpy": np.__version__,
        },
        "issue": ISSUE,
    }
    t = time.perf_counter()
    res["mnist"] = mnist_figures(1000 if args.quick else None, log)
    res["kodak"] = kodak_figures(4 if args.quick else None, log)
    res["seconds"] = round(time.perf_counter() - t)
    md = report(res)
    print(md)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        write_text_atomic(RESULTS / "pillow_baselines.json", json.dumps(res, indent=1) + "\n")
        write_text_atomic(RESULTS / "pillow_baselines.md", md)


if __name__ == "__main__":
    main()
