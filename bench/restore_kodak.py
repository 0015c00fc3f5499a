"""Image restoration on Kodak: aekit's ImageRestorer against the classical baselines, in one run.

    PYTHONPATH=src .venv/bin/python bench/restore_kodak.py               # the recorded run
    PYTHONPATH=src .venv/bin/python bench/restore_kodak.py --epochs 1 --train 1000 --kodak 2   # a smoke run

Three models (denoise at sigma 25/255, upscale x2, colorize) are trained on CIFAR-10 images only (the
10,000 JPEG test images and the 200 lossless training images of cifar10_test_jpeg.npz; 32x32 crops,
random flips and quarter turns), never on Kodak. Each is then scored on all 24 Kodak images (full size,
PSNR and SSIM from scikit-image on uint8 RGB) beside its classical baseline, from the same degraded inputs:
  denoise:  the better of Gaussian blur and median filter, each at its best parameter on these 24 images
            (an oracle choice that favours the baseline); noisy inputs are clipped and saved as uint8;
  upscale:  bicubic enlargement of the antialiased bicubic x2 downscale (torch, the same on both sides);
  colorize: the grayscale (BT.601 luma) image itself, as RGB.
Targets (issue 3): denoise >= 2 dB over its baseline, upscale >= 0.5 dB, colorize above the grayscale.
The three models train at the same time in three processes, one torch thread each (the machine has two
cores and is shared), so the wall-clock times include contention; CPU seconds are recorded beside them.
Writes bench/results/restore_kodak.{json,md} and restore_kodak.png (crops: degraded / baseline / ours /
original).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from machine import machine  # bench/machine.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "bench" / "results"
SIGMA = 25 / 255
TARGETS = {"denoise": 2.0, "upscale": 0.5, "colorize": 0.0}  # dB over the baseline
BLUR_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
MEDIAN_SIZES = (3, 5)
SHOW = ("kodim05", "kodim15", "kodim23")  # images cropped into the comparison PNG
CROP = 160
TILE = 1024  # whole Kodak images in one pass: tiling would only add the overlap's work here


def data_dir() -> Path:
    return Path(os.environ["AEKIT_DATA_DIR"])


def training_images(limit: int | None) -> np.ndarray:
    with np.load(data_dir() / "cifar10_test_jpeg.npz", allow_pickle=False) as f:
        x = np.concatenate([f["x_train200_lossless"], f["x"]])  # (10200, 32, 32, 3) uint8
    return x[:limit] if limit else x


def kodak(limit: int | None) -> dict[str, np.ndarray]:
    with np.load(data_dir() / "kodak24.npz", allow_pickle=False) as f:
        names = sorted(f.files)[:limit] if limit else sorted(f.files)
        return {k: f[k] for k in names}


# -- degradations and baselines (numpy uint8 (H, W, 3) in and out) -------------------------------------------


def degrade(task: str, clean: np.ndarray, seed: int) -> np.ndarray:
    """What a user of ``task`` would bring: made by the same code the models train with."""
    import torch

    from aekit.restore.tasks import TASKS, Settings

    x = torch.from_numpy(clean.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    obs = TASKS[task].observe(x, Settings(scale=2, noise_sigma=SIGMA), torch.Generator().manual_seed(seed))
    y = obs.image[0].permute(1, 2, 0).numpy()
    return (
        np.round(y * 255).astype(np.uint8).squeeze(-1)
        if y.shape[-1] == 1
        else np.round(y * 255).astype(np.uint8)
    )


def gaussian_blur(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(noisy.astype(np.float64), sigma=(sigma, sigma, 0))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def median(noisy: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    return median_filter(noisy, size=(size, size, 1))


def bicubic(small: np.ndarray) -> np.ndarray:
    import torch

    from aekit.restore.tasks import bicubic_up

    x = torch.from_numpy(small.transpose(2, 0, 1).astype(np.float32) / 255)[None]
    return np.round(bicubic_up(x, 2)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def gray_as_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def denoise_baseline(noisy: dict[str, np.ndarray], clean: dict[str, np.ndarray]):
    """The best of Gaussian blur and median filter, each at the parameter with the best mean PSNR."""
    from aekit.restore.metrics import psnr

    candidates = {f"gaussian blur sigma={s}": (gaussian_blur, s) for s in BLUR_SIGMAS}
    candidates.update({f"median {k}x{k}": (median, k) for k in MEDIAN_SIZES})
    scores = {}
    for label, (fn, p) in candidates.items():
        scores[label] = float(np.mean([psnr(clean[k], fn(noisy[k], p)) for k in clean]))
        print(json.dumps({"baseline": label, "psnr": round(scores[label], 3)}), flush=True)
    best = max(scores, key=scores.get)
    fn, p = candidates[best]
    return best, {k: fn(noisy[k], p) for k in noisy}, scores


# -- one task: train, restore, score -------------------------------------------------------------------------


def epochs_for(task: str, spec: str) -> int:
    if "=" not in spec:
        return int(spec)
    return int(dict(part.split("=") for part in spec.split(","))[task])


def run_task(task: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    from aekit.restore import ImageRestorer
    from aekit.restore.metrics import psnr, ssim

    train = training_images(args.train)
    est = ImageRestorer(
        task=task,
        scale=2,
        noise_sigma=SIGMA,
        width=args.width,
        depth=2,
        blocks=2,
        crop=32,
        epochs=epochs_for(task, args.epochs),
        batch_size=32,
        lr=args.lr,
        validation_fraction=0.02,
        patience=10,  # never stops these short runs early, but keeps the weights of the best epoch
        random_state=0,
        device="cpu",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    est.fit(train)
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps({"task": task, "trained_s": round(train_wall, 1), "cpu_s": round(train_cpu, 1)}),
        flush=True,
    )
    images = kodak(args.kodak)
    observed = {k: degrade(task, v, seed=i) for i, (k, v) in enumerate(images.items())}
    if task == "denoise":
        baseline_name, baseline, baseline_grid = denoise_baseline(observed, images)
    elif task == "upscale":
        baseline_name, baseline, baseline_grid = (
            "bicubic x2",
            {k: bicubic(v) for k, v in observed.items()},
            None,
        )
    else:
        baseline_name, baseline, baseline_grid = (
            "grayscale image",
            {k: gray_as_rgb(v) for k, v in observed.items()},
            None,
        )
    started = time.perf_counter()
    ours = {k: est.restore(v, tile=TILE) for k, v in observed.items()}
    restore_s = time.perf_counter() - started
    per_image = []
    for k in images:
        per_image.append(
            {
                "image": k,
                "baseline_psnr": psnr(images[k], baseline[k]),
                "ours_psnr": psnr(images[k], ours[k]),
                "baseline_ssim": ssim(images[k], baseline[k]),
                "ours_ssim": ssim(images[k], ours[k]),
            }
        )
    mean = {m: float(np.mean([r[m] for r in per_image])) for m in per_image[0] if m != "image"}
    gain = mean["ours_psnr"] - mean["baseline_psnr"]
    row = {
        "task": task,
        "baseline": baseline_name,
        **mean,
        "gain_db": gain,
        "target_db": TARGETS[task],
        "met": bool(gain >= TARGETS[task] and (task != "colorize" or gain > 0)),
        "train_wall_seconds": round(train_wall, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "restore_seconds_24_images": round(restore_s, 1),
        "epochs": len(est.history_),
        "final_val_loss": est.history_[-1].get("val_loss"),
        "parameters": int(sum(p.numel() for p in est.model_.parameters())),
        "per_image": per_image,
        "baseline_candidates": baseline_grid,
    }
    shown = [k for k in SHOW if k in images] or list(images)[:1]
    row["_crops"] = {k: _crops(task, images[k], observed[k], baseline[k], ours[k]) for k in shown}
    print(json.dumps({k: v for k, v in row.items() if k not in ("per_image", "_crops")}), flush=True)
    return row


def _crops(task: str, clean, observed, baseline, ours) -> list[np.ndarray]:
    h, w = clean.shape[:2]
    top, left = (h - CROP) // 2, (w - CROP) // 2
    if task == "upscale":  # the small image, shown at the output's size by pixel repetition
        observed = np.repeat(np.repeat(observed, 2, axis=0), 2, axis=1)
    if observed.ndim == 2:
        observed = gray_as_rgb(observed)
    return [im[top : top + CROP, left : left + CROP] for im in (observed, baseline, ours, clean)]


# -- the whole run -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="denoise,upscale,colorize")
    parser.add_argument(
        "--epochs",
        default="denoise=5,upscale=3,colorize=4",
        help="epochs per task, e.g. denoise=5,upscale=3,colorize=4, or one number for all",
    )
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--kodak", type=int, default=None, help="score only the first N Kodak images")
    parser.add_argument("--out", default=str(RESULTS / "restore_kodak"))
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=len(tasks)) as pool:
        rows = list(pool.map(run_task, tasks, [args] * len(tasks)))
    import torch

    import aekit

    result = {
        "benchmark": "restore_kodak",
        "command": "PYTHONPATH=src .venv/bin/python bench/restore_kodak.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            **machine(),
            "torch_threads": 1,
        },
        "versions": {
            "aekit": aekit.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-image": _version("skimage"),
            "scipy": _version("scipy"),
        },
        "settings": {
            "train_images": "cifar10_test_jpeg.npz: x_train200_lossless + x "
            "(10,200 32x32 RGB, mostly JPEG q75)" + (f", first {args.train}" if args.train else ""),
            "model": f"ImageRestorer(width={args.width}, depth=2, blocks=2, crop=32, epochs={args.epochs!r}, "
            f"batch_size=32, lr={args.lr}, validation_fraction=0.02, patience=10, random_state=0)",
            "test_images": f"Kodak, {len(kodak(args.kodak))} images, full size",
            "noise_sigma": "25/255, clipped to [0, 255] and rounded",
        },
        "wall_seconds_total": round(time.perf_counter() - started, 1),
        "comparison_png": Path(args.out).with_suffix(".png").name,
        "rows": [{k: v for k, v in r.items() if k != "_crops"} for r in rows],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from aekit.atomic import write_text_atomic

    write_text_atomic(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    comparison_png(out.with_suffix(".png"), rows)
    print(markdown(result))


def _version(module: str) -> str:
    import importlib

    return getattr(importlib.import_module(module), "__version__", "?")


def markdown(result: dict) -> str:
    lines = [
        f"Image restoration on Kodak ({result['settings']['test_images']}); {result['date']}, "
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores (shared), 1 torch thread per model; "
        f"`{result['command']}`",
        "",
        "| task | baseline | baseline PSNR / SSIM | ours PSNR / SSIM | gain dB | target | met "
        "| train s (CPU s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        target = "> 0 dB" if r["task"] == "colorize" else f">= {r['target_db']} dB"
        lines.append(
            f"| {r['task']} | {r['baseline']} | {r['baseline_psnr']:.2f} / {r['baseline_ssim']:.4f} | "
            f"{r['ours_psnr']:.2f} / {r['ours_ssim']:.4f} | {r['gain_db']:+.2f} | {target} | "
            f"{'yes' if r['met'] else 'NO'} | {r['train_wall_seconds']:.0f} ({r['train_cpu_seconds']:.0f}) |"
        )
    lines += [
        "",
        f"Models: {result['settings']['model']}, trained on {result['settings']['train_images']}; "
        f"never on Kodak. Train s is wall-clock with the {len(result['rows'])} model(s) training at once on "
        "the shared 2-core machine; CPU s is the training process's CPU time (one thread).",
        "Denoise inputs: Gaussian noise sigma 25/255, clipped and rounded to uint8; the baseline's "
        "parameter is "
        "the best of "
        + ", ".join(
            f"{k} ({v:.2f} dB)"
            for r in result["rows"]
            if r["baseline_candidates"]
            for k, v in r["baseline_candidates"].items()
        )
        + " on these images.",
        "Upscale: antialiased bicubic x2 downscale, rounded to uint8; baseline bicubic x2 (torch).",
        "Colorize: BT.601 luma as input; baseline the gray image as RGB.",
        f"Comparison crops: `{result['comparison_png']}` (columns: degraded, baseline, ours, original; "
        "rows: each task on " + ", ".join(SHOW) + ").",
        "",
    ]
    return "\n".join(lines)


def comparison_png(path: Path, rows: list[dict]) -> None:
    from PIL import Image

    from aekit.atomic import atomic_path
    from aekit.reports.pieces import mosaic

    grid = [np.stack(crops).astype(np.float32) / 255 for r in rows for crops in r["_crops"].values()]
    tiles = mosaic(grid, gap=4)
    with atomic_path(path) as tmp:
        Image.fromarray(np.round(tiles * 255).astype(np.uint8)).save(tmp, format="PNG")


if __name__ == "__main__":
    main()
