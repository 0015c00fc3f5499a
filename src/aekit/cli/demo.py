"""``aekit demo``: train a few models on a built-in data set and write a report folder (``reports.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.extras import require

VERBS = ("demo",)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train a few models on a built-in data set and write a report",
        description="Train a few autoencoders on a built-in data set, compare them, "
        "and write a report folder: index.html, and report.html (the VAE's 'aekit report' page).",
    )
    p.add_argument("--out", default="aekit-demo", metavar="DIR", help="report folder (default: %(default)s)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a tiny, few-second run for checks; its figures are not meaningful",
    )


def run(args: argparse.Namespace) -> int:
    from aekit.reports.demo import run_demo

    require("matplotlib", "plots", "aekit demo")  # its report is figures: say so before training
    run_demo(Path(args.out), quick=args.quick)
    return 0
