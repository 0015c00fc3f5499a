"""``aekit embed`` (a model's codes for a file or data set) and ``aekit compare`` (autoencoder vs PCA).

``embed`` writes features for other tools: the codes of every sample, through ``write_array`` (atomic, never
over an input). ``compare`` trains an autoencoder and fits PCA at each code size and writes a report folder:
the error curve, a 2-D scatter of both methods' codes, k-means clustering quality, comparison.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli.clusters import add_clusters_option, check_clusters_output, write_clustered
from aekit.cli.common import (
    add_device_option,
    add_key_option,
    add_stream_options,
    check_device,
    check_output,
    epochs_or_auto,
    note,
    positive_int,
)
from aekit.cli.typicality import Watch, add_strict_option
from aekit.errors import ConfigError, DataError
from aekit.extras import require
from aekit.streaming import apply_job, check_suffix

VERBS = ("embed", "compare")
HOLDOUT = 0.2  # share of a data set without a test split that compare holds out for testing
SPLITS = ("test", "train")


# -- options ---------------------------------------------------------------------------------------------
def code_sizes(text: str) -> tuple[int, ...]:
    """'2,4,8' -> (2, 4, 8): whole numbers >= 1 (checked against the data's feature count later)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers >= 1 such as 2,4,8,16, got {text!r}"
        )
    return tuple(int(part) for part in parts)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "embed",
        help="write a model's codes (features) for a data file or data set",
        description="Encode every sample of a file or of a named data set's split with a model file and "
        "write "
        "the codes (N, code size) as features for other tools. A VAE's codes are its posterior means.",
    )
    p.add_argument("model", help="model file written by 'aekit train' or AutoEncoder.save")
    p.add_argument(
        "data",
        help="samples: .npy/.npz/.csv/.parquet, a PNG/JPEG image or a folder of them; or a data set name "
        "(digits, mnist, fashion-mnist, cifar10)",
    )
    p.add_argument(
        "-o", "--out", required=True, metavar="OUT", help="codes file: .npy, .npz, .csv or .parquet"
    )
    add_key_option(p)
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="which split of a named data set to embed (default: %(default)s)",
    )
    add_device_option(p)
    add_stream_options(p)
    add_clusters_option(p)
    add_strict_option(p)

    c = subparsers.add_parser(
        "compare",
        help="autoencoder vs PCA by code size: error curve, 2-D map, k-means quality",
        description="Train an autoencoder and fit PCA at each code size on a data set's training split, "
        "score "
        "both on its test split, and write a report folder: the reconstruction error against code size "
        "(PNG), the 2-D codes of both coloured by label (PNG), NMI/ARI of k-means on the codes, "
        "comparison.json and index.html.",
    )
    c.add_argument(
        "--data",
        required=True,
        help="a data set name (digits, mnist, fashion-mnist, cifar10) or a path to .npz/.npy/.csv/.parquet "
        "or a folder of images; labels (y_test, or a 'label' column) enable the scatter colours and k-means",
    )
    c.add_argument(
        "--code-sizes",
        type=code_sizes,
        default=(2, 4, 8, 16, 32, 64),
        metavar="K1,K2,...",
        help="code sizes to compare, each at most the number of features (default: 2,4,8,16,32,64)",
    )
    c.add_argument(
        "--kind",
        default="auto",
        help="autoencoder family, e.g. dense, conv, sparse or vae; auto: conv for images, dense for tables "
        "(default: %(default)s)",
    )
    c.add_argument(
        "--epochs",
        type=epochs_or_auto,
        default="auto",
        help="passes over the training data per model, or auto (default: %(default)s)",
    )
    c.add_argument("--out", metavar="DIR", help="report folder (default: compare-<data>)")
    c.add_argument("--seed", type=int, default=0, help="seed for every model, PCA and k-means (default: 0)")
    c.add_argument(
        "--max-train",
        type=positive_int,
        metavar="N",
        help="train on a random subset of N training samples, for a quick run",
    )
    c.add_argument(
        "--ordered",
        action="store_true",
        help="train one ordered autoencoder (nested dropout) with the largest code size instead of one per "
        "size, fit one PCA, and draw both errors at every code size from 1 to the largest",
    )
    add_device_option(c)
    c.add_argument("--quiet", action="store_true", help="no progress lines and no notes")
    c.set_defaults(on_interrupt="comparison stopped; nothing was written")


def run(args: argparse.Namespace) -> int:
    return _RUNNERS[args.command](args)


# -- embed ---------------------------------------------------------------------------------------------------
def _embed(args: argparse.Namespace) -> int:
    from aekit.cli.common import load_estimator, open_input
    from aekit.data import load
    from aekit.data.sources import ArraySource
    from aekit.streaming import chunk_rows, ordered_map, write_stream

    is_file = Path(args.data).exists()
    out = check_output(args.out, args.data if is_file else "", args.model)
    check_suffix(out)
    if args.clusters is not None:
        check_clusters_output(out)
    est = load_estimator(args.model, args.device)
    watch = Watch(est, args.model, args.strict)
    if is_file:
        source, name = open_input(args.data, args.key, est.spec_.sample_shape), args.data
    else:  # a named data set; load() says which names exist when this is neither a file nor a name
        ds = load(args.data)
        x = ds.x_test if args.split == "test" else ds.x_train
        if x is None or len(x) == 0:
            raise DataError(f"data set {ds.name!r} has no {args.split} split; use --split train")
        source, name = ArraySource(x, name=ds.name), f"{ds.name} ({args.split} split)"
    job = apply_job("embed", args.model, args.device, est, typicality=watch.stored)
    chunks = source.iter_chunks(chunk_rows(source.sample_shape, args.chunk_rows))
    results = watch.results(ordered_map(job, chunks, args.workers))
    if args.clusters is not None:
        n, how = write_clustered(out, results, len(source), args.clusters, args.quiet)
        print(
            f"wrote {out}: codes of {n} samples from {name}, shape {(n, est.code_size_)}, float32, and a "
            f"cluster label per row from {how}"
        )
    else:
        n = write_stream(out, results, len(source), "embedding", args.quiet)
        shape = (n, est.code_size_)
        print(f"wrote {out}: codes of {n} samples from {name}, shape {shape}, float32")
    watch.report()
    return 0


# -- compare -------------------------------------------------------------------------------------------------
def _compare(args: argparse.Namespace) -> int:
    import numpy as np

    from aekit.data import load
    from aekit.models import FAMILIES
    from aekit.reports.compare import FILES, compare_with_pca, what_is_skipped, write_comparison

    require("matplotlib", "plots", "aekit compare")  # its report is figures: say so before training
    if args.kind != "auto" and args.kind not in FAMILIES:  # before loading the data, which can take a while
        raise ConfigError(
            f"--kind {args.kind!r} is not a model family; choose auto or one of {', '.join(FAMILIES)}."
        )
    device = check_device(args.device)
    ds = load(args.data)
    out = Path(args.out or f"compare-{ds.name}")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder for the report")
    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    tell = (lambda _: None) if args.quiet else note
    rng = np.random.default_rng(args.seed)

    x_train, x_test, y_test = ds.x_train, ds.x_test, ds.y_test
    if x_test is None or len(x_test) == 0:
        order = rng.permutation(len(x_train))
        n_test = max(1, int(round(len(x_train) * HOLDOUT)))
        if len(x_train) - n_test < 2:
            raise DataError(
                f"data set {ds.name!r} has {len(x_train)} samples: too few to hold some out for testing"
            )
        test, train = order[:n_test], order[n_test:]
        y = ds.y_train
        x_train, x_test = x_train[train], x_train[test]
        y_test = None if y is None else y[test]
        tell(
            f"{ds.name} has no test split; holding out {n_test} of its samples (chosen by --seed) for testing"
        )
    if args.max_train and args.max_train < len(x_train):
        x_train = x_train[np.sort(rng.permutation(len(x_train))[: args.max_train])]
        tell(f"training on {args.max_train} randomly chosen training samples (--max-train)")

    for what in what_is_skipped(y_test, args.code_sizes):
        tell(f"skipping {what}")
    result = compare_with_pca(
        x_train,
        x_test,
        y_test,
        code_sizes=args.code_sizes,
        kind=args.kind,
        epochs=args.epochs,
        random_state=args.seed,
        device=device,
        progress=say,
        ordered=args.ordered,
    )
    write_comparison(result, out, title=f"Autoencoder vs PCA on {ds.name}", data=ds.name)
    print(_table(result))
    if result.rows[-1].code_size >= result.n_features:
        tell(
            f"at code size {result.n_features}, the number of features, PCA keeps everything: its error is "
            "only rounding, and no autoencoder can beat it there"
        )
    print(f"wrote {out}/ ({', '.join(f for f in FILES.values() if (out / f).exists())})")
    return 0


def _table(result) -> str:
    clusters = result.n_clusters is not None
    head = f"{'code size':>9}  {'AE MSE':>9}  {'PCA MSE':>9}  {'AE/PCA':>8}"
    if clusters:
        head += f"  {'AE NMI':>6}  {'PCA NMI':>7}  {'AE ARI':>6}  {'PCA ARI':>7}"
    one = " (one ordered autoencoder and one PCA fit for every size)" if result.curves else ""
    lines = [f"{result.kind} autoencoder vs PCA, test MSE on {result.unit}{one}", head]
    for r in result.rows:
        ratio = f"{r.ae_mse / r.pca_mse:>8.3g}" if r.pca_mse > 0 else f"{'-':>8}"
        line = f"{r.code_size:>9}  {r.ae_mse:>9.4g}  {r.pca_mse:>9.4g}  {ratio}"
        if clusters:
            line += f"  {r.ae_nmi:>6.3f}  {r.pca_nmi:>7.3f}  {r.ae_ari:>6.3f}  {r.pca_ari:>7.3f}"
        lines.append(line)
    return "\n".join(lines)


_RUNNERS = {"embed": _embed, "compare": _compare}
