"""``aekit compress`` / ``aekit decompress``: images or an .npy stack to one ``.aez`` archive and back.

A model is a codec file (``aekit train --task compress``) or a built-in name such as ``photo``. The archive
records which (the built-in name, or the codec file's absolute path), so ``decompress`` needs no model
argument; ``--model`` overrides it. Outputs are written atomically and never replace an input.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aekit.cli.common import (
    add_threads_option,
    check_output,
    non_negative_int,
    note,
    positive_float,
    positive_int,
)
from aekit.cli.typicality import Watch, add_strict_option
from aekit.errors import ConfigError, DataError, ModelFileError

VERBS = ("compress", "decompress")
STACK_SUFFIXES = (".npy",)
STACK_CHUNK_BYTES = 16 << 20  # an .npy stack is read this much at a time
STRICT_HELP = (
    "refuse images less typical than 99.9%% of the codec's training images (by the bits per pixel its "
    "entropy model gives them): exit status 2 and no archive, instead of a warning"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compress",
        help="compress images (PNG/JPEG files, a folder, or an .npy stack) into one .aez archive",
        description="Compress 8-bit grayscale or RGB images with a learned codec ('aekit train --task "
        "compress', or a built-in one such as 'photo') into one .aez archive.",
    )
    p.add_argument("model", help="a codec file (.aek) or a built-in codec name (e.g. photo)")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="PNG/JPEG images, folders of them, or one .npy stack"
    )
    p.add_argument("-o", "--output", required=True, help="the archive to write, e.g. batch.aez")
    p.add_argument(
        "--quality",
        type=positive_int,
        default=None,
        metavar="Q",
        help="1 (smallest files) to the codec's best (8 for the default codecs); default: the codec's "
        "default quality, else its best",
    )
    p.add_argument("--lossless", action="store_true", help="code every pixel exactly (bit-exact round trip)")
    p.add_argument(
        "--target-bpp",
        type=positive_float,
        metavar="X",
        help="give each image the highest quality whose coded size is at most X bits per pixel (quality 1 "
        "when none is); instead of --quality",
    )
    p.add_argument(
        "--target-psnr",
        type=positive_float,
        metavar="DB",
        help="give each image the lowest quality whose decoded image reaches DB dB PSNR (the best quality "
        "when none does); instead of --quality",
    )
    p.add_argument(
        "--refine",
        type=non_negative_int,
        default=0,
        metavar="STEPS",
        help="spend STEPS gradient steps per image improving its latent for the decoder (e.g. 50): smaller "
        "or better files from the same model and format, encoding ~100x slower; lossy qualities only",
    )
    add_strict_option(p, STRICT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    add_threads_option(p)  # for --refine: the coding passes run on one thread whatever it says

    d = subparsers.add_parser(
        "decompress",
        help="decompress an .aez archive to a folder of PNG images or one .npy stack",
        description="Decompress an .aez archive made by 'aekit compress'. The codec recorded in the "
        "archive is used unless --model names another.",
    )
    d.add_argument("archive", help="an .aez archive")
    d.add_argument(
        "-o", "--output", required=True, help="a folder for PNG images, or a .npy file for one stack"
    )
    d.add_argument("--model", help="the codec file or built-in name to use instead of the recorded one")
    d.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def run(args: argparse.Namespace) -> int:
    return {"compress": _compress, "decompress": _decompress}[args.command](args)


# -- models ------------------------------------------------------------------------------------------------


def load_codec(model: str) -> tuple[Any, str]:
    """(codec, the name archives record): a built-in name, else a codec file's absolute path."""
    from aekit.codec import builtin
    from aekit.codec.codec import ImageCodec

    path = Path(model).expanduser()
    if not path.exists():
        if builtin.is_builtin(model):
            return ImageCodec.load(builtin.builtin_path(model), name=model), model
        raise ModelFileError(
            f"no such codec file: {path}; give a codec file (.aek) or a built-in name "
            f"({', '.join(builtin.BUILTIN_MODELS)})"
        )
    codec = ImageCodec.load(path)
    return codec, codec.name_


def _model_for(model: str, first: Any) -> str:
    """The model to compress with: a built-in for RGB photos hands grayscale images (judged by the first)
    to its grayscale twin when that is installed (``aekit.codec.builtin.GRAY_TWINS``)."""
    from aekit.codec import builtin

    twin = builtin.gray_twin(model) if builtin.is_builtin(model) and not Path(model).exists() else None
    grayscale = first is not None and getattr(first, "ndim", 3) == 2
    return twin if twin is not None and grayscale else model


# -- compress ----------------------------------------------------------------------------------------------


def _compress(args: argparse.Namespace) -> int:
    target = _target(args)
    out = check_output(args.output, *args.inputs)
    inputs = _inputs(args.inputs)
    source = inputs.images()
    first = next(source, None)  # read before the codec is chosen: a grayscale image picks a gray twin
    codec, name = load_codec(_model_for(args.model, first))
    if args.quality is not None and args.lossless:
        note("--lossless codes every pixel exactly; --quality is ignored")
    quality = None if target else args.quality or codec.default_quality
    meta = {"codec": name, **inputs.meta}
    started = time.perf_counter()
    bar = _progress("compressing", len(inputs), enabled=not args.quiet and len(inputs) > 1)
    raw = 0
    watch = Watch(codec, args.model, args.strict, what="images")

    def images():
        nonlocal raw
        for k, image in enumerate(itertools.chain([] if first is None else [first], source)):
            raw += image.nbytes
            if watch.stored:
                _tally(codec, image, inputs.label(k), watch)
            yield image
            if bar is not None:
                bar.advance(bar.task_ids[0])
        watch.refuse()  # --strict: before the archive is closed, so none is written

    try:
        size = _with_labels(
            lambda: codec.compress_to(
                out,
                images(),
                quality,
                args.lossless,
                inputs.names,
                name,
                meta,
                refine=args.refine,
                target_bpp=args.target_bpp,
                target_psnr=args.target_psnr,
            ),
            inputs,
        )
    finally:
        if bar is not None:
            bar.stop()
    if not args.quiet:
        mode = "lossless" if args.lossless else f"quality {quality}"
        if target:
            mode = f"{target}: {_chosen(out, args.target_bpp)}"
        mode += f", {args.refine} refinement steps" if args.refine else ""
        ratio = f" ({size / raw:.1%} of the raw pixels)" if raw else ""
        print(
            f"compressed {len(inputs)} image(s) ({raw} bytes of pixels) into {out}: {size} bytes{ratio}, "
            f"{mode}, in {time.perf_counter() - started:.1f} s"
        )
    watch.report()
    return 0


def _target(args: argparse.Namespace) -> str:
    """The per-image target asked for, as the summary names it ('' for none), refusing conflicting options."""
    given = [
        (option, value)
        for option, value in (("--target-bpp", args.target_bpp), ("--target-psnr", args.target_psnr))
        if value is not None
    ]
    if not given:
        return ""
    if len(given) == 2:
        raise ConfigError("--target-bpp and --target-psnr each pick every image's quality; give one of them")
    option, value = given[0]
    for other, used in (("--quality", args.quality is not None), ("--lossless", args.lossless)):
        if used:
            raise ConfigError(
                f"{option} picks each image's quality itself; {other} cannot be given with it: drop one"
            )
    return f"target {value:g} {'bpp' if option == '--target-bpp' else 'dB PSNR'}"


def _chosen(archive: Path, target_bpp: float | None) -> str:
    """'qualities 3-5, mean 4.2': the qualities a target search gave the archive's items, and how many of
    them a bpp target could not fit even at quality 1."""
    from aekit.codec.container import ArchiveReader
    from aekit.codec.targets import bits_per_pixel

    with ArchiveReader(archive) as reader:
        items = [(item.quality, bits_per_pixel(item)) for item in reader]
    if not items:
        return "no images"
    qualities = [q for q, _ in items]
    low, high = min(qualities), max(qualities)
    text = f"quality {low}" if low == high else f"qualities {low}-{high}"
    text += f", mean {sum(qualities) / len(qualities):.1f}"
    over = sum(1 for q, bpp in items if target_bpp is not None and bpp > target_bpp)
    return text + (f", {over} image(s) above the target even at quality 1" if over else "")


def _tally(codec, image, label: str, watch: Watch) -> None:
    """One image's typicality (one pass of the codec's analysis transform) into ``watch``."""
    try:
        typical = codec.typicality([image])  # a list: an RGB image is never taken for a stack of rows
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None
    watch.add(typical, [label])


def _with_labels(action, inputs: _Files | _Stack) -> Any:
    """Run ``action``; an error about "image k" names the file (or stack row) it came from."""
    try:
        return action()
    except DataError as exc:
        match = re.match(r"image (\d+) ", str(exc))
        if match and int(match.group(1)) < len(inputs):
            raise DataError(f"{inputs.label(int(match.group(1)))}: {exc}") from None
        raise


class _Files:
    """Image files, read one at a time as the codec asks for them; archive items keep their names."""

    meta: dict[str, Any] = {}

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.names = [_item_name(f) for f in files]

    def __len__(self) -> int:
        return len(self.files)

    def label(self, k: int) -> str:
        return self.names[k]

    def images(self) -> Iterator[Any]:
        from aekit.data.images import read_image

        for f in self.files:
            try:
                yield read_image(f)
            except DataError as exc:
                raise DataError(f"{_item_name(f)}: {exc}") from None


def _item_name(path: Path) -> str:
    """The file's name as an archive stores it: UTF-8 text. A name whose bytes are not UTF-8 (Latin-1
    'café.png' is c, a, f, byte e9, .png) reaches Python with a lone surrogate for each odd byte, which no
    text encoding stores; those bytes are kept as escapes instead ('caf\\xe9.png': readable, and
    decompress turns each escape into '_')."""
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


class _Stack:
    """An .npy stack (N, H, W[, 3]) read in chunks of whole images with pread: the stack is never all in
    memory, whatever its size, and nothing per image is kept but the codec's own index entry."""

    names = None  # stack items are unnamed: decompress names them by position

    def __init__(self, path: Path) -> None:
        from aekit.data.sources import NpySource

        try:
            self.source = NpySource(path)
        except DataError as exc:
            raise DataError(f"{path} is not a readable .npy array ({exc})") from None
        shape = self.source.shape
        if len(shape) not in (3, 4) or shape[0] == 0:
            raise DataError(
                f"{path} holds an array of shape {shape}; expected a stack of images (N, H, W) or "
                "(N, H, W, 3)"
            )
        self.path = path
        self.meta = {"source": _item_name(path), "stack_shape": list(shape)}

    def __len__(self) -> int:
        return len(self.source)

    def label(self, k: int) -> str:
        return f"{self.path.name}[{k}]"

    def images(self) -> Iterator[Any]:
        rows = max(1, STACK_CHUNK_BYTES // max(1, self.source.row_bytes))
        for chunk in self.source.iter_chunks(rows):
            yield from chunk  # (H, W[, 3]) views of the chunk


def _inputs(inputs: list[str]) -> _Files | _Stack:
    """The images to compress: one .npy stack, or image files and folders of them."""
    from aekit.data.images import image_files

    paths = [Path(s).expanduser() for s in inputs]
    for p in paths:
        if not p.exists():
            raise DataError(f"no such image, folder or .npy file: {p}")
    stacks = [p for p in paths if p.is_file() and p.suffix.lower() in STACK_SUFFIXES]
    if stacks:
        if len(paths) > 1:
            raise DataError("give one .npy stack on its own, or image files and folders (not both)")
        return _Stack(stacks[0])
    files: list[Path] = []
    for p in paths:
        files.extend(image_files(p) if p.is_dir() else [p])
    return _Files(files)


# -- decompress --------------------------------------------------------------------------------------------


def _decompress(args: argparse.Namespace) -> int:
    import numpy as np

    from aekit.atomic import atomic_folder, atomic_path
    from aekit.codec.container import ArchiveReader
    from aekit.data.images import write_image
    from aekit.data.writers import open_writer

    source = Path(args.archive).expanduser()
    if not source.is_file():
        raise DataError(f"no such archive: {source}")
    out = check_output(args.output, str(source)) if args.output.endswith(".npy") else Path(args.output)
    started = time.perf_counter()
    with ArchiveReader(source) as reader:
        codec = _codec_for(reader, args.model)
        codec.check_archive(reader)
        n = len(reader)
        bar = _progress("decompressing", n, enabled=not args.quiet and n > 1)
        try:
            if out.suffix.lower() == ".npy" and n == 0:
                with atomic_path(out) as tmp, open(tmp, "wb") as f:
                    np.save(f, np.zeros((0,), np.uint8))
            elif out.suffix.lower() == ".npy":  # written image by image: the stack is never all in memory
                first = None
                with open_writer(out) as writer:
                    for image in codec.decode_stream(reader, f" of {source}"):
                        if first is not None and image.shape != first:
                            raise DataError(
                                f"{source} holds images of different sizes ({_size(first)} and "
                                f"{_size(image.shape)}); they cannot form one .npy stack: give an output "
                                "folder instead"
                            )
                        first = image.shape
                        writer.write({"x": image[None]})
                        if bar is not None:
                            bar.advance(bar.task_ids[0])
            else:
                if out.exists() and not out.is_dir():
                    raise DataError(f"-o {out} is a file; give a folder for the images, or a .npy file name")
                used: set[str] = set()
                names: list[str] = []

                def items():
                    for item in reader:
                        names.append(item.name)  # decode_stream reads a batch's items before it yields them
                        yield item

                # All images are written to a temporary folder first: a damaged item half-way leaves -o as
                # it was, not with the images before it.
                with atomic_folder(out) as folder:
                    for k, image in enumerate(codec.decode_stream(items(), f" of {source}")):
                        write_image(folder / _file_name(names[k], k, used), image)
                        if bar is not None:
                            bar.advance(bar.task_ids[0])
        finally:
            if bar is not None:
                bar.stop()
    if not args.quiet:
        where = out if out.suffix.lower() == ".npy" else f"{out}/"
        print(
            f"decompressed {n} image(s) from {source} into {where} in {time.perf_counter() - started:.1f} s"
        )
    return 0


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" + (" RGB" if len(shape) == 3 else "")


def _codec_for(reader, model: str | None):
    if model is not None:
        return load_codec(model)[0]
    recorded = reader.meta.get("codec") if isinstance(reader.meta, dict) else None
    recorded = recorded or reader.codec_name
    if not recorded:
        raise ModelFileError(f"{reader.path} does not record its codec; give it with --model PATH")
    try:
        return _recorded_codec(str(recorded), reader.fingerprint)
    except ModelFileError as exc:
        raise ModelFileError(
            f"{reader.path} was made with codec {recorded!r}, which cannot be opened here ({exc}); "
            "give the codec with --model PATH"
        ) from None


def _recorded_codec(recorded: str, fingerprint: bytes):
    """The codec an archive records: a built-in whose current model is not the archive's is looked for
    among that name's earlier models (by fingerprint), so archives outlive a retrained built-in."""
    from aekit.codec import builtin

    codec = load_codec(recorded)[0]
    if codec.fingerprint_ == fingerprint or not builtin.is_builtin(recorded):
        return codec  # a mismatch is then refused by check_archive, naming both fingerprints
    for name in builtin.earlier(recorded):
        older = load_codec(name)[0]
        if older.fingerprint_ == fingerprint:
            older._name = recorded  # it answers to the name the archive records
            return older
    return codec


def _file_name(name: str, k: int, used: set[str]) -> str:
    """A safe PNG file name for item k: the stored name's stem (untrusted: no folders, no odd characters)."""
    name = re.sub(r"\\x[0-9a-fA-F]{2}", "_", name)  # compress's escapes of bytes that were not UTF-8
    stem = Path(name.replace("\\", "/")).name.rsplit(".", 1)[0] if name else ""
    stem = re.sub(r"[^A-Za-z0-9._ -]", "_", stem).strip(" .")[:200] or f"item_{k:05d}"
    candidate = f"{stem}.png"
    while candidate in used:
        candidate = f"{stem}_{k}.png"
        k += 1
    used.add(candidate)
    return candidate


def _progress(label: str, total: int, enabled: bool):
    if not enabled:
        return None
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(file=sys.stderr),
    )
    bar.add_task(label, total=total)
    bar.start()
    return bar


# -- training (aekit train --task compress) ----------------------------------------------------------------


def lambdas(text: str) -> tuple[float, ...]:
    """'0.002,0.01,0.05' -> (0.002, 0.01, 0.05): one rate-distortion weight per quality level."""
    try:
        values = tuple(positive_float(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers > 0 such as 0.002,0.01,0.05, got {text!r}"
        )
    return values


# what --batch-size, --validation-fraction and --crop are for --task compress when not given: ImageCodec's
TRAIN_DEFAULTS = {"batch_size": 32, "validation_fraction": 0.05, "crop": 64}


def add_train_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("compression (--task compress)")
    group.add_argument(
        "--lambda",
        dest="lambdas",
        type=lambdas,
        metavar="L1,L2,...",
        help="rate-distortion weights, one per quality level, low to high quality (loss = bits per "
        "pixel + lambda * 255^2 * MSE); default: from the images: 8 levels from 0.0001 to 0.04 for small "
        "images of one shape (no side above --crop), from 0.0018 to 0.18 for photos",
    )
    group.add_argument(
        "--latent",
        type=positive_int,
        metavar="M",
        help="latent channels (default: 32 for small images, 64 for photos)",
    )
    group.add_argument(
        "--stages",
        type=positive_int,
        help="stride-2 stages: the latent is 2**stages times smaller per side (default: 2 for small "
        "images, 3 for photos)",
    )
    group.add_argument(
        "--steps", type=positive_int, metavar="N", help="optimizer steps (default: --epochs, or auto)"
    )


def build_codec(args: argparse.Namespace, device: str, run_dir: Path):
    """--task compress: an ``ImageCodec`` trained for rate + lambda x distortion at every quality level;
    the settings not given adapt to the images (``aekit.codec.defaults``)."""
    from aekit.codec.codec import ImageCodec

    settings = {
        "hidden": args.hidden[0] if args.hidden else 64,
        "latent": args.latent or "auto",
        "stages": args.stages or "auto",
        "lambdas": args.lambdas or "auto",
        "epochs": args.epochs,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "crop": args.crop,
        "validation_fraction": args.validation_fraction,
        "patience": args.patience or None,
        "random_state": args.seed,
        "device": device,
        "verbose": 0 if args.quiet else 1,
        "run_dir": run_dir,
        "resume": args.resume,
    }
    if args.lr is not None:
        settings["lr"] = args.lr
    return ImageCodec(**settings)


def ladder_line(codec) -> str:
    """What the fitted codec's qualities are: the ladder picked on held-out images, and the default."""
    qualities = codec.qualities_
    near = sum(1 for _, bins in qualities if bins)
    kind = f", {near} of them near-lossless (picked on held-out images)" if near else ""
    return f"{len(qualities)} qualities{kind}; compress uses quality {codec.default_quality} by default"
