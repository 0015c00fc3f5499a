"""``aekit probe``: how much each layer of a model knows about labels it never saw, beside PCA.

For every layer of the model (or those --layers names), on held-out labelled samples: a linear probe's
accuracy and k-means' NMI, with PCA of the layer's width beside it (``aekit.reports.probe``). Prints a
table and writes probe.json and probe.png into a folder, each file atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.common import add_device_option, load_estimator, note, positive_int
from aekit.errors import DataError
from aekit.extras import require

VERBS = ("probe",)
HOLDOUT = 0.2  # share of a data set without a labelled test split held out for probing
MAX_ROWS = 5000  # the default of aekit.reports.probe.MAX_ROWS, repeated so --help does not import it


def layer_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer names such as encoder.1,code, got {text!r}"
        )
    return names


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "probe",
        help="how much each layer knows about the labels: linear probe and k-means per layer, beside PCA",
        description="For every layer of a model (encoder.1, ..., code, decoder.1, ..., output), on held-out "
        "labelled samples: the accuracy of a logistic regression fitted on half of them and scored on the "
        "other half (a linear probe), and the NMI of k-means with one cluster per class; PCA with as many "
        "components as the layer is wide, fitted on training samples, and the input itself are scored "
        "alike. Prints a table and writes probe.json and probe.png.",
    )
    p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "--data",
        required=True,
        help="labelled data: a data set name (digits, mnist, fashion-mnist, cifar10) or a path to .npz "
        "(x_train/y_train with x_test/y_test, or x/y), a table with a 'label' column, ...; its labelled test "
        f"split is probed (else {HOLDOUT:.0%}% of the training split) and its training split fits PCA",
    )
    p.add_argument(
        "--layers",
        type=layer_list,
        metavar="NAME,...",
        help="the layers to probe, e.g. encoder.2,code (default: all; an unknown name lists them)",
    )
    p.add_argument(
        "--max-rows",
        type=positive_int,
        default=MAX_ROWS,
        metavar="N",
        help="probe at most N held-out samples and fit PCA on at most N training samples, drawn by --seed "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the samples, probes and k-means (default: 0)"
    )
    p.add_argument(
        "--out", metavar="DIR", help="folder for probe.json and probe.png (default: probe-<model>)"
    )
    add_device_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines and no notes")
    p.set_defaults(on_interrupt="probe stopped; nothing was written")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from aekit.data import load
    from aekit.estimators.layer_outputs import check_layer
    from aekit.reports.probe import FILES, probe_layers, table, write_probe

    require("matplotlib", "plots", "aekit probe")  # its chart: say so before any work
    out = Path(args.out or f"probe-{Path(args.model).stem}")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder for probe.json and probe.png")
    est = load_estimator(args.model, args.device)
    for name in args.layers or ():
        check_layer(est, name)  # before the data is read
    ds = load(args.data)
    x_train, x_test, y_test = ds.x_train, ds.x_test, ds.y_test
    split = "test"
    if x_test is None or len(x_test) == 0 or y_test is None:
        if ds.y_train is None:
            raise DataError(
                f"{args.data} has no labels; 'aekit probe' scores layers against labels: give a data set "
                "name (digits, mnist, ...) or a file with them (.npz with y_test or y_train, or x and y; a "
                "table with a 'label' column)"
            )
        order = np.random.default_rng(args.seed).permutation(len(x_train))
        n_held = max(2, int(round(len(x_train) * HOLDOUT)))
        held, rest = order[:n_held], order[n_held:]
        x_test, y_test = x_train[held], ds.y_train[held]
        x_train = x_train[rest] if len(rest) else x_train
        split = f"{HOLDOUT:.0%} of the training split"
        if not args.quiet:
            note(
                f"{ds.name} has no labelled test split; probing {n_held} of its training samples (chosen by "
                "--seed), which the model may have been trained on"
            )
    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    result = probe_layers(est, x_train, x_test, y_test, args.layers, args.max_rows, args.seed, progress=say)
    about = {"model": str(args.model), "data": ds.name, "split": split}
    write_probe(result, out, about)
    print(
        f"{ds.name} ({split}): linear probe fitted on {result.n_probe_fit} samples, scored on "
        f"{result.n_probe_score}; k-means (k = {result.n_classes}) on both; PCA fitted on "
        f"{result.n_pca_train} training samples"
    )
    print(table(result))
    print(f"wrote {out}/ ({', '.join(FILES.values())})")
    return 0
