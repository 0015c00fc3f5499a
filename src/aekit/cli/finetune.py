"""``aekit train --init MODEL [--freeze PART]``: start from a trained model instead of from scratch.

One definition for every task that fine-tunes: --task reconstruct (``AutoEncoder(init_from=, freeze=)``)
and the restoration tasks (``ImageRestorer(init=, freeze=)``); each estimator checks the values it takes.
"""

from __future__ import annotations

import argparse
from typing import Any


def parts(text: str) -> str | tuple[str, ...]:
    """--freeze: one part as given ("encoder"), several comma-separated ones as a tuple."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected encoder, decoder or comma-separated layer names such as encoder.1,code, got {text!r}"
        )
    return names[0] if len(names) == 1 else names


def add_train_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("starting model (--task reconstruct, denoise, colorize, upscale or inpaint)")
    group.add_argument(
        "--init",
        metavar="MODEL",
        help="fine-tune instead of training from scratch: a .aek file of the same task, or for restoration "
        "a built-in model (denoise, upscale-x2, upscale-x4, inpaint, colorize); its network and settings "
        "are kept (for an autoencoder, also its data scaling when the data has its shape)",
    )
    group.add_argument(
        "--freeze",
        type=parts,
        metavar="PART",
        help="with --init: keep these weights of the starting model as they are: encoder or decoder, or "
        "(--task reconstruct) comma-separated layer names such as encoder.1,code ('aekit probe' lists them)",
    )


def describe(est: Any, args: argparse.Namespace) -> str:
    """What --task reconstruct trained, for the line "trained ... on DATA": the fitted model's family (with
    --init it is the starting model's, whatever --kind says), and where it started."""
    from aekit.models import family_of

    what = f"a {family_of(est.model_)} autoencoder"
    if args.init is None:
        return what
    frozen = args.freeze if isinstance(args.freeze, str) else ",".join(args.freeze or ())
    return f"{what} fine-tuned from {args.init}" + (f" ({frozen} frozen)" if frozen else "")
