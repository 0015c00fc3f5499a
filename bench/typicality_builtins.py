"""Typicality for the shipped built-in models: measure it on their training photographs, write it into their
files without touching a weight, and see how much of Kodak and of noise each one flags.

Run from the repository root (one torch thread; about 15-25 minutes on a 2-core machine):

    PYTHONPATH=src .venv/bin/python bench/typicality_builtins.py
    PYTHONPATH=src .venv/bin/python bench/typicality_builtins.py --quick   # 24 photos, writes nothing

What it does, for each built-in restorer (aekit/restore/weights/*.aek) and the photo codec
(aekit/codec/weights/photo.aek):

1. ``fit_typicality`` on the TRAINING photographs only: bsds500/train and bsds500/test (less the four
   test images the restorers' training held out as probes) and the Debian wallpaper photographs of
   /work/photo-corpus (bench/photo_corpus.py). Never Kodak, never bsds500/val. Up to 256 of them (seeded),
   each measured on its centre (at most 256 x 256).
2. Rewrites the file with the typicality entry added to its header (``aekit.tensorfile.save``, which writes
   atomically through ``aekit.atomic``), then reads it back and asserts that every tensor is bit-identical
   and the rest of the header unchanged (for the codec, its fingerprint too).
3. Measures, with the rewritten file, the share of Kodak's 24 images flagged (less typical than 99.9% of
   the training photos) as each model's users give them (denoise: Gaussian noise sigma 25, clipped and
   rounded; upscale: Kodak made 2x/4x smaller, as the restore benchmark does; inpaint: with the model's own
   random holes; colorize: Kodak in gray; the codec: Kodak itself), and of 16 uniform-noise images.

Writes bench/results/typicality_builtins.md and .json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AEKIT_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import git_version, machine, save_results  # noqa: E402

from aekit import __version__, tensorfile  # noqa: E402
from aekit.codec import ImageCodec  # noqa: E402
from aekit.codec import typicality as codec_typicality  # noqa: E402
from aekit.codec.builtin import CODECS  # noqa: E402
from aekit.restore import ImageRestorer  # noqa: E402
from aekit.restore import typicality as restore_typicality  # noqa: E402
from aekit.restore.builtin import RESTORERS  # noqa: E402
from aekit.restore.tasks import quantize  # noqa: E402
from aekit.typicality import HEADER_KEY, LIMIT  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
PHOTO_CORPUS = Path("/work/photo-corpus")
PROBE = ("100007.jpg", "101027.jpg", "103006.jpg", "104010.jpg")  # bench/train_restore_builtin.py's
SEED = 0
NOISE_IMAGES, NOISE_SIDE = 16, 128
SIGMA = 25 / 255
COST_IMAGES = 3  # Kodak images restored (or compressed at the best quality) to set the pass's cost beside


def training_photos(quick: bool) -> tuple[list[np.ndarray], list[str]]:
    """The training photographs, uint8 (H, W, 3), and their names."""
    data = Path(os.environ["AEKIT_DATA_DIR"]) / "bsds500"
    paths = [p for split in ("train", "test") for p in sorted((data / split).glob("*.jpg"))]
    paths = [p for p in paths if not (p.parent.name == "test" and p.name in PROBE)]
    paths += sorted(p for p in PHOTO_CORPUS.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if quick:
        paths = paths[::20]
    names = [f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in paths]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths], names


def kodak() -> list[np.ndarray]:
    with np.load(Path(os.environ["AEKIT_DATA_DIR"]) / "kodak24.npz", allow_pickle=False) as f:
        return [f[k] for k in sorted(f.files)]


def noise_images() -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    return list(rng.integers(0, 256, (NOISE_IMAGES, NOISE_SIDE, NOISE_SIDE, 3)).astype(np.uint8))


def rewrite(path: Path, entry: dict) -> None:
    """Add the typicality entry to the file's header; assert the weights and the rest are unchanged."""
    tensors, doc = tensorfile.load(path)
    tensorfile.save(path, tensors, {**doc, HEADER_KEY: entry})  # atomic: aekit.atomic.atomic_path
    after, new_doc = tensorfile.load(path)
    assert sorted(after) == sorted(tensors), path
    for key, t in tensors.items():
        a = after[key]
        assert a.dtype == t.dtype and a.shape == t.shape, (path, key)
        assert torch.equal(a.reshape(-1).view(torch.uint8), t.reshape(-1).view(torch.uint8)), (path, key)
    assert {k: v for k, v in new_doc.items() if k != HEADER_KEY} == {
        k: v for k, v in doc.items() if k != HEADER_KEY
    }, path


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255  # (1, 3, H, W)


def _uint8(x: torch.Tensor) -> np.ndarray:
    out = (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, C)
    return out[..., 0] if out.shape[-1] == 1 else out


def as_given(est: ImageRestorer, image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A clean photo as the model's users give it: (the degraded image, its mask or None)."""
    gen = torch.Generator().manual_seed(seed)
    clean = _tensor(image)
    if est.task == "denoise":  # the restore benchmark's level, not the training's random ones
        return _uint8(quantize(clean + SIGMA * torch.randn(clean.shape, generator=gen))), None
    obs = est.task_.observe(clean, est.settings_, gen)
    return _uint8(obs.image), None if obs.mask is None else obs.mask[0, 0].numpy()


def noise_as_given(est: ImageRestorer, image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Noise given to the model as its input is: as it is; in gray to colorize; with holes to inpaint."""
    if est.task == "colorize":
        return image[..., 0], None
    if est.task == "inpaint":
        gen = torch.Generator().manual_seed(seed)
        return image, est.task_.observe(_tensor(image), est.settings_, gen).mask[0, 0].numpy()
    return image, None


def flagged(percentiles: list[float]) -> dict:
    p = np.asarray(percentiles)
    return {
        "n": len(p),
        "flagged": int((p > LIMIT).sum()),
        "share": float((p > LIMIT).mean()),
        "median_percentile": float(np.median(p)),
        "max_percentile": float(p.max()),
    }


def restorer_row(name: str, photos: list[np.ndarray], write: bool) -> dict:
    path = RESTORERS.path(name)
    est = ImageRestorer.pretrained(name, device="cpu").set_params(random_state=SEED)
    started = time.perf_counter()
    est.fit_typicality(photos)
    fit_s = time.perf_counter() - started
    if write:
        rewrite(path, restore_typicality.header(est.typicality_, est.feature_gaussian_))
        est = ImageRestorer.pretrained(name, device="cpu")  # what ships, read back
    started = time.perf_counter()
    kodak_p = []
    for i, im in enumerate(kodak()):
        given, mask = as_given(est, im, SEED + i)
        kodak_p.append(float(est.typicality(given, mask=mask).percentile[0]))
    kodak_s = (time.perf_counter() - started) / 24
    started = time.perf_counter()
    for i, im in enumerate(kodak()[:COST_IMAGES]):  # what the typicality pass costs beside a restore
        given, mask = as_given(est, im, SEED + i)
        est.restore(given, mask=mask)
    restore_s = (time.perf_counter() - started) / COST_IMAGES
    noise_p = []
    for i, im in enumerate(noise_images()):
        given, mask = noise_as_given(est, im, SEED + i)
        noise_p.append(float(est.typicality(given, mask=mask).percentile[0]))
    row = {
        "model": name,
        "statistic": "features",
        "training_images": est.typicality_.rows,
        "fit_seconds": round(fit_s, 1),
        "seconds_per_kodak_image": round(kodak_s, 2),
        "restore_seconds_per_kodak_image": round(restore_s, 2),
        "kodak": flagged(kodak_p),
        "noise": flagged(noise_p),
        "kodak_percentiles": [round(p, 1) for p in kodak_p],
    }
    print(row, flush=True)
    return row


def codec_row(photos: list[np.ndarray], write: bool) -> dict:
    path = CODECS.path("photo")
    codec = ImageCodec.load(path, name="photo").set_params(random_state=SEED)
    fingerprint = codec.fingerprint_
    started = time.perf_counter()
    codec.fit_typicality(photos)
    fit_s = time.perf_counter() - started
    if write:
        rewrite(path, codec_typicality.header(codec.typicality_, codec.typicality_level_))
        codec = ImageCodec.load(path, name="photo")
        assert codec.fingerprint_ == fingerprint, "the codec's fingerprint changed"
    started = time.perf_counter()
    kodak_p = [float(codec.typicality(im).percentile[0]) for im in kodak()]
    kodak_s = (time.perf_counter() - started) / 24
    started = time.perf_counter()
    for im in kodak()[:COST_IMAGES]:  # what the typicality pass costs beside compressing
        codec.compress(im, quality=codec.n_qualities)
    restore_s = (time.perf_counter() - started) / COST_IMAGES
    noise_p = [float(codec.typicality(im).percentile[0]) for im in noise_images()]
    row = {
        "model": "photo (codec)",
        "statistic": "rate",
        "training_images": codec.typicality_.rows,
        "fit_seconds": round(fit_s, 1),
        "seconds_per_kodak_image": round(kodak_s, 2),
        "compress_seconds_per_kodak_image": round(restore_s, 2),
        "kodak": flagged(kodak_p),
        "noise": flagged(noise_p),
        "kodak_percentiles": [round(p, 1) for p in kodak_p],
    }
    print(row, flush=True)
    return row


def markdown(doc: dict) -> str:
    lines = [
        "# Typicality of the built-in models (bench/typicality_builtins.py)",
        "",
        f"Command: `{doc['command']}`  ",
        f"Date: {doc['date']}; aekit {doc['aekit']} ({doc['git']}); {doc['machine']['cpu']}, "
        f"{doc['machine']['cores']} cores, torch threads 1.",
        "",
        f"Measured on {doc['photos']} training photographs only (bsds500/train, bsds500/test less the four "
        "probe images, /work/photo-corpus; never Kodak or bsds500/val); each model keeps the statistic of "
        "256 of them (seeded), measured on their centre (at most 256 x 256). Each file was rewritten with "
        "the typicality entry added to its header; every tensor was read back bit-identical and the rest of "
        "the header unchanged (the codec's fingerprint too).",
        "",
        "Flagged = less typical than 99.9% of the training photos. Kodak as each model's users give it: "
        "denoise with Gaussian noise sigma 25 (clipped, rounded), upscale 2x/4x smaller, inpaint with the "
        "model's random holes, colorize in gray, the codec as it is; noise: 16 uniform-noise 128 x 128 "
        "images (gray to colorize, with holes to inpaint).",
        "",
        "| model | statistic | Kodak flagged | Kodak median / max percentile | noise flagged | fit (s) "
        "| typicality s per Kodak image | restore/compress s per Kodak image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        k, n = r["kodak"], r["noise"]
        work = r.get("restore_seconds_per_kodak_image", r.get("compress_seconds_per_kodak_image"))
        lines.append(
            f"| {r['model']} | {r['statistic']} | {k['flagged']}/{k['n']} ({k['share']:.0%}) | "
            f"{k['median_percentile']:.1f} / {k['max_percentile']:.1f} | {n['flagged']}/{n['n']} "
            f"({n['share']:.0%}) | {r['fit_seconds']} | {r['seconds_per_kodak_image']} | {work} |"
        )
    lines += ["", "Training photographs used:", "", ", ".join(doc["photo_names"]), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 20th photo; writes nothing")
    ap.add_argument("--only", nargs="+", help="these built-ins (restorer names, or photo)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos, names = training_photos(args.quick)
    print(f"{len(photos)} training photos", flush=True)
    chosen = args.only or [*RESTORERS.names(), "photo"]
    write = not args.quick
    rows = [codec_row(photos, write) if n == "photo" else restorer_row(n, photos, write) for n in chosen]
    doc = {
        "command": "PYTHONPATH=src .venv/bin/python bench/typicality_builtins.py"
        + (f" --only {' '.join(args.only)}" if args.only else ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "aekit": __version__,
        "git": git_version(),
        "machine": machine(),
        "photos": len(photos),
        "photo_names": names,
        "rows": rows,
    }
    if write:
        save_results(OUT, "typicality_builtins", doc, markdown(doc))
    else:
        print(markdown(doc))


if __name__ == "__main__":
    main()
