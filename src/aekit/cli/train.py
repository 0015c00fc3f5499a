"""``aekit train``: fit an ``AutoEncoder`` on a data set's training split and save it to one file.

The run folder (``--runs``/<stem of --out>) keeps the checkpoint and metrics.jsonl after every epoch, so
a killed run continues with the same command plus ``--resume``. Under torchrun every process trains its
slice of each batch (``aekit.training.distributed``) and rank 0 alone prints and writes.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aekit import runfolder
from aekit.cli import compress, detect, finetune, restore
from aekit.cli.common import (
    add_device_option,
    add_key_option,
    check_device,
    check_output,
    epochs_or_auto,
    fit_settings,
    fmt,
    fraction,
    non_negative_float,
    non_negative_int,
    note,
    positive_float,
    positive_int,
    sizes,
    stopped_early,
    training_data,
    training_split,
)
from aekit.errors import ConfigError

VERBS = ("train",)

# Spelled out here because importing the library's own lists would import torch; test_cli checks that
# they match aekit.losses, aekit.noise, the scaling and the family configs.
LOSSES = ("auto", "mse", "l1", "bce")
NOISES = ("gaussian", "salt_pepper", "mask")
SCALINGS = ("auto", "standard", "robust", "minmax", "none")
SPARSITIES = ("l1", "kl")
BACKBONES = ("dense", "conv")
DOWNSAMPLES = ("stride", "pool")

# Options that belong to some families only: passed to the estimator only when given, since it rejects
# them (set to anything but their default) for the other families.
FAMILY_OPTIONS = ("beta", "sparsity", "sparsity_weight", "rho", "backbone", "downsample", "kl_warmup")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an autoencoder and save it to a model file",
        description="Train an autoencoder on the training split of a data set and save it to one model file. "
        "After every epoch the run folder RUNS/<stem of OUT> holds a checkpoint and metrics.jsonl.",
    )
    p.add_argument(
        "--data",
        required=True,
        help="a data set name (digits, mnist, fashion-mnist, cifar10) or a "
        "path to .npz/.npy/.csv/.parquet or a folder of images",
    )
    add_key_option(p)
    p.add_argument("--out", required=True, metavar="OUT", help="model file to write, e.g. model.aek")
    p.add_argument(
        "--task",
        choices=tuple(TASKS),
        default="reconstruct",
        help="what the model learns: reconstruct its input (an autoencoder; default), or "
        "an application's task",
    )
    model = p.add_argument_group("model")
    model.add_argument(
        "--kind",
        default="dense",
        help="model family, e.g. dense, conv, sparse, vae or conv1d (series (N, T) or (N, T, C)) "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--code-size",
        type=code_size,
        default=32,
        metavar="K",
        help="size of the code, or auto: train an ordered code and keep the shortest prefix within "
        "--code-tolerance of the full code's error (default: %(default)s)",
    )
    model.add_argument(
        "--ordered",
        action="store_true",
        help="nested dropout: every prefix of the code is a usable smaller code (the error at each length "
        "is stored with the model; 'aekit compare --ordered' draws it)",
    )
    model.add_argument(
        "--code-tolerance",
        type=float,
        default=0.05,
        metavar="F",
        help="with --code-size auto: how much more error than the full code the kept prefix may have, "
        "relative (default: %(default)s)",
    )
    model.add_argument(
        "--hidden",
        type=sizes,
        metavar="W1,W2,...",
        help="encoder layer widths (dense) or channels (conv), e.g. 256,128; the decoder mirrors them "
        "(default: the family's)",
    )
    model.add_argument(
        "--loss",
        choices=LOSSES,
        default="auto",
        help="reconstruction loss; auto: cross-entropy (bce) for autoencoders of data in [0, 1] such as "
        "images, squared error (mse) otherwise and for restoration and detection (default: %(default)s)",
    )
    model.add_argument(
        "--scaling",
        choices=SCALINGS,
        default="auto",
        help="value scaling; auto: /255 for uint8 images, none for data in [0, 1], else standard "
        "(default: %(default)s)",
    )
    model.add_argument("--beta", type=non_negative_float, help="weight of the KL term (vae; default 1.0)")
    model.add_argument("--sparsity", choices=SPARSITIES, help="sparsity penalty (sparse; default l1)")
    model.add_argument(
        "--sparsity-weight",
        type=non_negative_float,
        metavar="W",
        help="weight of the sparsity penalty (sparse; default 0.001)",
    )
    model.add_argument(
        "--rho", type=positive_float, help="target mean activation for --sparsity kl (sparse; default 0.05)"
    )
    model.add_argument(
        "--backbone", choices=BACKBONES, help="encoder/decoder type for sparse and vae (default dense)"
    )
    model.add_argument(
        "--downsample",
        choices=DOWNSAMPLES,
        help="how a convolutional model (conv, conv1d, --backbone conv) halves and doubles its feature "
        "maps: strided convolutions, or max-pooling and up-sampling (default stride)",
    )
    model.add_argument(
        "--kl-warmup",
        type=non_negative_int,
        metavar="EPOCHS",
        help="raise the KL weight from 0 to --beta over this many epochs (vae; default 0)",
    )
    fit = p.add_argument_group("training")
    fit.add_argument(
        "--epochs",
        type=epochs_or_auto,
        default="auto",
        help="passes over the training data, or auto: a number that suits the data's size "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="(default: 128; 32 for --task compress)",
    )
    fit.add_argument(
        "--lr",
        type=positive_float,
        help="peak learning rate (default: the task's own: 6e-3 for autoencoders, 5e-4 for restoration)",
    )
    fit.add_argument(
        "--noise", choices=NOISES, help="train a denoising autoencoder with this input corruption"
    )
    fit.add_argument(
        "--noise-level",
        type=non_negative_float,
        default=0.2,
        metavar="LEVEL",
        help="noise std (gaussian) or fraction of values hit (salt_pepper, mask) (default: %(default)s)",
    )
    fit.add_argument(
        "--binarize",
        action="store_true",
        help="dynamic binarisation (--loss bce, data in [0, 1]): every batch sees each pixel as a fresh "
        "Bernoulli sample of its intensity",
    )
    fit.add_argument(
        "--validation-fraction",
        type=fraction,
        metavar="F",
        help="share of the training data held out for validation and early stopping (default: 0.1; 0.05 "
        "for --task compress)",
    )
    fit.add_argument(
        "--patience",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="stop after N epochs without a better validation loss; 0 never stops early "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for initialisation, data order and noise (default: %(default)s)",
    )
    add_device_option(fit)
    finetune.add_train_options(p)
    restore.add_train_options(p)
    detect.add_train_options(p)
    compress.add_train_options(p)
    folder = p.add_argument_group("run folder")
    folder.add_argument(
        "--runs",
        default="runs",
        metavar="DIR",
        help="parent of the run folder DIR/<stem of OUT> (default: %(default)s)",
    )
    folder.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run from its run folder; give the same settings as when it started",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notes")
    # what each option is when not given: run.json records only the options that differ from it
    p.set_defaults(option_defaults={a.dest: a.default for a in p._actions if a.dest != "help"})
    p.set_defaults(
        on_interrupt="training stopped; run the same command with --resume to continue from the last "
        "finished epoch"
    )


def run(args: argparse.Namespace) -> int:
    from aekit.models import FAMILIES

    out = check_output(args.out, args.data if Path(args.data).exists() else "", option="--out")
    if args.kind not in FAMILIES:  # before loading the data, which can take a while
        raise ConfigError(f"--kind {args.kind!r} is not a model family; choose one of {', '.join(FAMILIES)}.")
    device = check_device(args.device)
    task = TASKS[args.task]
    _task_defaults(args, task)
    if not task.fine_tunes and (args.init is not None or args.freeze is not None):
        starts = ", ".join(name for name, t in TASKS.items() if t.fine_tunes)
        raise ConfigError(
            f"--task {args.task} trains from scratch and takes no --init or --freeze (the tasks that start "
            f"from a trained model: {starts}); leave them out."
        )
    world = _check_launch(args, device)
    if world > 1 and not is_main():
        args.quiet = True  # under torchrun rank 0 alone prints, and writes run.json and the model file
    x = task.read(args.data) if args.key is None else task.read(args.data, args.key)
    run_dir = Path(args.runs) / out.stem
    if not args.resume and (run_dir / runfolder.CHECKPOINT).exists() and not args.quiet:
        note(f"starting a new run in {run_dir}, replacing the checkpoint there (--resume would continue it)")
    y = task.labels(args, x)  # checked before anything trains
    est = task.build(args, device, run_dir)
    made = write_run_config(run_dir, args, out) if is_main() else None
    try:
        est.fit(x) if y is None else est.fit(x, y)
    except BaseException:
        if made is not None:
            forget_run_config(run_dir, made)
        raise
    if not is_main():
        return 0
    est.save(out)
    finish_run_config(run_dir, est.history_)
    what = finetune.describe(est, args) if args.task == "reconstruct" else f"a model for --task {args.task}"
    processes = f" in {world} processes" if world > 1 else ""
    first, *more = task.summary(est, args)
    print(f"trained {what} on {args.data} ({_describe(x)}) {first}{processes}")
    for line in more:
        print(line)
    kept = (
        f" (checkpoint and metrics.jsonl in {run_dir})" if (run_dir / runfolder.CHECKPOINT).exists() else ""
    )
    print(f"wrote {out}{kept}")
    return 0


def _task_defaults(args: argparse.Namespace, task: Task) -> None:
    """Give the shared options left unset their task's value (``Task.defaults``, else ``DEFAULTS``), and
    count that value as the option's default, so run.json records the option only when it was given."""
    chosen = {**DEFAULTS, **task.defaults}
    for name, value in chosen.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.option_defaults = {**getattr(args, "option_defaults", {}), **chosen}  # a copy: the parser's stays


def _check_launch(args: argparse.Namespace, device: str) -> int:
    """The number of processes training together (torchrun's WORLD_SIZE; 1 without torchrun), after
    checking the launch before any data is read.

    Every process finds the same fault in a bad launch (same command, environment and machine), so rank 0
    alone reports it: one line, not one per process.
    """
    from aekit.device import resolve_device
    from aekit.training import distributed

    try:
        where = distributed.check_launch(resolve_device(device), args.batch_size)
        world = where.world
        if world > 1 and not TASKS[args.task].distributed:
            raise ConfigError(
                f"--task {args.task} does not train in several processes yet (each step of a codec trains "
                "one quality level's entropy model, and DDP needs every weight in every step); start it "
                "without torchrun."
            )
    except ConfigError:
        if not is_main():
            # torchrun stops every process once one has failed: wait, so that it does not stop rank 0
            # before rank 0 has printed the error (and stopped everyone itself).
            time.sleep(LAUNCH_ERROR_WAIT)
            raise SystemExit(2) from None
        raise
    distributed.take_gpu(resolve_device(device), where)
    return world


def is_main() -> bool:
    """Whether this process prints and writes: the only one, or rank 0 of a torchrun launch."""
    from aekit.training.distributed import is_main as main_process

    return main_process()


LAUNCH_ERROR_WAIT = 10.0  # seconds
# run.json always holds these; every other option only when it was given a value other than its default,
# so a dense autoencoder's run does not list the settings of the restoration and codec tasks
RUN_ESSENTIALS = ("data", "task", "kind", "code_size", "hidden", "loss", "epochs", "batch_size", "seed")


def write_run_config(run_dir: Path, args: argparse.Namespace, out: Path) -> list[Path] | None:
    """run.json in the run folder (``aekit.runfolder``): the command's settings and when it started, for
    'aekit dashboard'. The trainer keeps it, and marks it finished.

    A resumed run keeps it (resuming requires the same settings, and the run started back then), less the
    finished mark of an earlier end. Settings the task ignores (``Task.unused``) are left out.
    Returns the folders it had to make (innermost first), or None when it wrote nothing.
    """
    if args.resume and (run_dir / runfolder.RUN_CONFIG).is_file():
        runfolder.reopen(run_dir)
        return None
    defaults = getattr(args, "option_defaults", {})
    unused = TASKS[args.task].unused
    settings = {
        k: v
        for k, v in vars(args).items()
        if k not in unused
        and (k in RUN_ESSENTIALS or (k in defaults and k not in ("quiet", "resume") and v != defaults[k]))
    }
    # absolute, so that 'aekit dashboard' finds the model wherever it was started
    return runfolder.start(run_dir, {**settings, "out": os.path.abspath(out)})


def finish_run_config(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Mark run.json finished once the model file is saved, with how many epochs it trained. 'aekit
    dashboard' stops calling it live."""
    runfolder.finish(run_dir, history)


def forget_run_config(run_dir: Path, made: list[Path]) -> None:
    """Take run.json back when training failed before its first epoch, and the folders made for it: a
    refused command leaves nothing behind."""
    runfolder.forget(run_dir, made)


def _describe(x: Any) -> str:
    if isinstance(x, list):  # images of different sizes
        return f"{len(x)} images"
    return f"{len(x)} samples of shape {tuple(x.shape[1:])}"


def code_size(text: str) -> int | str:
    """--code-size: a positive whole number, or auto."""
    return "auto" if text == "auto" else positive_int(text)


def _autoencoder(args: argparse.Namespace, device: str, run_dir: Path):
    """--task reconstruct: a plain ``AutoEncoder`` of --kind."""
    from aekit import AutoEncoder

    family_options = {k: getattr(args, k) for k in FAMILY_OPTIONS if getattr(args, k) is not None}
    return AutoEncoder(
        kind=args.kind,
        code_size=args.code_size,
        ordered=args.ordered,
        code_tolerance=args.code_tolerance,
        hidden=args.hidden,
        loss=args.loss,
        scaling=args.scaling,
        noise=args.noise,
        noise_level=args.noise_level,
        binarize=args.binarize,
        init_from=args.init,
        freeze=args.freeze,
        **family_options,
        **fit_settings(args, device, run_dir),
    )


def _epochs_summary(est: Any, args: argparse.Namespace) -> list[str]:
    """How long it trained (the end of the line "trained ... on DATA (...)"), then its final losses, and for
    an ordered code the width it kept."""
    lines = [f"for {len(est.history_)} epoch(s)", _final_losses(est.history_, args.patience)]
    curve = getattr(est, "reconstruction_curve_", None)
    if curve is not None:
        kept, full = est.code_size_, len(curve)
        lines.append(
            f"ordered code: {kept} of {full} units kept (error {curve[kept - 1]:.4g} vs {curve[-1]:.4g} "
            "with all of them)"
        )
    return lines


@dataclass(frozen=True)
class Task:
    """What ``aekit train --task NAME`` fits: the estimator, and how --data becomes its training input."""

    build: Callable[[argparse.Namespace, str, Path], Any]  # (options, device, run folder) -> estimator
    read: Callable[..., Any] = training_split  # (--data[, --key]) -> what the estimator's fit takes
    distributed: bool = True  # trains under torchrun (DDP) too
    # values of shared options (DEFAULTS) that suit this task better, used when the option is not given
    defaults: dict[str, Any] = field(default_factory=dict)
    fine_tunes: bool = True  # takes --init / --freeze (a starting model)
    # options of RUN_ESSENTIALS it ignores: left out of run.json, where they would mislabel the run
    unused: tuple[str, ...] = ()
    # (fitted estimator, options) -> what was trained, to end the line "trained ... on DATA (...)", then
    # more lines: what the training achieved
    summary: Callable[[Any, argparse.Namespace], list[str]] = _epochs_summary
    # (options, training input) -> fit's y (e.g. the detector's known anomalies), or None: fit(x) alone
    labels: Callable[[argparse.Namespace, Any], Any] = lambda args, x: None


# --task name -> Task. The estimator has fit(x), save(path) and history_. An application adds its tasks
# here, one line each, and its options through an add_train_options(parser) in its own verb module.
TASKS: dict[str, Task] = {
    "reconstruct": Task(_autoencoder, training_data),  # big files are read lazily
    **dict.fromkeys(
        ("denoise", "colorize", "upscale", "inpaint"),
        Task(
            restore.build_restorer,
            restore.training_images,
            unused=("kind", "code_size", "hidden"),
            summary=lambda est, args: [*_epochs_summary(est, args), restore.psnr_line(est)],
        ),
    ),
    "detect": Task(  # code_size: chosen from the data
        detect.build_detector,
        unused=("code_size",),
        summary=detect.training_summary,
        fine_tunes=False,
        labels=detect.known_anomalies,
    ),
    "compress": Task(
        compress.build_codec,
        restore.training_images,
        distributed=False,
        unused=("kind", "code_size", "loss"),
        fine_tunes=False,
        defaults=compress.TRAIN_DEFAULTS,
        summary=lambda est, args: [*_epochs_summary(est, args), compress.ladder_line(est)],
    ),
}
# what the shared options that some tasks set otherwise (Task.defaults) are when not given
DEFAULTS = {"batch_size": 128, "validation_fraction": 0.1, "crop": 48}


def _final_losses(history: list[dict], patience: int) -> str:
    last = history[-1]
    parts = [f"{k} {fmt(v)}" for k, v in last.items() if k not in ("epoch", "lr", "seconds")]
    line = "final " + ", ".join(parts)
    val = [(r["val_loss"], r["epoch"]) for r in history if "val_loss" in r]
    if val:
        best, epoch = min(val)
        line += f"; best val_loss {fmt(best)} at epoch {epoch}"
        if patience:  # early stopping keeps the best weights
            line += " (its weights are saved)"
        if stopped_early(history, patience):
            line += ", stopped early"
    return line
