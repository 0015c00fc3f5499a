"""Learned compression on MNIST: aekit's ImageCodec against Pillow's JPEG and WebP, PNG, WebP-lossless, zstd.

    PYTHONPATH=src .venv/bin/python bench/codec_mnist.py                  # the recorded run (train + measure)
    PYTHONPATH=src .venv/bin/python bench/codec_mnist.py --steps 50 --test 200 --select 50   # a smoke run
    PYTHONPATH=src .venv/bin/python bench/codec_mnist.py --load runs/codec_mnist.aek        # measure only

One run: train an ImageCodec (on the shared trainer) on the first 59,000 MNIST training images (rate +
lambda x MSE at every latent level plus the pixel head; one torch thread) for exactly --steps steps, pick
the 8 quality levels on the last 1,000 training images
(never on the test set), then measure on all 10,000 test images:
  - each quality: bytes per image = size of ONE .aez archive holding all 10,000 images / 10,000 (every
    header and index byte counted), the size of one image alone in its own .aez, and the mean per-image
    PSNR (pillow_codecs' convention: scikit-image PSNR per image, then the mean);
  - lossless: archive bytes per image, bit-exact round trip checked image by image;
  - Pillow JPEG and WebP at every quality 5..100 (each image its own file), PNG (optimize=True),
    WebP lossless, and zstd -19 of the whole raw test array;
  - encode/decode speed in MB/s of raw pixels, ours (whole archive, one thread) beside Pillow's.
Quality levels: the candidates are every latent level alone and the lower half of the levels with
near-lossless pixel coding in bins of width D (the pixel head's distribution summed per bin); the 8 levels
are points of the candidates' Pareto front (bytes vs PSNR, measured by really coding the selection
images), spread over 25-50 dB (the issue asks for 28-46.5): aekit.codec.ladder, which ImageCodec.fit uses
itself with its default settings (bench/codec_mnist_defaults.py measures that codec).
Writes bench/results/codec_mnist.{json,md,png}; the codec goes to runs/codec_mnist.aek.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine  # bench/machine.py: the script's folder is on sys.path

from aekit.codec import ladder

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
WEBP_AT = (28.1, 36.6, 46.5)  # the WebP points (dB): ours must be >= 3x smaller at equal PSNR
# The candidates and the choice of the quality levels are the library's (ImageCodec.fit picks the same
# ladder on its held-out images when left to its defaults): aekit.codec.ladder.
PSNR_RANGE = ladder.PSNR_RANGE  # the quality levels are spread over this range (28.1 must lie inside)
TRAIN_BINS = ladder.TRAIN_BINS  # the pixel head learns every one's context
PSNR_CAP = ladder.PSNR_CAP  # an exactly reconstructed image counts as 100 dB in means (its PSNR is infinite)


def log(**row) -> None:
    print(json.dumps(row), flush=True)


def mnist() -> tuple[np.ndarray, np.ndarray]:
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "mnist.npz", allow_pickle=False) as f:
        return f["x_train"], f["x_test"]


def capped_mean_psnr(psnrs) -> float:
    return float(np.mean(np.minimum(np.asarray(psnrs, float), PSNR_CAP)))


def image_psnrs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR of two stacks (N, H, W) uint8 (inf where equal), as pillow_codecs.psnr computes it."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / mse)


# -- training and choosing the quality levels --------------------------------------------------------------


def train(args, x_train: np.ndarray):
    """ImageCodec on the shared trainer for exactly --steps steps, with this benchmark's settings: no
    images held out (the quality levels are picked on the separate selection images) and no ladder picked
    in fit (the benchmark picks it in parallel processes, the same way)."""
    from aekit.codec.codec import ImageCodec

    codec = ImageCodec(
        hidden=args.hidden,
        latent=args.latent,
        stages=2,
        lambdas=tuple(float(v) for v in args.lambdas.split(",")),
        qualities=None,
        pixel_width=args.pixel_width,
        pixel_layers=3,
        pixel_mixtures=args.mixtures,
        pixel_train_bins=TRAIN_BINS,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        validation_fraction=0.0,
        random_state=0,
        device="cpu",
        verbose=1,
    )
    started, cpu = time.perf_counter(), time.process_time()
    codec.fit(x_train)
    for row in codec.history_:
        log(**row)
    seconds = {
        "train_wall_s": round(time.perf_counter() - started, 1),
        "train_cpu_s": round(time.process_time() - cpu, 1),
    }
    # the lossless level as the recorded runs picked it: on the last 1,000 training images
    data = __import__("torch").from_numpy(x_train[-1000:]).float().div(255).unsqueeze(1)  # (1000, 1, 28, 28)
    net = codec.net_
    net.config.default_quality = None  # the benchmark reports every quality; its default is the best
    fitted = ImageCodec.from_network(net, sample=data, random_state=0)
    fitted.history_ = codec.history_
    return fitted, seconds


def _candidate(job: tuple[str, int, int, np.ndarray]) -> dict:
    """Worker: code ``images`` with the codec at ``path`` under one (level, bin width); bytes and PSNR."""
    import torch

    from aekit.codec.codec import ImageCodec

    torch.set_num_threads(1)
    path, level, bins, images = job
    net = ImageCodec.load(path).net_
    net.config.qualities = ((level, bins),)
    trial = ImageCodec.from_network(net)
    items = trial.compress(images, quality=1)
    out = trial.decompress(items)
    row = {
        "level": level,
        "bins": bins,
        "payload_bytes": float(np.mean([len(i.payload) for i in items])),
        "psnr": capped_mean_psnr(image_psnrs(images, out)),
    }
    log(candidate=row)
    return row


def measure_candidates(path: str, levels: int, images: np.ndarray, workers: int) -> list[dict]:
    """Really code ``images`` under every (level, bin width) candidate: mean bytes and PSNR per image."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_candidate, [(path, lv, b, images) for lv, b in ladder.candidates(levels)]))


def choose_qualities(rows: list[dict], n: int = 8) -> list[dict]:
    """n points of the candidates' Pareto front spread evenly in PSNR over PSNR_RANGE (the library's)."""
    return ladder.choose(rows, n)


# -- measuring ---------------------------------------------------------------------------------------------


def _measure_mode(job: tuple[str, int, bool, np.ndarray, str]) -> dict:
    """Worker: one quality (or lossless) over the whole test set."""
    import torch

    from aekit.codec.codec import ImageCodec

    torch.set_num_threads(1)
    path, q, lossless, test, tmp = job
    codec = ImageCodec.load(path, name="codec_mnist")
    arch = Path(tmp) / f"q{q}{'-lossless' if lossless else ''}.aez"
    t = time.perf_counter()
    size = codec.compress_to(arch, test, quality=max(q, 1), lossless=lossless)
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    out = codec.decompress(arch)
    dec_s = time.perf_counter() - t
    single = codec.compress_to(arch.with_suffix(".one.aez"), test[:1], quality=max(q, 1), lossless=lossless)
    psnrs = image_psnrs(test, out)
    level, bins = codec._mode(max(q, 1), lossless)
    row = {
        "quality": "lossless" if lossless else q,
        "latent_level": level,
        "pixel_bins": bins,
        "archive_bytes": size,
        "bytes_per_image": size / len(test),
        "single_image_archive_bytes": single,
        "psnr": capped_mean_psnr(psnrs),
        "psnr_of_mean_mse": float(
            10 * math.log10(255**2 / max(np.mean((test.astype(float) - out) ** 2), 1e-12))
        ),
        "exact_images": int(np.isinf(psnrs).sum()),
        "max_abs_error": int(np.abs(test.astype(int) - out.astype(int)).max()),
        "encode_s": round(enc_s, 1),
        "decode_s": round(dec_s, 1),
        "encode_MBps": test.nbytes / enc_s / 1e6,
        "decode_MBps": test.nbytes / dec_s / 1e6,
    }
    if lossless:
        row["bit_exact"] = bool(all(np.array_equal(a, b) for a, b in zip(test, out, strict=True)))
        if not row["bit_exact"]:
            raise AssertionError("lossless round trip was not bit-exact")
    log(ours=row)
    return row


def measure_ours(path: str, n_qualities: int, test: np.ndarray, tmp: Path, workers: int) -> dict:
    """Every quality and lossless over the whole test set: archive bytes, single-image bytes, PSNR, MB/s."""
    from concurrent.futures import ProcessPoolExecutor

    modes = [(0, True)] + [(q, False) for q in range(n_qualities, 0, -1)]  # the slowest first
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(_measure_mode, [(path, q, ll, test, str(tmp)) for q, ll in modes]))
    return {"lossy": rows[1:][::-1], "lossless": rows[0]}


def measure_pillow(test: np.ndarray) -> dict:
    from pillow_codecs import speed, sweep, zstd19

    out: dict = {"sweeps": {}}
    for name in ("jpeg", "webp"):
        points = sweep(name, test)
        out["sweeps"][name] = [
            {"quality": p.quality, "bytes": p.bytes, "psnr": capped_mean_psnr(p.psnrs)} for p in points
        ]
        log(pillow=name, points=len(points))
    for name in ("png", "webp-lossless"):
        p = sweep(name, test)[0]
        out[name] = {"bytes": p.bytes}
        log(pillow=name, bytes=p.bytes)
    size, which = zstd19(np.ascontiguousarray(test).tobytes())
    out["zstd19"] = {"bytes_total": size, "bytes_per_image": size / len(test), "zstd": which}
    out["speed"] = [speed("jpeg", test[:2000], 75), speed("webp", test[:2000], 75)]
    log(pillow_speed=out["speed"])
    return out


def compare(ours: dict, pillow: dict) -> dict:
    """WebP's and JPEG's bytes at our PSNRs, and ours at the issue's WebP points."""
    from pillow_codecs import Point, curve_at

    def points(name):
        return [
            Point(name, r["quality"], 0, r["bytes"], 0.0, r["psnr"], [], [], [])
            for r in pillow["sweeps"][name]
        ]

    webp, jpeg = points("webp"), points("jpeg")
    mine = [
        Point("ours", r["quality"], 0, r["bytes_per_image"], 0.0, r["psnr"], [], [], [])
        for r in ours["lossy"]
    ]
    rows = []
    for r in ours["lossy"]:
        row = {"quality": r["quality"], "psnr": r["psnr"], "ours_bytes": r["bytes_per_image"]}
        for name, curve in (("webp", webp), ("jpeg", jpeg)):
            try:
                row[f"{name}_bytes"] = curve_at(curve, r["psnr"])
                row[f"{name}_over_ours"] = row[f"{name}_bytes"] / r["bytes_per_image"]
            except ValueError:
                row[f"{name}_bytes"] = None
        rows.append(row)
    at = []
    for target in WEBP_AT:
        entry = {"psnr": target}
        try:
            entry["webp_bytes"] = curve_at(webp, target)
        except ValueError:
            entry["webp_bytes"] = None
        try:
            entry["ours_bytes"] = curve_at(mine, target)
        except ValueError:
            entry["ours_bytes"] = None
        if entry["webp_bytes"] and entry["ours_bytes"]:
            entry["ratio"] = entry["webp_bytes"] / entry["ours_bytes"]
            entry["met"] = entry["ratio"] >= 3.0
        at.append(entry)
    lossless = ours["lossless"]["bytes_per_image"]
    png, webpl = pillow["png"]["bytes"], pillow["webp-lossless"]["bytes"]
    return {
        "at_equal_psnr": rows,
        "targets": at,
        "lossless": {
            "ours": lossless,
            "png": png,
            "webp_lossless": webpl,
            "zstd19_per_image": pillow["zstd19"]["bytes_per_image"],
            "png_over_ours": png / lossless,
            "met_png_1_5x": png / lossless >= 1.5,
            "met_below_webp_lossless": lossless < webpl,
        },
    }


def plot(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aekit.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=120)
    lossy = result["ours"]["lossy"]
    ax.plot(
        [r["bytes_per_image"] for r in lossy],
        [r["psnr"] for r in lossy],
        "o-",
        label="aekit ImageCodec (archive / 10,000)",
    )
    ax.plot(
        [r["single_image_archive_bytes"] for r in lossy],
        [r["psnr"] for r in lossy],
        "o:",
        alpha=0.5,
        label="aekit, one image alone in its .aez",
    )
    for name, style in (("webp", "s-"), ("jpeg", "^-")):
        pts = result["pillow"]["sweeps"][name]
        ax.plot(
            [p["bytes"] for p in pts],
            [p["psnr"] for p in pts],
            style,
            ms=3,
            label=f"Pillow {name.upper()} q5..100",
        )
    lossless = result["comparison"]["lossless"]
    for label, value in (
        ("aekit lossless", lossless["ours"]),
        ("PNG", lossless["png"]),
        ("WebP lossless", lossless["webp_lossless"]),
    ):
        ax.axvline(value, ls="--", lw=0.8, color="gray")
        ax.text(value, 24.5, f" {label}\n {value:.0f} B", fontsize=7, rotation=90, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per 28x28 image (all headers included)")
    ax.set_ylabel("mean PSNR per image (dB)")
    ax.set_title("MNIST test set (10,000 images): rate vs distortion")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def markdown(result: dict) -> str:
    c = result["comparison"]
    lines = [
        f"Learned compression on MNIST ({result['settings']['test_images']:,} test images); "
        f"{result['date']}, {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores (shared with other jobs), 1 torch thread; `{result['command']}`",
        "",
        f"Codec: {result['settings']['model']}; trained {result['training']['train_wall_s']:.0f} s "
        f"({result['training']['train_cpu_s']:.0f} CPU s) on the first 59,000 training images; quality "
        "levels picked on the last 1,000 training images.",
        "",
        "| quality | latent level | pixel bins | bytes/image (archive) | one image alone (.aez) | PSNR dB "
        "| WebP bytes at that PSNR | WebP / ours | JPEG / ours | encode MB/s | decode MB/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, cmp in zip(result["ours"]["lossy"], c["at_equal_psnr"], strict=True):
        webp = f"{cmp['webp_bytes']:.1f}" if cmp.get("webp_bytes") else "out of WebP's range"
        ratio = f"{cmp['webp_over_ours']:.2f}x" if cmp.get("webp_bytes") else "-"
        jratio = f"{cmp['jpeg_over_ours']:.2f}x" if cmp.get("jpeg_bytes") else "-"
        bins = r["pixel_bins"] or "-"
        lines.append(
            f"| {r['quality']} | {r['latent_level']} | {bins} | {r['bytes_per_image']:.1f} | "
            f"{r['single_image_archive_bytes']} | {r['psnr']:.2f} | {webp} | {ratio} | {jratio} | "
            f"{r['encode_MBps']:.3f} | {r['decode_MBps']:.3f} |"
        )
    ll = result["ours"]["lossless"]
    lines += [
        "",
        "At the issue's WebP points (ours read off our curve at the same PSNR; target: WebP / ours >= 3):",
        "",
        "| PSNR dB | WebP bytes (this run) | ours bytes | WebP / ours | met |",
        "|---|---|---|---|---|",
    ]
    for t in c["targets"]:
        ours = f"{t['ours_bytes']:.1f}" if t.get("ours_bytes") else "outside our range"
        webp = f"{t['webp_bytes']:.1f}" if t.get("webp_bytes") else "-"
        ratio = f"{t['ratio']:.2f}x" if t.get("ratio") else "-"
        met = ("yes" if t["met"] else "NO") if "met" in t else "-"
        lines.append(f"| {t['psnr']} | {webp} | {ours} | {ratio} | {met} |")
    L = c["lossless"]
    lines += [
        "",
        f"Lossless (bit-exact on all {result['settings']['test_images']:,} images, checked one by one):",
        "",
        "| codec | bytes/image | vs ours |",
        "|---|---|---|",
        f"| aekit ImageCodec lossless (archive / {result['settings']['test_images']:,}) | "
        f"{L['ours']:.1f} | 1.00x |",
        f"| aekit, one image alone (.aez) | {ll['single_image_archive_bytes']} | |",
        f"| PNG (optimize=True) | {L['png']:.1f} | {L['png_over_ours']:.2f}x |",
        f"| WebP lossless | {L['webp_lossless']:.1f} | {L['webp_lossless'] / L['ours']:.2f}x |",
        f"| zstd -19 of the raw array ({result['pillow']['zstd19']['bytes_total']:,} B) | "
        f"{L['zstd19_per_image']:.1f} | {L['zstd19_per_image'] / L['ours']:.2f}x |",
        "",
        f"Lossless targets: >= 1.5x smaller than PNG: {'yes' if L['met_png_1_5x'] else 'NO'}; below WebP "
        f"lossless: {'yes' if L['met_below_webp_lossless'] else 'NO'}. Lossless speed: encode "
        f"{ll['encode_MBps']:.3f} MB/s, decode {ll['decode_MBps']:.3f} MB/s.",
        "",
        "Speed (MB/s of raw pixels, 1 MB = 10^6 B; ours: the whole 10,000-image archive, one thread, "
        "each image coded on its own; Pillow: best of 3 passes over 2,000 images at quality 75): "
        + ", ".join(
            f"{s['codec']} encode {s['encode_MBps']:.2f} / decode {s['decode_MBps']:.2f}"
            for s in result["pillow"]["speed"]
        )
        + ". Timings are on a machine shared with other jobs.",
        "",
        "PSNR: scikit-image's per image, then the mean over images (pillow_codecs' convention); an image "
        f"reconstructed exactly would count as {PSNR_CAP:.0f} dB. Bytes: every byte of every file, headers "
        "included; ours = the .aez archive's size / 10,000. Rate-distortion plot: "
        f"`{result['plot']}`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--pixel-width", type=int, default=32)
    parser.add_argument("--mixtures", type=int, default=3)
    parser.add_argument("--lambdas", default="0.0001,0.00015,0.0002,0.0003,0.0006,0.0012,0.005,0.04")
    parser.add_argument("--train-only", action="store_true", help="train, save to --model-out, stop")
    parser.add_argument("--workers", type=int, default=2, help="processes measuring qualities side by side")
    parser.add_argument("--test", type=int, default=None, help="measure on the first N test images only")
    parser.add_argument("--select", type=int, default=1000, help="training images held out to pick qualities")
    parser.add_argument(
        "--select-images", type=int, default=100, help="of those, how many are coded per candidate"
    )
    parser.add_argument("--load", help="measure this codec instead of training one")
    parser.add_argument("--model-out", default=str(ROOT / "runs" / "codec_mnist.aek"))
    parser.add_argument("--out", default=str(RESULTS / "codec_mnist"))
    args = parser.parse_args()

    import tempfile

    import torch

    import aekit
    from aekit.atomic import write_text_atomic
    from aekit.codec.codec import ImageCodec

    torch.set_num_threads(1)
    started = time.perf_counter()
    x_train, x_test = mnist()
    x_test = x_test[: args.test] if args.test else x_test
    fit_images, select_images = x_train[: -args.select], x_train[-args.select :]
    if args.load:
        codec = ImageCodec.load(args.load)
        record = Path(args.load).with_suffix(".train.json")
        seconds = {"train_wall_s": 0.0, "train_cpu_s": 0.0}
        if record.exists():  # trained by this script with --train-only: keep its command and timing
            trained = json.loads(record.read_text())
            seconds = {k: trained[k] for k in ("command", "date", "train_wall_s", "train_cpu_s")}
            codec.history_ = trained.get("history", [])
        seconds["loaded_from"] = args.load
    else:
        codec, seconds = train(args, fit_images)
        codec.training_seconds_ = seconds
        if args.train_only:
            Path(args.model_out).parent.mkdir(parents=True, exist_ok=True)
            codec.save(args.model_out)
            write_text_atomic(
                Path(args.model_out).with_suffix(".train.json"),
                json.dumps(
                    {
                        "command": "PYTHONPATH=src .venv/bin/python bench/codec_mnist.py "
                        + " ".join(sys.argv[1:]),
                        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                        **seconds,
                        "history": codec.history_,
                    },
                    indent=1,
                ),
            )
            return
    net = codec.net_
    Path(args.model_out).parent.mkdir(parents=True, exist_ok=True)
    codec.save(args.model_out)  # the workers read it from here
    candidates = measure_candidates(
        args.model_out, net.config.levels, select_images[: args.select_images], args.workers
    )
    chosen = choose_qualities(candidates)
    net.config.qualities = tuple((r["level"], r["bins"]) for r in chosen)
    codec = ImageCodec.from_network(net, random_state=0)  # new qualities: a new fingerprint
    codec.history_ = getattr(codec, "history_", [])
    Path(args.model_out).parent.mkdir(parents=True, exist_ok=True)
    codec.save(args.model_out)
    codec = ImageCodec.load(args.model_out, name="codec_mnist")
    log(qualities=net.config.qualities, lossless_level=net.config.lossless_level)
    with tempfile.TemporaryDirectory() as tmp:
        ours = measure_ours(args.model_out, codec.n_qualities, x_test, Path(tmp), args.workers)
    pillow = measure_pillow(x_test)
    out = Path(args.out)
    c = net.config
    result = {
        "benchmark": "codec_mnist",
        "command": "PYTHONPATH=src .venv/bin/python bench/codec_mnist.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            **machine(),
            "torch_threads": 1,
        },
        "versions": {
            "aekit": aekit.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "constriction": importlib.metadata.version("constriction"),
            "pillow": __import__("PIL").__version__,
        },
        "settings": {
            "model": f"CodecNet(hidden={c.hidden}, latent={c.latent}, stages={c.stages}, "
            f"lambdas={list(c.lambdas)}, pixel_width={c.pixel_width}, pixel_mixtures={c.pixel_mixtures}, "
            f"pixel_train_bins={list(c.pixel_train_bins)}); ImageCodec.fit on the shared trainer "
            f"(steps={args.steps}, batch_size={args.batch_size}, lr={args.lr}, onecycle, seed=0)",
            "qualities": [list(q) for q in c.quality_table()],
            "lossless_level": c.lossless_level,
            "test_images": len(x_test),
        },
        "training": seconds,
        "selection": {
            "images": len(select_images[: args.select_images]),
            "candidates": candidates,
            "chosen": chosen,
        },
        "ours": ours,
        "pillow": pillow,
        "comparison": compare(ours, pillow),
        "wall_seconds_total": round(time.perf_counter() - started, 1),
        "plot": out.with_suffix(".png").name,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    plot(out.with_suffix(".png"), result)
    print(markdown(result))


if __name__ == "__main__":
    main()
