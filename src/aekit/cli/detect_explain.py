"""``aekit detect --explain``: what carries each flagged sample's score (AnomalyDetector.explain).

Tables: a CSV with, per flagged row, its top columns and their shares of the row's error. Images: a
folder with, per flagged image (the highest scores first, at most ``--explain-max``), a PNG of the input,
the detector's reconstruction and a heat-map of where the error sits, and an index CSV. Series: a CSV
with, per flagged time step, its error and top columns. Each is written beside the scores (``-o``)
unless ``--explain-out`` says where, and a short summary goes to stdout.

The scores stream through in chunks as always; the flagged samples are then read again and explained,
with each element's typical error the one the detector stored at fit (or, for a detector file from
before that, from a sample of at most ``REFERENCE_ROWS`` rows of the data; see
aekit/estimators/explain.py), so memory stays bounded by the flagged samples.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aekit.cli.common import check_output, positive_int
from aekit.errors import DataError

if TYPE_CHECKING:
    import numpy as np

REFERENCE_ROWS = 2048  # rows of the data whose median error per element is the "typical" error
SHOWN = 5  # flagged samples summed up on stdout
IMAGE_CAP = 50  # --explain-max default: PNGs are a few KB each, but a folder of 10 000 is no help
TOP = 3  # --explain-top default


def add_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("explanations")
    group.add_argument(
        "--explain",
        action="store_true",
        help="also say what carries each flagged sample's score: its top columns (tables), a heat-map PNG "
        "beside its reconstruction (images) or its top time steps and columns (series)",
    )
    group.add_argument(
        "--explain-out",
        metavar="PATH",
        help="where the explanations go: a .csv for tables and series, a folder for images "
        "(default: beside -o, as NAME.explain.csv or the folder NAME.explain)",
    )
    group.add_argument(
        "--explain-top",
        type=positive_int,
        metavar="K",
        help=f"columns listed per flagged row or time step (default: {TOP})",
    )
    group.add_argument(
        "--explain-max",
        type=positive_int,
        metavar="N",
        help="images: heat-maps for at most this many flagged images, the highest scores first "
        f"(default: {IMAGE_CAP})",
    )


def check_options(args: argparse.Namespace) -> None:
    """Refuse explanation options without --explain (they would do nothing) before any work is done;
    fill in their defaults."""
    given = {
        "--explain-out": args.explain_out,
        "--explain-top": args.explain_top,
        "--explain-max": args.explain_max,
    }
    stray = [name for name, value in given.items() if value is not None]
    if stray and not args.explain:
        raise DataError(f"{', '.join(stray)} only apply with --explain; add --explain or leave them out")
    args.explain_top = args.explain_top or TOP
    args.explain_max = args.explain_max or IMAGE_CAP


def target(args: argparse.Namespace, out: Path, kind: str) -> Path:
    """The explanations' path, checked before scoring: a .csv (tables, series) or a folder (images)."""
    images = kind == "image"
    default = out.with_name(f"{out.stem}.explain" + ("" if images else ".csv"))
    path = Path(args.explain_out).expanduser() if args.explain_out else default
    if images:
        if path.exists() and not path.is_dir() or path.suffix.lower() == ".csv":
            raise DataError(
                f"--explain-out {path}: images are explained as PNG files in a folder; give a folder path"
            )
        if path.resolve() in {Path(p).expanduser().resolve() for p in (args.data, args.model, args.out)}:
            raise DataError(
                f"--explain-out {path} is one of the inputs or the scores file; give a new folder"
            )
        return path
    if path.suffix.lower() != ".csv":
        raise DataError(f"--explain-out {path}: explanations of {kind}s are written as .csv; use a .csv name")
    if path.resolve() == out.resolve():
        raise DataError(f"--explain-out {path} is the scores file (-o); give another .csv name")
    return check_output(str(path), args.data, args.model, option="--explain-out")


def kind_of(det: Any) -> str:
    if det.window is not None:
        return "series"
    return "image" if len(det.sample_shape_) >= 2 else "table"


def write(det: Any, source: Any, scores: np.ndarray | None, path: Path, args: argparse.Namespace) -> None:
    """Explain the flagged samples (``scores``: every sample's, in order; None for a series) into ``path``."""
    WRITERS[kind_of(det)](det, source, scores, path, args)


def _reference(det: Any, source: Any) -> np.ndarray | None:
    """At most REFERENCE_ROWS rows of the data, spread over all of it (a fixed seed: the same every run);
    None, and nothing read, when the detector stored its training data's typical errors at fit."""
    import numpy as np

    if getattr(det, "element_baseline_", None) is not None:
        return None
    n = len(source)
    if n <= REFERENCE_ROWS:
        return source.read_all()
    return source.read(np.sort(np.random.default_rng(0).choice(n, REFERENCE_ROWS, replace=False)))


def _names(source: Any, width: int) -> list[str]:
    names = getattr(source, "columns", None)
    return (
        [str(c) for c in names]
        if names is not None and len(names) == width
        else [str(j) for j in range(width)]
    )


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _top_header(k: int) -> list[str]:
    return [f"{what}_{i + 1}" for i in range(k) for what in ("column", "share")]


def _top_cells(ex, names: list[str], k: int) -> list[list[Any]]:
    """Per sample: column_1, share_1, ... (empty cells when there are fewer than k columns)."""
    cells = []
    for top in ex.top_features(k):
        row: list[Any] = []
        for j, share in top:
            row += [names[j], f"{share:.4f}"]
        cells.append(row + [""] * (2 * k - len(row)))
    return cells


def _said(top: list[tuple[int, float]], names: list[str]) -> str:
    return ", ".join(f"{names[j]} {share:.0%}" for j, share in top)


def _table(det, source, scores, path: Path, args) -> None:
    import numpy as np

    from aekit.atomic import write_text_atomic

    k = args.explain_top
    idx = np.flatnonzero(scores > det.threshold_)
    names = _names(source, det.n_features_in_)
    rows: list[list[Any]] = []
    if len(idx):
        ex = det.explain(source.read(idx), top=k, reference=_reference(det, source))
        for i, cells in zip(idx, _top_cells(ex, names, k), strict=True):
            rows.append([int(i), f"{scores[i]:.6g}", *cells])
        tops = ex.top_features(k)
        for n, i in enumerate(idx[:SHOWN]):
            print(f"  row {i} (score {scores[i]:.4g}): {_said(tops[n], names)}")
        if len(idx) > SHOWN:
            print(f"  ... and {len(idx) - SHOWN} more flagged rows")
        first = np.bincount([t[0][0] for t in tops], minlength=len(names))
        common = [j for j in np.argsort(-first, kind="stable")[:3] if first[j]]
        print("top column most often: " + ", ".join(f"{names[j]} ({first[j]} rows)" for j in common))
    write_text_atomic(path, _csv_text(["row", "score", *_top_header(k)], rows))
    print(f"wrote explanations of {len(idx)} flagged rows to {path}")


def _image(det, source, scores, path: Path, args) -> None:
    import numpy as np

    from aekit.atomic import atomic_folder
    from aekit.data.images import write_image
    from aekit.estimators.explain import reconstruction
    from aekit.reports.heatmap import strip

    flagged = np.flatnonzero(scores > det.threshold_)
    chosen = np.sort(flagged[np.argsort(-scores[flagged], kind="stable")[: args.explain_max]])
    width = len(str(max(len(source) - 1, 0)))
    rows: list[list[Any]] = []
    with atomic_folder(path) as tmp:
        if len(chosen):
            images = source.read(chosen)
            ex = det.explain(images, reference=_reference(det, source))
            recon = reconstruction(det, images)
            heat = ex.heatmaps()  # (n, H, W)
            for n, i in enumerate(chosen):
                name = f"{i:0{width}d}.png"
                write_image(tmp / name, strip(images[n], recon[n], heat[n]))
                r, c = np.unravel_index(int(heat[n].argmax()), heat[n].shape)
                rows.append([int(i), f"{scores[i]:.6g}", name, int(r), int(c), f"{heat[n, r, c]:.4f}"])
        (tmp / "explanations.csv").write_text(
            _csv_text(["index", "score", "file", "peak_row", "peak_col", "peak_share"], rows),
            encoding="utf-8",
        )
    for row in sorted(rows, key=lambda r: -float(r[1]))[:SHOWN]:
        print(f"  image {row[0]} (score {float(row[1]):.4g}): error peaks at row {row[3]}, column {row[4]}")
    capped = len(chosen) < len(flagged)
    more = (
        f" (the {len(chosen)} highest of {len(flagged)} flagged; --explain-max sets how many)"
        if capped
        else ""
    )
    print(f"wrote {len(chosen)} heat-maps (input | reconstruction | error){more} to {path}")


def _series(det, source, scores, path: Path, args) -> None:
    import numpy as np

    from aekit.atomic import write_text_atomic

    k = args.explain_top
    ex = det.explain(source.read_all(), top=k)
    d = ex.errors.shape[1]
    names = _names(source, d)
    k = min(k, d)
    idx = np.flatnonzero(ex.flagged)
    step_error = ex.step_errors()
    cells = _top_cells(ex, names, k)
    rows = [[int(i), f"{ex.scores[i]:.6g}", f"{step_error[i]:.6g}", *cells[i]] for i in idx]
    write_text_atomic(path, _csv_text(["step", "score", "error", *_top_header(k)], rows))
    if len(idx):
        tops = ex.top_features(k)
        # The flagged steps around one anomaly all share its windows' scores; the error says which step
        # within them is off.
        for i in sorted(idx, key=lambda i: -step_error[i])[:SHOWN]:
            print(
                f"  step {i} (error {step_error[i]:.4g}, score {ex.scores[i]:.4g}): {_said(tops[i], names)}"
            )
    print(f"wrote explanations of {len(idx)} flagged time steps to {path}")


WRITERS = {"table": _table, "image": _image, "series": _series}
