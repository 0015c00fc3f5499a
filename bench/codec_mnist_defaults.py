"""MNIST with the codec a user gets: `aekit train --task compress` at its defaults, then `aekit compress`.

    cd DIR && AEKIT_DATA_DIR=/work/shared/datasets aekit train --task compress --data mnist --out c.aek
    PYTHONPATH=src .venv/bin/python bench/codec_mnist_defaults.py --model DIR/c.aek --runs DIR/runs/c

No setting of the benchmark's own (bench/codec_mnist.py trains with hand-picked ones): the codec is what
the command above writes, quality ladder and default quality included. On the MNIST test set (or its first
--test images) it measures:
  - `aekit compress c.aek test.npy -o a.aez` (the default quality) and `--lossless`, run as a user runs
    them, each decoded again by `aekit decompress` (lossless: checked bit-exact image by image);
  - every other quality of the codec (bench/codec_mnist.py's measure, one process per quality), for the
    curve that WebP is compared on;
  - Pillow JPEG and WebP at qualities 5..100, PNG, WebP lossless and zstd -19 of the raw test array
    (bench/codec_mnist.py's baselines), and WebP's bytes at our PSNRs.
Targets (issue 18): at the default quality >= 3x smaller than WebP at equal PSNR; lossless below PNG and
below zstd -19 (<= 137 B per image). Training time and epochs come from the run folder.
Writes bench/results/codec_mnist_defaults.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from codec_mnist import capped_mean_psnr, compare, image_psnrs, measure_pillow, mnist
from machine import cpu_model, machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOSSLESS_TARGET = 137.0  # bytes per image: below zstd -19 of the raw array (141.8 B), the bound


def log(**row) -> None:
    print(json.dumps(row), flush=True)


def aekit(*argv: str) -> float:
    """Run the aekit command line (this checkout's), return its wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aekit", *argv], check=True, env=env)
    return time.perf_counter() - started


def through_the_cli(model: str, test: np.ndarray, tmp: Path, codec, lossless: bool) -> dict:
    """`aekit compress` at the default quality (or --lossless), then `aekit decompress`: bytes and PSNR."""
    stack, arch, out = tmp / "test.npy", tmp / f"{'lossless' if lossless else 'default'}.aez", tmp / "out.npy"
    if not stack.exists():
        np.save(stack, test)
    encode_s = aekit("compress", model, str(stack), "-o", str(arch), "--quiet", *(["--lossless"] * lossless))
    out.unlink(missing_ok=True)
    decode_s = aekit("decompress", str(arch), "-o", str(out), "--quiet")
    decoded = np.load(out)
    psnrs = image_psnrs(test, decoded)
    quality = codec.default_quality
    level, bins = codec._mode(quality, lossless)
    size = arch.stat().st_size
    row = {
        "quality": "lossless" if lossless else quality,
        "command": f"aekit compress c.aek test.npy -o a.aez{' --lossless' if lossless else ''}",
        "latent_level": level,
        "pixel_bins": bins,
        "archive_bytes": size,
        "bytes_per_image": size / len(test),
        "psnr": capped_mean_psnr(psnrs),
        "psnr_of_mean_mse": float(
            10 * math.log10(255**2 / max(np.mean((test.astype(float) - decoded) ** 2), 1e-12))
        ),
        "exact_images": int(np.isinf(psnrs).sum()),
        "max_abs_error": int(np.abs(test.astype(int) - decoded.astype(int)).max()),
        "encode_s": round(encode_s, 1),
        "decode_s": round(decode_s, 1),
    }
    if lossless:
        row["bit_exact"] = bool(np.array_equal(test, decoded))
        if not row["bit_exact"]:
            raise AssertionError("lossless round trip was not bit-exact")
    log(cli=row)
    return row


def other_qualities(model: str, codec, test: np.ndarray, tmp: Path, workers: int) -> list[dict]:
    """Every quality but the default one, with bench/codec_mnist.py's measure (one process each)."""
    from concurrent.futures import ProcessPoolExecutor

    from codec_mnist import _measure_mode

    qualities = [q for q in range(codec.n_qualities, 0, -1) if q != codec.default_quality]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_measure_mode, [(model, q, False, test, str(tmp)) for q in qualities]))


def training_record(runs: Path | None) -> dict:
    """Epochs, steps, wall time and the last learning rate of the run, from its run folder."""
    if runs is None or not (runs / "metrics.jsonl").exists():
        return {}
    history = [json.loads(line) for line in (runs / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((runs / "run.json").read_text()) if (runs / "run.json").exists() else {}
    best = min(history, key=lambda r: r.get("val_loss", math.inf))
    return {
        "epochs": len(history),
        "train_seconds": round(sum(r["seconds"] for r in history), 1),
        "wall_seconds": round(config["finished"] - config["started"], 1) if "finished" in config else None,
        "best_epoch": best["epoch"],
        "best_val_loss": best.get("val_loss"),
        "last_lr": history[-1]["lr"],
        "history": history,
    }


def markdown(result: dict) -> str:
    c, s, t = result["comparison"], result["settings"], result["training"]
    default = result["default_quality"]
    n = s["test_images"]
    lines = [
        f"The codec `aekit train --task compress --data mnist` gives with no options, on MNIST ({n:,} test "
        f"images); {result['date']}, {result['machine']['cpu']}, {result['machine']['cores']} cores "
        "(shared with other jobs).",
        "",
        "Commands (the codec's settings are all its defaults):",
        "",
        "```",
        result["train_command"],
        "aekit compress c.aek test.npy -o default.aez            # the default quality",
        "aekit compress c.aek test.npy -o lossless.aez --lossless",
        result["command"],
        "```",
        "",
        f"Codec: {s['model']}. Trained {t.get('epochs', '?')} epochs of 512 steps ({t.get('steps', '?')} "
        f"steps) in {t.get('train_seconds', 0) / 60:.0f} min of training (wall time of the whole command "
        f"{(t.get('wall_seconds') or 0) / 60:.0f} min), stopped when the held-out loss stopped improving "
        f"(best epoch {t.get('best_epoch')}, last learning rate {t.get('last_lr', 0):.0e}). Quality "
        f"ladder picked by fit on held-out training images: {s['qualities']}; default quality {default}; "
        f"lossless codes the latent at level {s['lossless_level']}.",
        "",
        "| quality | latent level | pixel bins | bytes/image (archive) | PSNR dB | WebP bytes at that PSNR "
        "| WebP / ours | JPEG / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, cmp in zip(result["ours"]["lossy"], c["at_equal_psnr"], strict=True):
        webp = f"{cmp['webp_bytes']:.1f}" if cmp.get("webp_bytes") else "out of WebP's range"
        ratio = f"{cmp['webp_over_ours']:.2f}x" if cmp.get("webp_bytes") else "-"
        jratio = f"{cmp['jpeg_over_ours']:.2f}x" if cmp.get("jpeg_bytes") else "-"
        mark = " (default)" if r["quality"] == default else ""
        lines.append(
            f"| {r['quality']}{mark} | {r['latent_level']} | {r['pixel_bins'] or '-'} | "
            f"{r['bytes_per_image']:.1f} | {r['psnr']:.2f} | {webp} | {ratio} | {jratio} |"
        )
    L = c["lossless"]
    d = result["targets"]
    lines += [
        "",
        f"Lossless (`--lossless`, bit-exact on all {n:,} images):",
        "",
        "| codec | bytes/image | vs ours |",
        "|---|---|---|",
        f"| aekit lossless (archive / {n:,}) | {L['ours']:.1f} | 1.00x |",
        f"| PNG (optimize=True) | {L['png']:.1f} | {L['png_over_ours']:.2f}x |",
        f"| WebP lossless | {L['webp_lossless']:.1f} | {L['webp_lossless'] / L['ours']:.2f}x |",
        f"| zstd -19 of the raw array | {L['zstd19_per_image']:.1f} | "
        f"{L['zstd19_per_image'] / L['ours']:.2f}x |",
        "",
        "Targets:",
        "",
        f"- default quality {default}: WebP / ours at equal PSNR = {d['default_webp_ratio']} (target >= 3): "
        f"{d['default_met']}",
        f"- lossless {L['ours']:.1f} B/image: below PNG ({L['png']:.1f}): {d['below_png']}; "
        f"<= {LOSSLESS_TARGET:.0f} B (below zstd -19's {L['zstd19_per_image']:.1f}): {d['lossless_met']}",
        "",
        "PSNR: per image, then the mean (an exact image counts as 100 dB), as in codec_mnist.md. Bytes: the "
        ".aez archive's size / images, every header byte included. Timings are on a shared machine.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="the codec 'aekit train --task compress' wrote")
    parser.add_argument("--runs", type=Path, help="its run folder (for the training record)")
    parser.add_argument(
        "--train-command",
        default="AEKIT_DATA_DIR=/work/shared/datasets aekit train --task compress --data mnist --out c.aek",
    )
    parser.add_argument("--test", type=int, default=None, help="measure on the first N test images only")
    parser.add_argument("--workers", type=int, default=2, help="processes measuring qualities side by side")
    parser.add_argument("--out", default=str(RESULTS / "codec_mnist_defaults"))
    args = parser.parse_args()

    import aekit
    from aekit.atomic import write_text_atomic
    from aekit.codec.codec import ImageCodec

    os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    started = time.perf_counter()
    _, x_test = mnist()
    test = x_test[: args.test] if args.test else x_test
    model = str(Path(args.model).resolve())
    codec = ImageCodec.load(model)
    with tempfile.TemporaryDirectory() as tmp:
        default = through_the_cli(model, test, Path(tmp), codec, lossless=False)
        lossless = through_the_cli(model, test, Path(tmp), codec, lossless=True)
        others = other_qualities(model, codec, test, Path(tmp), args.workers)
    lossy = sorted([default, *others], key=lambda r: r["quality"])
    ours = {"lossy": lossy, "lossless": lossless}
    pillow = measure_pillow(test)
    comparison = compare(ours, pillow)
    at_default = next(r for r in comparison["at_equal_psnr"] if r["quality"] == codec.default_quality)
    ratio = at_default.get("webp_over_ours")
    L = comparison["lossless"]
    training = training_record(args.runs)
    if training:
        training["steps"] = training["epochs"] * 512
    c = codec.net_.config
    result = {
        "benchmark": "codec_mnist_defaults",
        "command": "PYTHONPATH=src .venv/bin/python bench/codec_mnist_defaults.py "
        + " ".join(a if " " not in a else repr(a) for a in sys.argv[1:]),
        "train_command": args.train_command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine(), "cpu": cpu_model()},
        "versions": {"aekit": aekit.__version__},
        "settings": {
            "model": f"ImageCodec defaults: CodecNet(hidden={c.hidden}, latent={c.latent}, "
            f"stages={c.stages}, lambdas={list(c.lambdas)}, pixel_mixtures={c.pixel_mixtures}, "
            f"pixel_train_bins={list(c.pixel_train_bins)})",
            "qualities": [list(q) for q in c.quality_table()],
            "ladder_on_held_out_images": c.extra.get("ladder"),
            "lossless_level": c.lossless_level,
            "test_images": len(test),
        },
        "default_quality": codec.default_quality,
        "training": training,
        "ours": ours,
        "pillow": pillow,
        "comparison": comparison,
        "targets": {
            "default_webp_ratio": f"{ratio:.2f}x" if ratio else "out of WebP's range",
            "default_met": ("yes" if ratio >= 3 else f"NO (short by {3 - ratio:.2f}x)") if ratio else "-",
            "below_png": "yes" if L["ours"] < L["png"] else f"NO ({L['ours'] - L['png']:.1f} B above)",
            "lossless_met": "yes"
            if L["ours"] <= LOSSLESS_TARGET
            else f"NO ({L['ours'] - LOSSLESS_TARGET:.1f} B above)",
        },
        "wall_seconds_total": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text_atomic(out.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
