"""``aekit report``: one self-contained HTML page about a trained autoencoder (``aekit.reports.page``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.common import add_device_option, check_output, load_estimator
from aekit.errors import DataError, ModelFileError
from aekit.extras import require

VERBS = ("report",)

# What other aekit files hold ("estimator" in the header), and where each is looked at instead.
NOT_AUTOENCODERS = {
    "ImageCodec": ("a learned image codec", "'aekit info' or 'aekit compress'"),
    "AnomalyDetector": ("an anomaly detector", "'aekit info' or 'aekit detect'"),
    "ImageRestorer": ("an image restoration model", "'aekit info' or 'aekit restore'"),
}
PAGE_SUFFIXES = (".html", ".htm")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a one-file HTML report on a trained autoencoder",
        description="Write one self-contained HTML file about a trained autoencoder: its summary, loss "
        "curves, test inputs beside their reconstructions with each one's error, its error beside PCA's at "
        "code sizes around its own, a 2-D map of its codes coloured by label, and samples (a VAE) or "
        "interpolations (other families). Every image is inside the file: it opens offline.",
    )
    p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "--data",
        default="digits",
        help="the data to score it on: a data set name (digits, mnist, fashion-mnist, cifar10) or a path, "
        "shaped like the model's training data (default: %(default)s)",
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="the report file, e.g. report.html")
    add_device_option(p)


def run(args: argparse.Namespace) -> int:
    from aekit import tensorfile
    from aekit.data import load
    from aekit.reports.page import write_report

    require("matplotlib", "plots", "aekit report")
    out = check_output(args.out, args.model, args.data)
    if out.suffix.lower() not in PAGE_SUFFIXES:
        raise DataError(f"-o {args.out}: the report is an HTML page; give a file name ending in .html")
    _, doc = tensorfile.read_header(args.model)  # a missing or damaged file: one ModelFileError
    if doc.get("estimator") in NOT_AUTOENCODERS:
        what, where = NOT_AUTOENCODERS[doc["estimator"]]
        raise ModelFileError(
            f"{args.model} holds {what}, not an autoencoder; a report is drawn for models from 'aekit "
            f"train' (without --task) or AutoEncoder.save. Look at this file with {where}."
        )
    est = load_estimator(args.model, args.device)
    data = load(args.data)
    write_report(out, est, data, name=Path(args.model).stem, source=args.model)
    print(
        f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB): a report on {args.model} scored on {data.name}"
    )
    return 0
