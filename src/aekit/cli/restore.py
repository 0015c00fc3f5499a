"""``aekit restore``: run an image restoration model (denoise, colorize, upscale, inpaint) on PNG/JPEG files.

One file in, one file out; or a folder in, a folder out (same file names), with a progress bar. Inputs are
never overwritten.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aekit.cli.common import (
    add_device_option,
    check_device,
    fit_settings,
    note,
    positive_float,
    positive_int,
    training_split,
)
from aekit.cli.typicality import Watch, add_strict_option
from aekit.errors import DataError

VERBS = ("restore",)
STRICT_HELP = (
    "refuse images less typical than 99.9%% of the model's training images (by what its network makes "
    "of them): exit status 2 and nothing written, instead of a warning; every image is checked before "
    "any is written"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "restore",
        help="denoise, upscale, inpaint or colorize images: built-in models, or your own",
        description="Restore PNG/JPEG images, grayscale or RGB, of any size. MODEL is a built-in name "
        "(denoise, upscale, inpaint, colorize: no training needed) or a model file from 'aekit train "
        "--task denoise|colorize|upscale|inpaint'.",
        epilog="examples:\n  aekit restore denoise noisy.png -o clean.png\n"
        "  aekit restore upscale --scale 4 small.png -o big.png\n"
        "  aekit restore inpaint photo.png --mask holes.png -o filled.png\n"
        "  aekit restore colorize old_photos/ -o coloured/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        help="a built-in model (denoise, upscale, inpaint, colorize) or a restoration model file (.aek)",
    )
    p.add_argument("input", help="a PNG/JPEG image, or a folder of them")
    p.add_argument(
        "-o", "--output", required=True, help="output image (.png/.jpg), or a folder when INPUT is a folder"
    )
    p.add_argument(
        "--mask",
        metavar="FILE",
        help="inpaint models: an image of the input's size, non-black where pixels are missing; for a "
        "folder INPUT, a mask file for all images or a folder of masks with the images' file names",
    )
    p.add_argument(
        "--tile",
        type=positive_int,
        default=256,
        metavar="PIXELS",
        help="run larger images as overlapping tiles of this side, blended without seams; bounds memory "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--scale",
        type=int,
        choices=(2, 4),
        help="the built-in upscale model's factor (default: 2)",
    )
    p.add_argument(
        "--sigma",
        type=sigma_255,
        metavar="SIGMA",
        help="the built-in (blind) denoiser: the noise's standard deviation on the 0-255 scale, when known "
        "(default: estimated from each image)",
    )
    add_device_option(p)
    add_strict_option(p, STRICT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def sigma_255(text: str) -> float:
    """--sigma: a noise level on the 0-255 scale."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give e.g. --sigma 25") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(
            f"{text} is outside 0-255; give e.g. --sigma 25 (on the 0-255 scale)"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from aekit.data.images import image_files

    source = Path(args.input).expanduser()
    if not source.exists():
        raise DataError(f"no such image or folder: {source}")
    out = Path(args.output).expanduser()
    if source.is_dir():
        if out.exists() and not out.is_dir():
            raise DataError(f"-o {out} is a file, but INPUT {source} is a folder; give an output folder")
        if out.exists() and out.resolve() == source.resolve():
            raise DataError(f"refusing to write into the input folder {source}; give another -o folder")
        jobs = [(f, out / f.name) for f in image_files(source)]
    else:
        if out.is_dir():
            raise DataError(f"-o {out} is a folder; give an output file name such as {out / source.name}")
        jobs = [(source, out)]
    _check_no_overwrite(jobs)
    restorer = _load(args.model, args.scale, args.device)
    masks = _mask_source(args.mask, source, restorer.task)
    sigma = None if args.sigma is None else args.sigma / 255
    if sigma is not None and not restorer.settings_.blind:
        raise DataError(
            f"--sigma is for the built-in blind denoiser ('aekit restore denoise ...'); {args.model} "
            + (
                "was trained on one noise level"
                if restorer.task == "denoise"
                else f"is a {restorer.task} model"
            )
        )
    watch = Watch(restorer, args.model, args.strict, what="images")
    if args.strict:  # every image before any is written: a refusal leaves nothing behind
        _check_typical(restorer, jobs, masks, args.tile, sigma, watch)
    watching = watch if watch.stored and not args.strict else None
    done = _restore_all(restorer, jobs, masks, args.tile, quiet=args.quiet, sigma=sigma, watch=watching)
    if not args.quiet:
        where = out if len(jobs) == 1 else f"{out}/ ({len(jobs)} images)"
        print(f"{restorer.task}: wrote {where} in {done:.1f} s")
    watch.report()
    return 0


def _check_typical(restorer, jobs: list[tuple[Path, Path]], masks, tile: int, sigma, watch: Watch) -> None:
    """--strict: each image's typicality (the network's encoder only), refusing if any is atypical."""
    from aekit.data.images import read_image

    for src, _ in jobs:
        _refuse_alpha(src)
        try:
            typical = restorer.typicality(read_image(src), mask=masks(src), sigma=sigma, tile=tile)
        except DataError as exc:
            raise DataError(f"{src}: {exc}") from None
        watch.add(typical, [src.name])
    watch.refuse()


def _load(model: str, scale: int | None, device: str):
    from aekit.restore import ImageRestorer
    from aekit.restore.builtin import builtin_names, is_builtin

    if is_builtin(model):
        return ImageRestorer.pretrained(model, scale=scale, device=check_device(device))
    if not Path(model).expanduser().exists():
        raise DataError(
            f"{model!r} is neither a built-in model ({', '.join(builtin_names())}) nor a model file; "
            "check the name or the path"
        )
    if scale is not None:
        note(f"--scale picks a built-in upscale model; {model} enlarges by its own factor, so it is ignored")
    return ImageRestorer.load(model, device=check_device(device))


def _check_no_overwrite(jobs: list[tuple[Path, Path]]) -> None:
    import os

    from aekit.data.images import check_image_path

    for src, dst in jobs:
        check_image_path(dst, what="output")
        if dst.exists() and os.path.samefile(src, dst):
            raise DataError(f"refusing to overwrite the input image {src}; give another -o path")


def _mask_source(mask: str | None, source: Path, task: str):
    """A function: input image path -> its mask array (or None)."""
    from aekit.data.images import read_image

    if task != "inpaint":
        if mask is not None:
            note(f"--mask is only used by inpaint models; this is a {task} model, so it is ignored")
        return lambda path: None
    if mask is None:
        raise DataError(
            "this is an inpaint model: give --mask FILE, an image of the input's size that is non-black "
            "where pixels are missing"
        )
    m = Path(mask).expanduser()
    if m.is_dir():
        if not source.is_dir():
            raise DataError(f"--mask {m} is a folder but INPUT is one image; give one mask file")
        return lambda path: read_image(_mask_in(m, path))
    fixed = read_image(m)
    return lambda path: fixed


def _mask_in(folder: Path, image: Path) -> Path:
    from aekit.data.files import IMAGE_SUFFIXES

    for suffix in (image.suffix, *IMAGE_SUFFIXES):
        candidate = folder / (image.stem + suffix)
        if candidate.is_file():
            return candidate
    raise DataError(f"no mask for {image.name} in {folder}; add {folder / (image.stem + '.png')}")


def _restore_all(
    restorer,
    jobs: list[tuple[Path, Path]],
    masks,
    tile: int,
    quiet: bool,
    sigma: float | None = None,
    watch: Watch | None = None,
) -> float:
    """Restore and write each image; with ``watch``, tally each one's typicality from the same pass."""
    import time

    from aekit.data.images import read_image, write_image

    started = time.perf_counter()
    bar = _progress(len(jobs), enabled=not quiet and len(jobs) > 1)
    try:
        for src, dst in jobs:
            _refuse_alpha(src)
            image = read_image(src)
            try:
                restored = restorer.restore(
                    image, mask=masks(src), tile=tile, sigma=sigma, return_typicality=watch is not None
                )
            except DataError as exc:  # name the file: "image 0" means nothing in a folder of hundreds
                raise DataError(f"{src}: {exc}") from None
            if watch is not None:
                restored, typical = restored
                watch.add(typical, [src.name])
            write_image(dst, restored)
            if bar is not None:
                bar.advance(bar.task_ids[0])
    finally:
        if bar is not None:
            bar.stop()
    return time.perf_counter() - started


def _refuse_alpha(path: Path) -> None:
    """Restoring an image with transparency would drop it from the output: say so instead."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            alpha = "A" in im.getbands() or "transparency" in im.info
    except (OSError, UnidentifiedImageError, ValueError):
        return  # read_image says what is wrong with the file
    if alpha:
        raise DataError(
            f"{path} has an alpha channel (transparency), which restoring would drop; flatten it to RGB "
            "or grayscale first (e.g. PIL's image.convert('RGB'))"
        )


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]restoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(file=sys.stderr),
    )
    bar.add_task("restore", total=total)
    bar.start()
    return bar


# -- training (aekit train --task denoise|colorize|upscale|inpaint) ---------------------------------------


def training_images(source: str, key: str | None = None) -> Any:
    """A folder of images as a list (their sizes may differ: the restorer cuts crops), else a data set
    (or with ``key``, that array of the file)."""
    from aekit.data.images import image_files, read_image

    folder = Path(source).expanduser()
    if folder.is_dir():
        return [read_image(f) for f in image_files(folder)]
    return training_split(source, key)


def add_train_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("image restoration (--task denoise, colorize, upscale or inpaint)")
    group.add_argument(
        "--scale", type=int, choices=(2, 3, 4), default=2, help="upscale factor (default: %(default)s)"
    )
    group.add_argument(
        "--sigma",
        type=positive_float,
        default=25.0,
        help="denoise: std of the Gaussian noise on the 0-255 scale (default: %(default)s)",
    )
    group.add_argument(
        "--mask-shape",
        choices=("boxes", "strokes", "mixed"),
        default="boxes",
        help="inpaint: shape of the holes made while training (default: %(default)s)",
    )
    group.add_argument(
        "--crop",
        type=positive_int,
        help="side of the square training crops (default: 48; 64 for --task compress, whose images that "
        "share a shape no larger train whole)",
    )
    group.add_argument(
        "--crops-per-image",
        type=positive_int,
        default=1,
        metavar="N",
        help="random crops cut from each training image (default: %(default)s)",
    )
    group.add_argument(
        "--width",
        type=positive_int,
        default=32,
        help="channels of the network's first level (default: %(default)s)",
    )


# below this PSNR gain over its input (dB) a trained model is said to have barely learned
MIN_GAIN_DB = 0.5


def psnr_line(restorer) -> str:
    """What training bought, after 'aekit train --task denoise|...': the restored crops' PSNR beside the
    input's (the noisy image, the bicubic enlargement, ...), with a hint when it barely improved."""
    p = restorer.psnr_
    crops = f"{p['crops']} {p['split']} crop{'s' if p['crops'] != 1 else ''}"
    line = (
        f"PSNR on {crops}: {p['restored']:.2f} dB restored, {p['input']:.2f} dB for {p['input_is']}: "
        f"{p['gain']:+.2f} dB"
    )
    if p["gain"] < MIN_GAIN_DB:
        line += (
            f"; the model {'is worse than' if p['gain'] < 0 else 'barely improves on'} its input: train "
            "longer (--epochs), on more images, or with a higher --lr"
        )
    return line


def build_restorer(args: argparse.Namespace, device: str, run_dir: Path):
    """--task denoise/colorize/upscale/inpaint: an ``ImageRestorer`` trained on the clean images."""
    from aekit.restore import ImageRestorer

    return ImageRestorer(
        task=args.task,
        scale=args.scale,
        noise_sigma=args.sigma / 255,
        mask=args.mask_shape,
        width=args.width,
        crop=args.crop,
        crops_per_image=args.crops_per_image,
        loss="mse" if args.loss == "auto" else args.loss,
        init=args.init,
        freeze=args.freeze,
        **fit_settings(args, device, run_dir),
    )
