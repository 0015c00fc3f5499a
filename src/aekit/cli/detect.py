"""``aekit detect``: anomaly scores and labels from a detector file; ``aekit train --task detect`` makes one.

The data is a table (CSV/Parquet/.npz/.npy), images (an array or a folder) or, for a detector trained with
``--window``, a series (T,) or (T, D). Labels (1 = anomaly) come from a table's 'label'/'y' column, an
.npz's 'y', or ``--labels FILE``; with them the command prints AUROC and average precision.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aekit.cli import detect_explain
from aekit.cli.common import (
    add_device_option,
    add_key_option,
    add_stream_options,
    check_device,
    check_output,
    fraction,
    non_negative_int,
    note,
    positive_int,
)
from aekit.errors import DataError
from aekit.extras import require

VERBS = ("detect",)

# .npz keys tried for the samples, each with the key of its labels
NPZ_KEYS = {"x": "y", "X": "y", "x_test": "y_test", "x_train": "y_train"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "detect",
        help="score data for anomalies with a detector file (aekit train --task detect makes one)",
        description="Score every sample (or, for a series detector, every time step) of DATA for anomalies "
        "and "
        "write the scores and 0/1 labels (1 = anomaly). When labels are present it prints AUROC and "
        "average precision.",
    )
    p.add_argument(
        "model", help="a detector file written by 'aekit train --task detect' or AnomalyDetector.save"
    )
    p.add_argument("data", help="a table (.csv/.parquet/.npz/.npy), an image folder or array, or a series")
    p.add_argument("-o", "--out", required=True, help="scores file: .csv, .parquet, .npy or .npz")
    threshold = p.add_mutually_exclusive_group()
    threshold.add_argument(
        "--contamination",
        type=_contamination,
        help="share of the training data taken as anomalous: sets the threshold (default: the model's)",
    )
    threshold.add_argument(
        "--percentile", type=_percentile, help="threshold at this percentile of the training scores, e.g. 95"
    )
    p.add_argument(
        "--labels", metavar="FILE", help="true labels (1 = anomaly): .npy/.csv/.npz, one per sample"
    )
    add_key_option(
        p,
        "the samples' array in a .npz or .mat file (default: the only one, else x, X, x_test or "
        "x_train; labels come from the matching y, y_test or y_train)",
    )
    add_device_option(p)
    add_stream_options(p)
    detect_explain.add_options(p)


def _contamination(text: str) -> float:
    value = fraction(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 0.5], got {text!r}")
    return value


def _percentile(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in [0, 100], got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from aekit.data.writers import WRITERS
    from aekit.streaming import apply_job, chunk_rows, load_detector, ordered_map, write_stream

    out = check_output(args.out, args.data, args.model, args.labels or "")
    if out.suffix.lower() not in WRITERS:
        raise DataError(f"-o {args.out}: write the scores to one of {', '.join(WRITERS)}")
    detect_explain.check_options(args)
    det = load_detector(args.model, check_device(args.device), args.contamination, args.percentile)
    explained = detect_explain.target(args, out, detect_explain.kind_of(det)) if args.explain else None
    source, y = open_data(args.data, args.key, series=det.window is not None)
    unit = "time steps" if det.window else "samples"
    if args.labels:
        y = _read_labels(args.labels)
    if y is not None:  # before any scoring: a wrong label file should not cost a pass over the data
        y = check_labels(y, len(source), unit)
    if det.window:
        results = _series_results(det, source, args)
    else:
        thresholds = {"contamination": args.contamination, "percentile": args.percentile}  # for workers
        job = apply_job("detect", args.model, args.device, det, **thresholds)
        chunks = source.iter_chunks(chunk_rows(source.sample_shape, args.chunk_rows))
        results = ordered_map(job, chunks, args.workers)
    flagged, kept = 0, []  # the scores are kept only to rank them against the labels or explain them

    def counted():
        nonlocal flagged
        for n, fields in results:
            flagged += int(fields["label"].sum())
            if y is not None or explained:
                kept.append(fields["score"])
            yield n, fields

    n = write_stream(out, counted(), len(source), "scoring", args.quiet)
    print(f"scored {n} {unit}: {flagged} flagged as anomalies (threshold {det.threshold_:.5g})")
    if y is not None:
        import numpy as np

        print(evaluate(y, np.concatenate(kept)))
    print(f"wrote {out}")
    if explained:
        import numpy as np

        scores = None if det.window else np.concatenate(kept)  # a series detector explains the whole series
        detect_explain.write(det, source, scores, explained, args)
    return 0


def _series_results(det, source, args):
    """Per-step scores of a series read in chunks; windows across chunk boundaries are joined up."""
    import numpy as np

    from aekit.estimators.series_stream import series_scores
    from aekit.streaming import chunk_rows

    if args.workers > 1:
        note(
            "a series detector scores its windows in this process (each chunk needs the one before); "
            "--workers applies to tables and images"
        )
    block = chunk_rows((det.n_features_in_,), args.chunk_rows)  # windows per block, each window * D values
    chunks = source.iter_chunks(block * det.stride)
    read = lambda a, b: source.read(np.arange(a, b))  # noqa: E731
    for n, scores in series_scores(det, chunks, len(source), block, read):
        yield n, {"score": scores, "label": (scores > det.threshold_).astype(np.int64)}


# -- reading -------------------------------------------------------------------------------------------------


def open_data(path: str, key: str | None, series: bool = False) -> tuple[Any, Any]:
    """A Source over the samples in ``path`` and their labels when the file has them (.npz/.mat 'y', a label
    column). Labels (one small number per sample) are read whole; the samples are read in chunks."""
    from aekit.cli.common import open_input
    from aekit.data.files import _label_vector, existing_path, pick_key, read_mat
    from aekit.data.sources import npz_keys

    p = existing_path(path)
    suffix = "" if p.is_dir() else p.suffix.lower()
    if suffix not in (".npz", ".mat"):
        source = open_input(str(p), key, allow_1d=series)  # --key on any other file is refused there
        return source, _table_labels(p) if suffix in (".csv", ".parquet") else None
    names = npz_keys(p) if suffix == ".npz" else list(read_mat(p))
    name = pick_key(p, names, key, NPZ_KEYS)
    label = NPZ_KEYS.get(name, "")
    y = None
    if label in names:
        y = _npz_member(p, label) if suffix == ".npz" else read_mat(p)[label]
    return open_input(str(p), name, allow_1d=series), _label_vector(y)


def _npz_member(path: Path, name: str):
    from aekit.data.files import read_npz

    return read_npz(path, lambda keys: [name])[name]


def _table_labels(path: Path):
    """A table's 'label'/'y' column alone (the features are streamed), or None when it has none."""
    from aekit.data.files import LABEL_COLUMNS, _csv_has_header, _is_numeric

    parquet = path.suffix.lower() == ".parquet"
    pd = require("pandas", "tables", f"reading {'Parquet' if parquet else 'CSV'} tables")
    if parquet:
        pq = require("pyarrow.parquet", "tables", "reading Parquet tables")

        names = pq.ParquetFile(path).schema_arrow.names
        label = next((n for c in LABEL_COLUMNS for n in names if n.strip() == c), None)
        column = None if label is None else pd.read_parquet(path, columns=[label])[label]
    else:
        if not _csv_has_header(path):
            return None
        names = list(pd.read_csv(path, nrows=0).columns)
        label = next((n for c in LABEL_COLUMNS for n in names if str(n).strip() == c), None)
        column = None if label is None else pd.read_csv(path, usecols=[label])[label]
    if column is None:
        return None
    return column.to_numpy() if _is_numeric(column) else column.astype(str).to_numpy(dtype=str)


def _read_labels(path: str):
    from aekit.data import read_array

    y = read_array(path, key="y" if Path(path).suffix.lower() == ".npz" else None)
    return y.reshape(len(y), -1)[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def check_labels(y: Any, n: int, unit: str):
    """Labels as a 0/1 int array of length ``n``, or one DataError saying what is wrong with them."""
    import numpy as np

    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"labels must be one column (one value per sample); got shape {y.shape}")
    if len(y) != n:
        raise DataError(
            f"the labels have {len(y)} values but the data has {n} {unit}; give one label for each"
        )
    values = set(np.unique(y).tolist()) if y.dtype.kind in "biuf" else {"non-numeric"}
    if not values <= {0, 1}:
        shown = ", ".join(map(str, sorted(values, key=str)[:5]))
        raise DataError(f"labels must be 0 (normal) or 1 (anomaly); got values {shown}. Recode them as 0/1")
    return y.astype(np.int64)


def evaluate(y, scores) -> str:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(set(y.tolist())) < 2:
        return "AUROC and average precision need both normal and anomalous labels; these have only one class"
    return f"AUROC {roc_auc_score(y, scores):.4f}, average precision {average_precision_score(y, scores):.4f}"


# -- writing -------------------------------------------------------------------------------------------------


# -- training (aekit train --task detect) -------------------------------------------------------------------


def add_train_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "anomaly detection (--task detect; the code size and layers are chosen from the data unless --hidden "
        "is given, --epochs auto sets each round's length by the data size (2 to 20 epochs, at most "
        "400 steps a round for tables), and there is no validation split or early stopping)"
    )
    group.add_argument(
        "--contamination",
        type=_contamination,
        default=0.1,
        help="expected share of anomalies in the training data: sets the threshold (default: %(default)s)",
    )
    group.add_argument(
        "--refits",
        type=non_negative_int,
        default=3,
        help="further ensembles, each trained without the 30%% of rows whose codes lie farthest out; 0 when "
        "the training data is known to be clean (default: %(default)s)",
    )
    group.add_argument(
        "--window",
        type=positive_int,
        help="treat the data as one time series (rows = time steps) and score sliding windows of this length",
    )
    group.add_argument(
        "--known-anomalies",
        metavar="FILE",
        help="labels of the training data, one per sample (or time step): 1 for a known anomaly, 0 for the "
        "rest (.npy, .csv, .npz 'y'); known anomalies are kept out of training and new samples near them "
        "score higher",
    )


def build_detector(args: argparse.Namespace, device: str, run_dir: Path):
    """--task detect: an ``AnomalyDetector`` (an ensemble of --kind autoencoders) with its threshold."""
    from aekit import AnomalyDetector

    names = ("beta", "sparsity", "sparsity_weight", "rho", "backbone", "downsample")
    extra = {k: getattr(args, k) for k in names}
    extra = {k: v for k, v in extra.items() if v is not None}
    if args.loss not in ("auto", "mse"):
        extra["loss"] = args.loss
    if args.scaling != "auto":
        note("--task detect standardises tables itself; --scaling is passed on to its autoencoders")
    if args.window and args.kind == "conv":
        note("--kind conv takes images; a series detector takes --kind dense (windows as rows) or conv1d")
    return AnomalyDetector(
        kind=args.kind,
        contamination=args.contamination,
        hidden=args.hidden if args.hidden else "auto",
        epochs=args.epochs,
        batch_size=args.batch_size,
        scaling=args.scaling,
        window=args.window,
        refits=args.refits,
        autoencoder_params=extra or None,
        device=device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
        **({} if args.lr is None else {"lr": args.lr}),  # else the detector's own default
    )


def known_anomalies(args: argparse.Namespace, x: Any):
    """--known-anomalies FILE as fit's y (checked against the training data), or None without it."""
    if not getattr(args, "known_anomalies", None):
        return None
    unit = "time steps" if args.window else "samples"
    return check_labels(_read_labels(args.known_anomalies), len(x), unit)


def training_summary(det, args: argparse.Namespace) -> list[str]:
    """What 'aekit train --task detect' trained, round by round: the members of the first round saw every
    row, each refit round only the rows left after trimming, so their losses are not comparable."""
    from aekit.cli.common import fmt

    rounds = det.rounds_
    members = sum(r["members"] for r in rounds)
    lines = [f"as {members} autoencoders in {len(rounds)} round(s) of {rounds[0]['members']}"]
    for i, r in enumerate(rounds):
        known = len(det.anomaly_codes_[0]) if getattr(det, "anomaly_codes_", []) else 0
        rows = (
            f"all {r['rows']} rows"
            if i == 0 and not known
            else f"{r['rows']} rows ({known} known anomalies left out)"
            if i == 0
            else f"{r['rows']} rows (refit: the {det.trim:.0%} farthest out left out)"
        )
        final = r["final"]
        if final.keys() == {"recon", "loss"}:  # no regulariser: the loss is the recon, said once
            final = {"recon": final["recon"]}
        losses = ", ".join(f"{k} {fmt(v)}" for k, v in final.items())
        lines.append(
            f"round {i + 1}: {r['members']} member(s) x {r['epochs']} epoch(s) on {rows}; final training "
            f"{losses} (mean of its members)"
        )
    return lines
