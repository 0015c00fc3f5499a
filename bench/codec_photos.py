"""The photo codec on Kodak, B100 and Kodak's luma against Pillow's JPEG, WebP, AVIF and JPEG XL (issue 18).

    PYTHONPATH=src .venv/bin/python bench/codec_photos.py                  # the recorded run (see the .md)
    PYTHONPATH=src .venv/bin/python bench/codec_photos.py --images 2 --sets kodak --out /tmp/cp   # smoke run
    PYTHONPATH=src .venv/bin/python bench/codec_photos.py --model /tmp/new.aek --gray-model /tmp/gray.aek

Sets (``--sets``, default all three; ``--images N``: the first N of each, for quick runs):
- kodak: the 24 Kodak images (768x512 RGB), never trained on;
- b100: BSDS500's 100 validation images (481x321 or 321x481 RGB). The BSDS500 files are JPEGs, so these
  "originals" are JPEG-decoded already (JPEG re-coding them at q95-100 jumps to ~50 dB, above 3 bpp);
- kodak-luma: the Kodak images through Pillow's ``convert("L")`` (ITU-R 601 luma), coded as grayscale.
The aekit codec is ``--model`` (default: the built-in "photo") on the RGB sets and ``--gray-model``
(default: the built-in "photo-gray") on the luma set: a built-in name or a .aek file, loaded with
``aekit.cli.compress.load_codec``. A set whose model cannot be loaded, or has the wrong channel count, is
skipped with a note (in the output too), not measured against the baselines alone.

JPEG XL is pillow-jxl-plugin (not part of Pillow), used when installed: ``.venv/bin/pip install --no-deps
--target bench/.venv-jxl pillow-jxl-plugin`` (see bench/pillow_codecs.py); else the output says why not.

Every codec's whole ladder on every image, in the same run: aekit at each lossy quality (near-lossless
qualities, which code the pixels under a pixel head and are slow, only with ``--near-lossless``;
``--max-quality`` caps either); Pillow (bench/pillow_codecs.py: its defaults, one thread) at the qualities
of ``LADDERS``, which reach below 0.2 and above 3 bpp on Kodak. Rates are real file sizes: bpp = 8 x bytes /
(H x W) where bytes is the whole file of that one image: the Pillow file as saved, and for aekit the .aez
archive holding that one image (``ImageCodec.compress_to``: the item's payload plus the archive's header and
index, 72 bytes for a codec named "photo", which record the codec name (the built-in's name, or a model
file's stem), its fingerprint and the item's shape; the JSON has the payload bytes too). PSNR: over all
values of the uint8 image (every channel), 8-bit peak (scikit-image's, as pillow_codecs.psnr).

Figures per set:
- PSNR at 0.25 / 0.5 / 1.0 / 2.0 bpp: each image's points read at that rate (linear in log-bpp between the
  two points around it), then the mean over the images its ladder reaches there, with how many those are;
  and aekit minus each baseline over the images both reach.
- BD-rate (bench/bdrate.py: Bjontegaard with piecewise cubic (PCHIP) interpolation of log-rate against PSNR
  over the PSNR range both curves cover) of aekit against each baseline, and of WebP, AVIF and JPEG XL
  against JPEG for reference, two ways: per image, then the mean of the per-image percentages (over the
  images whose curves overlap); and once on the mean curves (mean bpp, mean PSNR over the images at each
  setting). Negative = fewer bits at equal PSNR.
- A per-image table at 0.5 bpp, with aekit minus JPEG and the count of images more than 0.5 dB under JPEG.
Speed (on Kodak, the first ``--speed-images``): encode and decode MB/s of raw pixels (H x W x 3 bytes) at
each codec's setting whose mean Kodak bpp is nearest 0.5, one image at a time, in memory: one warm-up, then
the median of ``--repeats`` runs per image; aekit times ``codec.compress`` and ``codec.decompress`` at each
of ``--speed-threads`` (1 and 2) torch threads, and the speed targets take the faster (on a machine where
other jobs hold a core, 2 threads run slower than 1); the Pillow codecs run on one thread as in the sweep.
Speeds mean something only on an otherwise idle machine: the run records the load average.
Writes PREFIX.{json,md,png} (``--out``, default bench/results/codec_photos).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bdrate import bd_psnr, bd_rate, psnr_at_rate, psnr_range
from machine import cpu_model  # bench/machine.py: the script's folder is on sys.path
from PIL import Image, features
from pillow_codecs import CODECS, QUALITIES_FROM_0, available, jxl_status, jxl_version, psnr, sweep

from aekit.atomic import write_bytes_atomic, write_text_atomic
from aekit.codec.container import ArchiveReader
from aekit.errors import AekitError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
SETS = ("kodak", "b100", "kodak-luma")
BPPS = (0.25, 0.5, 1.0, 2.0)
TABLE_BPP = 0.5
OURS = "aekit"
BASELINES = ("jpeg", "webp", "avif", "jxl")
# Every 5 for the fast codecs (q0 ~0.15-0.2 bpp on Kodak, q100 far above 3); AVIF (about 1 s per Kodak image
# here) and JPEG XL (0.3 s) every 10 plus the top, where they cross 2-3 bpp (JPEG XL's q100 is lossless only).
LADDERS = {
    "jpeg": QUALITIES_FROM_0,
    "webp": QUALITIES_FROM_0,
    "avif": (*range(0, 100, 10), 95),
    "jxl": (*range(0, 100, 10), 95, 98),
}
NAMES = {OURS: "aekit", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL"}
TARGETS = {  # issue 18
    "bd_rate_vs_jpeg_pct": -25.0,  # at most, on every set
    "kodak_psnr_at_0.5_minus_webp_db": 0.0,  # at least
    "stretch_bd_rate_vs_webp_pct": 0.0,  # at most
    "images_under_jpeg_db": 0.5,  # no image more than this under JPEG at 0.5 bpp
    "decode_MBps": 5.0,
    "encode_MBps": 3.0,
}


def load_set(name: str, limit: int | None) -> dict[str, np.ndarray]:
    """Image name -> uint8 array, sorted by name; the first ``limit`` only when given."""
    if name == "b100":
        paths = sorted((DATA / "bsds500" / "val").glob("*.jpg"))[:limit]
        return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in paths}
    with np.load(DATA / "kodak24.npz", allow_pickle=False) as f:
        images = {k: f[k] for k in sorted(f.files)[:limit]}
    if name == "kodak-luma":
        return {k: np.asarray(Image.fromarray(v).convert("L")) for k, v in images.items()}
    return images


def load_model(arg: str) -> tuple[object, dict]:
    """(codec, what the results record about it); AekitError (say, ModelFileError) if it cannot be loaded."""
    from aekit.cli.compress import load_codec
    from aekit.codec import builtin

    codec, _ = load_codec(arg)
    is_builtin = not Path(arg).expanduser().exists()
    path = builtin.builtin_path(arg) if is_builtin else Path(arg).expanduser().resolve()
    return codec, {
        "argument": arg,
        "builtin": is_builtin,
        "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "archive_name": arg if is_builtin else path.stem,  # what each .aez records (see the docstring)
        "file_bytes": path.stat().st_size,
        "fingerprint": codec.fingerprint_.hex(),
        "channels": codec.channels_,
        "qualities": [list(q) for q in codec.qualities_],
        "config": codec.net_.config.to_dict(),
    }


def qualities(codec, near_lossless: bool, max_quality: int | None) -> list[int]:
    """The qualities measured: the lossy ones (no pixel bins), the near-lossless ones on request, capped."""
    return [
        q
        for q in range(1, codec.n_qualities + 1)
        if (near_lossless or codec.qualities_[q - 1][1] == 0) and (max_quality is None or q <= max_quality)
    ]


def sweep_ours(codec, name: str, images: list[np.ndarray], qs: list[int], tmp: Path) -> list[dict]:
    """Each quality on every image, each image in its own .aez archive, sized on disk."""
    points = []
    for q in qs:
        sizes, payloads, bpps, psnrs = [], [], [], []
        for k, img in enumerate(images):
            path = tmp / f"{k}-q{q}.aez"
            size = codec.compress_to(path, [img], quality=q, codec_name=name)
            with ArchiveReader(path) as reader:
                payloads.append(len(reader[0].payload))
                rec = codec.decompress(reader)[0]
            path.unlink()
            sizes.append(size)
            bpps.append(8 * size / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(img, rec))
        points.append({"quality": q, "bytes": sizes, "payload_bytes": payloads, **_rounded(bpps, psnrs)})
        _log(codec=OURS, quality=q, bpp=np.mean(bpps), psnr=np.mean(psnrs))
    return points


def sweep_pillow(name: str, images: list[np.ndarray]) -> list[dict]:
    t = time.perf_counter()
    points = [
        {"quality": p.quality, "bytes": p.sizes, **_rounded(p.bpps, p.psnrs)}
        for p in sweep(name, images, LADDERS[name])
    ]
    _log(codec=name, settings=len(points), seconds=time.perf_counter() - t)
    return points


def _rounded(bpps: list[float], psnrs: list[float]) -> dict:
    """bpp to 6 decimals (well under one byte), PSNR to 4: the figures do not move, the JSON is shorter."""
    return {"bpp": [round(b, 6) for b in bpps], "psnr": [round(p, 4) for p in psnrs]}


def mean_curve(points: list[dict]) -> tuple[list[float], list[float]]:
    """(mean bpp, mean PSNR) over the images at each setting."""
    return [float(np.mean(p["bpp"])) for p in points], [float(np.mean(p["psnr"])) for p in points]


def image_curve(points: list[dict], i: int) -> tuple[list[float], list[float]]:
    return [p["bpp"][i] for p in points], [p["psnr"][i] for p in points]


def analyse(names: list[str], sweeps: dict[str, list[dict]]) -> dict:
    """PSNR at the target rates (per image and on the mean curve), aekit minus each baseline, BD-rates."""
    at: dict[str, dict] = {}
    for codec, points in sweeps.items():
        at[codec] = {}
        for bpp in BPPS:
            per = {n: psnr_at_rate(*image_curve(points, i), bpp) for i, n in enumerate(names)}
            got = [v for v in per.values() if v is not None]
            mb, mp = mean_curve(points)
            at[codec][str(bpp)] = {
                "mean": float(np.mean(got)) if got else None,
                "images": len(got),
                "mean_curve": psnr_at_rate(mb, mp, bpp),
                "per_image": per,
            }
    minus = {}
    for base in sweeps:
        if base == OURS:
            continue
        minus[base] = {}
        for bpp in BPPS:
            a, b = at[OURS][str(bpp)]["per_image"], at[base][str(bpp)]["per_image"]
            both = [n for n in names if a[n] is not None and b[n] is not None]
            minus[base][str(bpp)] = {
                "db": float(np.mean([a[n] - b[n] for n in both])) if both else None,
                "images": len(both),
            }
    pairs = [(OURS, b) for b in sweeps if b != OURS] + [
        (b, "jpeg") for b in sweeps if b not in (OURS, "jpeg")
    ]
    bd = [bd_pair(names, sweeps, test, ref) for test, ref in pairs if ref in sweeps]
    return {"psnr_at": at, "aekit_minus": minus, "bd": bd}


def bd_pair(names: list[str], sweeps: dict[str, list[dict]], test: str, ref: str) -> dict:
    per: dict[str, float | None] = {}
    for i, n in enumerate(names):
        try:
            per[n] = bd_rate(*image_curve(sweeps[ref], i), *image_curve(sweeps[test], i))
        except ValueError:  # no common PSNR range on this image
            per[n] = None
    got = [v for v in per.values() if v is not None]
    out = {
        "test": test,
        "reference": ref,
        "per_image_mean_pct": float(np.mean(got)) if got else None,
        "per_image_median_pct": float(np.median(got)) if got else None,
        "images": len(got),
        "per_image_pct": per,
        "mean_curve_pct": None,
        "mean_curve_psnr_range_db": None,
        "mean_curve_bd_psnr_db": None,
    }
    curves = (*mean_curve(sweeps[ref]), *mean_curve(sweeps[test]))
    try:
        out["mean_curve_pct"] = bd_rate(*curves)
        out["mean_curve_psnr_range_db"] = list(psnr_range(*curves))
        out["mean_curve_bd_psnr_db"] = bd_psnr(*curves)
    except ValueError as exc:
        out["mean_curve_note"] = str(exc)
    return out


# -- speed --------------------------------------------------------------------------------------------------


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def speed(codec_name: str, images: list[np.ndarray], setting: int, repeats: int, ours=None) -> dict:
    """MB/s of raw pixels: total bytes over the summed per-image medians (encode, decode)."""
    enc = dec = 0.0
    for img in images:
        if ours is not None:
            items = ours.compress(img, quality=setting)
            enc += _median_seconds(lambda img=img: ours.compress(img, quality=setting), repeats)
            dec += _median_seconds(lambda items=items: ours.decompress(items), repeats)
        else:
            c = CODECS[codec_name]
            data = c.encode(img, setting)
            enc += _median_seconds(lambda img=img, c=c: c.encode(img, setting), repeats)
            dec += _median_seconds(lambda data=data, img=img, c=c: c.decode(data, img), repeats)
    raw = sum(img.nbytes for img in images)
    return {"setting": setting, "encode_MBps": raw / enc / 1e6, "decode_MBps": raw / dec / 1e6}


def nearest_setting(points: list[dict], bpp: float = TABLE_BPP) -> tuple[int, float]:
    mb, _ = mean_curve(points)
    k = int(np.argmin([abs(b - bpp) for b in mb]))
    return points[k]["quality"], mb[k]


# -- the run ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--images", type=int, default=None, help="only the first N images of each set")
    ap.add_argument("--model", default="photo", help="aekit codec for the RGB sets (built-in name or .aek)")
    ap.add_argument("--gray-model", default="photo-gray", help="aekit codec for kodak-luma")
    ap.add_argument("--near-lossless", action="store_true", help="also the near-lossless qualities (slow)")
    ap.add_argument("--max-quality", type=int, default=None, help="no aekit quality above this")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the sweeps")
    ap.add_argument(
        "--speed-threads", default="1,2", help="torch thread counts for aekit's speed, comma-separated"
    )
    ap.add_argument("--speed-images", type=int, default=3, help="Kodak images timed")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per image after one warm-up")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "codec_photos", help="PREFIX")
    args = ap.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if bad := [s for s in sets if s not in SETS]:
        ap.error(f"--sets: unknown {', '.join(bad)}; choose from {', '.join(SETS)}")
    args.speed_threads = [int(n) for n in args.speed_threads.split(",")]
    load = os.getloadavg()  # 1, 5, 15 minutes: other jobs on the machine slow every timing here
    torch.set_num_threads(args.threads)
    started = time.time()
    notes: list[str] = []
    jxl = jxl_status()
    notes.append("JPEG XL: " + (f"{jxl_version()}" if jxl is None else f"not available ({jxl})"))
    print(notes[-1], flush=True)
    baselines = [b for b in BASELINES if available(b)]
    models: dict[str, dict] = {}
    loaded: dict[str, object] = {}
    results: dict[str, dict] = {}
    for name in sets:
        arg = args.gray_model if name == "kodak-luma" else args.model
        channels = 1 if name == "kodak-luma" else 3
        if arg not in loaded:
            try:
                loaded[arg], models[arg] = load_model(arg)
            except AekitError as exc:
                loaded[arg] = exc
        codec = loaded[arg]
        if isinstance(codec, Exception) or codec.channels_ != channels:
            why = str(codec) if isinstance(codec, Exception) else f"it codes {codec.channels_}-channel images"
            notes.append(f"{name}: skipped: the aekit codec {arg!r} cannot be used ({why})")
            print(notes[-1], flush=True)
            continue
        t = time.time()
        named = load_set(name, args.images)
        images = list(named.values())
        qs = qualities(codec, args.near_lossless, args.max_quality)
        if not qs:
            notes.append(f"{name}: skipped: --max-quality {args.max_quality} leaves no quality of {arg!r}")
            print(notes[-1], flush=True)
            continue
        _log(set=name, images=len(images), model=arg, qualities=qs)
        with tempfile.TemporaryDirectory() as tmp:
            sweeps = {OURS: sweep_ours(codec, models[arg]["archive_name"], images, qs, Path(tmp))}
        for b in baselines:
            sweeps[b] = sweep_pillow(b, images)
        results[name] = {
            "model": arg,
            "images": list(named),
            "sizes": sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images}),
            "seconds": round(time.time() - t, 1),
            "sweeps": sweeps,
            **analyse(list(named), sweeps),
        }
    speeds = None
    if "kodak" in results:
        speeds = measure_speed(args, results["kodak"], loaded[args.model])
    else:
        notes.append("speed: not measured (it is measured on Kodak, which this run skipped)")
    result = {
        "command": "PYTHONPATH=src .venv/bin/python "
        + " ".join(["bench/codec_photos.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads_sweep": args.threads,
            "torch_threads_speed": args.speed_threads,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
        },
        "versions": {
            "pillow": Image.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"),
            "webp": features.version("webp"),
            "avif": features.version("avif"),
            "jxl": jxl_version(),
        },
        "partial": args.images is not None or set(sets) != set(SETS),
        "ladders": {OURS: "lossy qualities" + (" and near-lossless" if args.near_lossless else "")}
        | {b: list(LADDERS[b]) for b in baselines},
        "notes": notes,
        "models": models,
        "targets": TARGETS,
        "sets": results,
        "speed": speeds,
        "seconds": round(time.time() - started, 1),
    }
    result["verdicts"] = verdicts(result)
    out = str(args.out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out + ".json", _dumps(_finite(result)))
    write_text_atomic(out + ".md", markdown(result, Path(out).name + ".png"))
    write_bytes_atomic(out + ".png", rd_png(result))
    print(f"wrote {out}.json, {out}.md and {out}.png ({result['seconds']} s)")


def measure_speed(args, kodak: dict, codec) -> dict:
    """One row per codec (per torch thread count for aekit) at its setting nearest 0.5 bpp on Kodak."""
    images = list(load_set("kodak", min(args.speed_images, len(kodak["images"]))).values())
    rows = []
    for name, points in kodak["sweeps"].items():
        setting, bpp = nearest_setting(points)
        for threads in args.speed_threads if name == OURS else [1]:
            if name == OURS:
                torch.set_num_threads(threads)
                s = speed(name, images, setting, args.repeats, ours=codec)
            else:
                s = speed(name, images, setting, args.repeats)
            rows.append({"codec": name, "threads": threads, "kodak_mean_bpp": bpp, **s})
            _log(speed=name, threads=threads, **s)
    torch.set_num_threads(args.threads)
    return {"images": len(images), "repeats": args.repeats, "rows": rows}


def verdicts(r: dict) -> list[dict]:
    """Each issue-18 target on what this run measured: value(s) and met (True, False; None: not measured).

    A BD-rate target counts as met only when both readings (per image, mean curves) meet it.
    """
    t, out = r["targets"], []

    def add(what: str, values: dict, at_most: float | None, at_least: float | None, fmt: str) -> None:
        got = [v for v in values.values() if v is not None]
        met = (
            None
            if not got
            else all((at_most is None or v <= at_most) and (at_least is None or v >= at_least) for v in got)
        )
        out.append({"target": what, "values": values, "met": met, "format": fmt})

    for name in SETS:
        s = r["sets"].get(name)
        bd = {(b["test"], b["reference"]): b for b in s["bd"]} if s else {}
        for ref, key, label in (
            ("jpeg", "bd_rate_vs_jpeg_pct", ""),
            ("webp", "stretch_bd_rate_vs_webp_pct", " (stretch)"),
        ):
            b = bd.get((OURS, ref), {})
            add(
                f"{name}{label}: BD-rate vs {NAMES[ref]} <= {t[key]:g}%",
                {"per image": b.get("per_image_mean_pct"), "mean curves": b.get("mean_curve_pct")},
                t[key],
                None,
                "+.1f",
            )
        under, compared = under_jpeg(s, t["images_under_jpeg_db"]) if s else ([], 0)
        add(
            f"{name}: no image more than {t['images_under_jpeg_db']:g} dB under JPEG at {TABLE_BPP} bpp",
            {"images under": len(under) if compared else None},
            0,
            None,
            "d",
        )
        out[-1]["values"]["of images compared"] = compared
    k = r["sets"].get("kodak")
    add(
        f"kodak: PSNR at {TABLE_BPP} bpp >= WebP's (images both reach)",
        {"aekit - WebP dB": k and k["aekit_minus"].get("webp", {}).get(str(TABLE_BPP), {}).get("db")},
        None,
        t["kodak_psnr_at_0.5_minus_webp_db"],
        "+.2f",
    )
    ours = [row for row in r["speed"]["rows"] if row["codec"] == OURS] if r["speed"] else []
    for way in ("decode", "encode"):
        best = max(ours, key=lambda row: row[way + "_MBps"], default={})
        tried = "/".join(str(row["threads"]) for row in ours)
        add(
            f"{way} >= {t[way + '_MBps']:g} MB/s (Kodak; the faster of {tried or '?'} torch threads: "
            f"{best.get('threads', '?')})",
            {"MB/s": best.get(way + "_MBps")},
            None,
            t[way + "_MBps"],
            ".2f",
        )
    return out


def under_jpeg(s: dict, margin: float) -> tuple[list[str], int]:
    """The images where aekit is more than ``margin`` dB under JPEG at 0.5 bpp, and how many both reach."""
    a = s["psnr_at"][OURS][str(TABLE_BPP)]["per_image"]
    j = s["psnr_at"].get("jpeg", {}).get(str(TABLE_BPP), {}).get("per_image", {})
    both = [n for n in s["images"] if a[n] is not None and j.get(n) is not None]
    return [n for n in both if a[n] < j[n] - margin], len(both)


# -- output -------------------------------------------------------------------------------------------------


def _log(**fields) -> None:
    print(
        json.dumps(
            {k: (round(float(v), 4) if isinstance(v, float | np.floating) else v) for k, v in fields.items()}
        ),
        flush=True,
    )


def _dumps(doc: dict) -> str:
    """JSON, indented, with each list of numbers or names on one line (the per-image lists are long)."""
    text = json.dumps(doc, indent=1)
    flat = re.compile(r"\[\n\s*([^\[\]{}]*?)\n\s*\]")
    return flat.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _finite(x):
    """JSON without Infinity/NaN: an exact reconstruction's PSNR is written as null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    return x


def _f(v, fmt: str = ".2f") -> str:
    return "n/a" if v is None else f"{v:{fmt}}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:+.1f}%"


def markdown(r: dict, png: str) -> str:
    m, v = r["machine"], r["versions"]
    lines = [
        "# The photo codec on Kodak, B100 and Kodak luma against JPEG, WebP, AVIF and JPEG XL (issue 18)",
        "",
        f"`{r['command']}`",
        "",
        f"{r['date']}, {m['cpu']}, {m['cores']} cores (1-minute load average "
        f"{m['load_average_at_start'][0]:.1f} at the start, {m['load_average_at_end'][0]:.1f} at the end, "
        "this run's own included: above ~1, other jobs shared the CPU and slowed the timings), "
        f"Python {m['python']}, torch {m['torch']} ({m['torch_threads_sweep']} thread in the sweeps), "
        f"Pillow {v['pillow']} (libjpeg-turbo {v['libjpeg_turbo']}, libwebp {v['webp']}, libavif {v['avif']}"
        f"{', ' + v['jxl'] if v['jxl'] else ''}). {r['seconds']} s in all.",
        "",
    ]
    if r["partial"]:
        lines += ["**Partial run** (a subset of the sets or images): not the issue's figures.", ""]
    lines += [f"- {n}" for n in r["notes"]]
    for arg, mod in r["models"].items():
        lines.append(
            f"- aekit model `{arg}`: `{mod['path']}` ({mod['file_bytes']:,} bytes, fingerprint "
            f"`{mod['fingerprint']}`, {mod['channels']} channel(s), qualities (latent level, pixel bins) "
            f"{', '.join(f'{a}/{b}' for a, b in mod['qualities'])})"
        )
    lines += [
        "",
        "Rates are whole files, one image per file (Pillow's file as saved; aekit's .aez archive of that "
        "image: the payload plus the archive's header and index, 72 bytes for the name 'photo'); "
        "bpp = 8 x bytes / pixels. PSNR over all 8-bit values. Ladders: aekit's "
        f"{r['ladders'][OURS]}; "
        + "; ".join(f"{NAMES[b]} q{', '.join(map(str, q))}" for b, q in r["ladders"].items() if b != OURS)
        + ". Conventions in the docstring of bench/codec_photos.py.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for t in r["verdicts"]:
        unit = "%" if "BD-rate" in t["target"] else ""
        vals = ", ".join(
            f"{k} {_f(x, t['format'])}{unit if x is not None else ''}" for k, x in t["values"].items()
        )
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {vals} | {met} |")
    lines += [
        "",
        "A BD-rate target is met only when both readings are (per image: the mean of the per-image "
        "BD-rates; mean curves: one BD-rate between the curves of the per-setting means).",
    ]
    for name, s in r["sets"].items():
        lines += set_markdown(name, s)
    if r["speed"]:
        sp = r["speed"]
        lines += [
            "",
            f"## Speed (Kodak, first {sp['images']} images; MB/s of raw RGB pixels; one warm-up, median of "
            f"{sp['repeats']} per image)",
            "",
            "| codec | setting (nearest 0.5 bpp) | Kodak mean bpp there | threads | encode MB/s "
            "| decode MB/s |",
            "|---|---|---|---|---|---|",
        ]
        for row in sp["rows"]:
            threads = f"{row['threads']} torch" if row["codec"] == OURS else "1 (library)"
            lines.append(
                f"| {NAMES[row['codec']]} | q{row['setting']} | {row['kodak_mean_bpp']:.3f} | {threads} | "
                f"{row['encode_MBps']:.2f} | {row['decode_MBps']:.2f} |"
            )
    lines += ["", f"![mean rate-distortion curves]({png})", ""]
    return "\n".join(lines)


def set_markdown(name: str, s: dict) -> list[str]:
    n = len(s["images"])
    codecs = list(s["sweeps"])
    what = {
        "kodak": "Kodak, RGB",
        "b100": "B100 (BSDS500 val), RGB; the originals are JPEG-decoded already",
        "kodak-luma": "Kodak luma (Pillow convert('L')), grayscale; WebP codes it as YUV with flat chroma",
    }[name]
    lines = [
        "",
        f"## {what}: {n} images ({', '.join(s['sizes'])}), model `{s['model']}`, {s['seconds']} s",
        "",
        "PSNR (dB) at each rate: per image in log-bpp, mean over the images the codec reaches (how many; "
        "the mean curves read at each rate are in the JSON):",
        "",
        "| codec | " + " | ".join(f"{b} bpp" for b in BPPS) + " |",
        "|---|" + "---|" * len(BPPS),
    ]
    for c in codecs:
        cells = [f"{_f(x['mean'])} ({x['images']}/{n})" for x in s["psnr_at"][c].values()]
        lines.append(f"| {NAMES[c]} | " + " | ".join(cells) + " |")
    for base, per in s["aekit_minus"].items():
        cells = [f"{_f(x['db'], '+.2f')} ({x['images']})" for x in per.values()]
        lines.append(f"| aekit - {NAMES[base]} (images both reach) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "BD-rate (% bits at equal PSNR; negative: fewer): per image then the mean (median; images with a "
        "common PSNR range), and on the mean curves (over their common PSNR range; BD-PSNR there):",
        "",
        "| codec | against | per image: mean | median | images | mean curves | PSNR range (dB) "
        "| BD-PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in s["bd"]:
        rng = b["mean_curve_psnr_range_db"]
        span = "n/a" if rng is None else f"{rng[0]:.2f}-{rng[1]:.2f}"
        lines.append(
            f"| {NAMES[b['test']]} | {NAMES[b['reference']]} | {_pct(b['per_image_mean_pct'])} | "
            f"{_pct(b['per_image_median_pct'])} | {b['images']}/{n} | "
            f"{_pct(b['mean_curve_pct'])} | {span} | {_f(b['mean_curve_bd_psnr_db'], '+.2f')} |"
        )
    key = str(TABLE_BPP)
    bd_jpeg = next(
        (b["per_image_pct"] for b in s["bd"] if b["test"] == OURS and b["reference"] == "jpeg"), {}
    )
    under, compared = under_jpeg(s, TARGETS["images_under_jpeg_db"])
    lines += [
        "",
        f"Per image at {TABLE_BPP} bpp (dB; n/a: the ladder misses {TABLE_BPP} bpp on that image): "
        f"**{len(under)}** of the {compared} images aekit and JPEG both reach are more than "
        f"{TARGETS['images_under_jpeg_db']} dB under JPEG"
        + (f" ({', '.join(under)})" if under else "")
        + ":",
        "",
        "| image | " + " | ".join(NAMES[c] for c in codecs) + " | aekit - JPEG | BD-rate vs JPEG |",
        "|---|" + "---|" * (len(codecs) + 2),
    ]
    for img in s["images"]:
        vals = [s["psnr_at"][c][key]["per_image"][img] for c in codecs]
        j = s["psnr_at"].get("jpeg", {}).get(key, {}).get("per_image", {}).get(img)
        diff = None if vals[0] is None or j is None else vals[0] - j
        lines.append(
            f"| {img} | " + " | ".join(_f(x) for x in vals) + f" | {_f(diff, '+.2f')} | "
            f"{_pct(bd_jpeg.get(img))} |"
        )
    pts = s["sweeps"][OURS]
    lines += [
        "",
        "aekit's mean curve (per quality: mean bytes per file, of which payload, bpp, PSNR):",
        "",
        "| quality | bytes | payload | bpp | PSNR (dB) |",
        "|---|---|---|---|---|",
    ]
    for p in pts:
        lines.append(
            f"| {p['quality']} | {np.mean(p['bytes']):,.0f} | {np.mean(p['payload_bytes']):,.0f} | "
            f"{np.mean(p['bpp']):.3f} | {np.mean(p['psnr']):.2f} |"
        )
    return lines


def rd_png(r: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(r["sets"])
    fig, axes = plt.subplots(
        1, max(1, len(sets)), figsize=(5.2 * max(1, len(sets)), 4.4), dpi=110, squeeze=False
    )
    for ax, name in zip(axes[0], sets, strict=False):
        s = r["sets"][name]
        for c, points in s["sweeps"].items():
            b, p = mean_curve(points)
            ok = [k for k in range(len(b)) if np.isfinite(p[k]) and 0.08 <= b[k] <= 4.5]
            ax.plot([b[k] for k in ok], [p[k] for k in ok], "o-" if c == OURS else ".-", ms=3, label=NAMES[c])
        for bpp in BPPS:
            ax.axvline(bpp, color="0.85", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlim(0.1, 4.5)
        ax.set_xticks(BPPS, [str(b) for b in BPPS])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("bits per pixel (whole files)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{name} ({len(s['images'])} images): means per setting")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if not sets:
        axes[0][0].text(0.5, 0.5, "no set measured", ha="center")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


if __name__ == "__main__":
    main()
