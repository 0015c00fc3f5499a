"""``aekit embed --clusters K|auto``: a k-means cluster label beside each row's code (``aekit.clusters``).

Not a verb: the option and the step that ``aekit embed`` runs when it is given. k-means needs every code
before it labels any, so the codes are gathered in memory (N x code size float32) and written at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aekit.errors import DataError

# The writers' layout for a code field beside a label field: .npz members x and cluster, table columns
# x0, x1, ... and cluster. A .npy holds one array, so it cannot hold both.
LABEL_FIELD = "cluster"
AUTO_RANGE = (2, 15)  # aekit.clusters.K_RANGE, not imported: the parser is built before any verb runs


def clusters_option(text: str) -> int | str:
    """--clusters: 'auto' or a whole number >= 2."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of clusters >= 2, got {text!r}")
    return value


def add_clusters_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clusters",
        type=clusters_option,
        metavar="K",
        help="also write a cluster label per row: k-means with K clusters on the codes (seed 0), or auto: "
        f"the K from {AUTO_RANGE[0]} to {AUTO_RANGE[1]} with the best silhouette (on a subsample). Needs "
        f"-o .npz (arrays x and {LABEL_FIELD}), .csv or .parquet (a {LABEL_FIELD} column)",
    )


def check_clusters_output(out: Path) -> None:
    if out.suffix.lower() == ".npy":
        raise DataError(
            f"--clusters writes codes and a label per row, and a .npy file ({out}) holds one array; "
            f"use .npz (arrays x and {LABEL_FIELD}), .csv or .parquet (a {LABEL_FIELD} column)"
        )


def write_clustered(
    out: Path, results: Any, total: int, clusters: int | str, quiet: bool = False
) -> tuple[int, str]:
    """Gather the codes of ``results`` ((rows, {"x": codes}) per chunk), label them and write both.

    Returns the rows written and a sentence on the clustering for the summary line.
    """
    import numpy as np

    from aekit.clusters import choose_k, cluster_codes
    from aekit.data.writers import open_writer
    from aekit.streaming import Bar

    bar = Bar("embedding", total, enabled=not quiet)
    parts = []
    try:
        for consumed, fields in results:
            parts.append(fields["x"])
            bar.advance(consumed)
    finally:
        bar.close()
    if not parts:
        raise DataError("there are no samples to cluster")
    codes = np.concatenate(parts)  # (N, code size)
    how = ""
    if clusters == "auto":
        clusters, scores = choose_k(codes)
        low, high = min(scores), max(scores)
        how = f", chosen by silhouette over {low}..{high} (mean silhouette {scores[clusters]:.3f})"
    labels = cluster_codes(codes, clusters)
    fields = {"x": codes}
    if out.suffix.lower() != ".npz":  # a table: the columns x0, x1, ... as write_array names them
        fields = {f"x{i}": codes[:, i] for i in range(codes.shape[1])}
    with open_writer(out) as writer:
        writer.write({**fields, LABEL_FIELD: labels})
    return len(codes), f"k-means with {clusters} clusters (seed 0){how}"
