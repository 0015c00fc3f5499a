"""AnomalyDetector.explain and ``aekit detect --explain``: the columns, pixels and time steps that carry a
score (aekit/estimators/explain.py, aekit/cli/detect_explain.py)."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit import AnomalyDetector
from aekit.errors import ConfigError, DataError
from aekit.estimators.explain import element_baseline, spread_errors
from cli_helpers import one_line_error, run

COLUMNS = [f"c{j}" for j in range(8)]
NOISY = 3  # the last columns are pure noise: rebuilt badly on every row, so raw errors would blame them


def corrupted_table(n: int = 500, seed: int = 0):
    """Five columns driven by two latent factors, three of pure noise; every 20th row has one of the five
    moved by 4 standard deviations. Returns the frame, the corrupted rows and their corrupted columns."""
    rng = np.random.default_rng(seed)
    k = len(COLUMNS)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, k)) + 0.1 * rng.normal(size=(n, k))
    x[:, k - NOISY :] = rng.normal(size=(n, NOISY))
    bad = rng.choice(n, n // 20, replace=False)
    cols = rng.integers(0, k - NOISY, size=len(bad))
    x[bad, cols] += 4 * x.std(axis=0)[cols] * rng.choice([-1, 1], len(bad))
    return pd.DataFrame(x, columns=COLUMNS), bad, cols


@pytest.fixture(scope="module")
def table():
    frame, bad, cols = corrupted_table()
    det = AnomalyDetector(n_estimators=1, refits=0, epochs=60, random_state=0, n_jobs=1).fit(frame)
    return det, frame, bad, cols


DIGIT_CORNERS = [(0, 0), (0, 6), (6, 0), (6, 6)]  # black in nearly every digit


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = (load_digits().images[:600] * (255 / 16)).astype(np.uint8)  # (600, 8, 8)
    det = AnomalyDetector(n_estimators=1, refits=0, epochs=5, code_size=16, random_state=0, n_jobs=1).fit(x)
    test = x[100:140].copy()
    for i in range(8):  # a bright 2x2 square in a corner of the first eight
        r, c = DIGIT_CORNERS[i % 4]
        test[i, r : r + 2, c : c + 2] = 255
    return det, test


SPIKE = 700


def spiked_series(n: int = 1200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    s = (np.column_stack([np.sin(t / 8), np.cos(t / 13)]) + 0.05 * rng.normal(size=(n, 2))).astype(np.float32)
    spiked = s.copy()
    spiked[SPIKE, 1] += 3.0
    return s, spiked


@pytest.fixture(scope="module")
def series():
    clean, spiked = spiked_series()
    det = AnomalyDetector(n_estimators=1, refits=0, epochs=5, window=16, random_state=0, n_jobs=1).fit(clean)
    return det, spiked


# -- Python -----------------------------------------------------------------------------------------------


def test_explanation_points_at_the_corrupted_column(table):
    det, frame, bad, cols = table
    ex = det.explain(frame)
    assert ex.kind == "table" and ex.baseline == "training"  # fit stores each column's typical error
    assert ex.contributions.shape == frame.shape and ex.scores.shape == (len(frame),)
    np.testing.assert_allclose(ex.contributions.sum(axis=1), 1.0)
    assert np.array_equal(ex.flagged, ex.scores > det.threshold_)
    top = ex.top_indices(1)[bad, 0]
    assert (top == cols).mean() >= 0.7, (top, cols)
    # the noise columns are rebuilt badly on every row; normalised by their usual error they are not blamed
    assert (top >= len(COLUMNS) - NOISY).mean() <= 0.1
    named = ex.top_features(2)[bad[0]]
    assert named[0][0] == COLUMNS[cols[0]] and named[0][1] > named[1][1] > 0


def test_baselines_reference_stored_and_none(table):
    det, frame, bad, cols = table
    few = frame.iloc[bad[:3]]
    stored = det.element_baseline_  # fit keeps each column's typical error: a few rows explain alone
    assert stored.shape == (len(COLUMNS),)
    assert det.explain(few).baseline == "training"
    assert (det.explain(few).top_indices(1)[:, 0] == cols[:3]).mean() >= 2 / 3
    det.element_baseline_ = None  # a file from before fit stored it
    try:
        assert det.explain(few).baseline == "none"  # too few rows for a median of their own
        assert det.explain(frame).baseline == "batch"
        with_reference = det.explain(few, reference=frame)
        assert with_reference.baseline == "reference"
        assert (with_reference.top_indices(1)[:, 0] == cols[:3]).mean() >= 2 / 3
        det.element_baseline_ = element_baseline(det, frame.to_numpy(np.float32))
        np.testing.assert_allclose(det.explain(few).errors, with_reference.errors, rtol=1e-5)
    finally:
        det.element_baseline_ = stored


def test_explain_refuses_bad_input(table, digits):
    det, frame, _, _ = table
    with pytest.raises(ConfigError, match="top must be a whole number"):
        det.explain(frame, top=0)
    with pytest.raises(DataError, match="features"):
        det.explain(frame.iloc[:, :5])
    with pytest.raises(ConfigError, match="heatmaps"):
        digits[0].explain(digits[1]).top_features()
    with pytest.raises(ConfigError, match="series"):
        det.explain(frame).top_steps()


def test_heatmap_peaks_at_a_pasted_bright_square(digits):
    det, test = digits
    ex = det.explain(test)
    heat = ex.heatmaps()
    assert ex.kind == "image" and heat.shape == (len(test), 8, 8)
    for i in range(8):
        r, c = DIGIT_CORNERS[i % 4]
        peak = np.unravel_index(heat[i].argmax(), heat[i].shape)
        assert r <= peak[0] < r + 2 and c <= peak[1] < c + 2, (i, peak)
        assert heat[i, r : r + 2, c : c + 2].sum() > 0.3


@pytest.mark.parametrize("kind", ["dense", "conv1d"])
def test_series_top_step_is_the_spike(series, kind):
    det, spiked = series
    if kind == "conv1d":
        det = AnomalyDetector(
            kind="conv1d", n_estimators=1, refits=0, epochs=5, window=16, random_state=0, n_jobs=1
        ).fit(spiked_series()[0])
    ex = det.explain(pd.DataFrame(spiked, columns=["a", "b"]))
    assert ex.kind == "series" and ex.errors.shape == spiked.shape
    assert ex.top_steps(1)[0] == SPIKE
    assert ex.flagged[SPIKE]
    assert ex.top_features(1)[SPIKE][0][0] == "b"


def test_spread_errors_averages_the_windows_over_each_step():
    # two windows of 3 steps over 4 steps (stride 1), one column: steps 1 and 2 are in both
    e = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    np.testing.assert_allclose(spread_errors(e, 4, 3)[:, 0], [1.0, 6.0, 11.5, 30.0])
    # stride 2 leaves step 4 uncovered: 0, not NaN
    np.testing.assert_allclose(spread_errors(e, 5, 3, stride=2)[:, 0], [1.0, 2.0, 6.5, 20.0, 30.0])


# -- CLI ----------------------------------------------------------------------------------------------------


def _csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_explains_flagged_rows_of_a_table(table, capsys, tmp_path):
    det, frame, bad, cols = table
    det.save(tmp_path / "d.aek")
    frame.to_csv(tmp_path / "data.csv", index=False)
    code, out, err = run(
        capsys, "detect", tmp_path / "d.aek", tmp_path / "data.csv", "-o", tmp_path / "s.csv", "--explain"
    )
    assert code == 0, err
    rows = _csv(tmp_path / "s.explain.csv")
    flagged = np.flatnonzero(det.decision_function(frame) > det.threshold_)
    assert [int(r["row"]) for r in rows] == flagged.tolist()
    assert list(rows[0]) == [
        "row",
        "score",
        "column_1",
        "share_1",
        "column_2",
        "share_2",
        "column_3",
        "share_3",
    ]
    truth = dict(zip(bad.tolist(), cols.tolist(), strict=True))
    hits = [r["column_1"] == COLUMNS[truth[int(r["row"])]] for r in rows if int(r["row"]) in truth]
    assert len(hits) >= 5 and np.mean(hits) >= 0.7
    assert "top column most often: c" in out and "s.explain.csv" in out


def test_cli_explains_with_a_detector_file_from_before_the_stored_baseline(table, capsys, tmp_path):
    """Such a file has no element_baseline: the typical errors come from a sample of the data instead."""
    det, frame, bad, cols = table
    stored = det.element_baseline_
    det.element_baseline_ = None  # save leaves the tensor out, as files written before it did
    try:
        det.save(tmp_path / "old.aek")
    finally:
        det.element_baseline_ = stored
    frame.to_csv(tmp_path / "data.csv", index=False)
    code, out, err = run(
        capsys, "detect", tmp_path / "old.aek", tmp_path / "data.csv", "-o", tmp_path / "s.csv", "--explain"
    )
    assert code == 0, err
    truth = dict(zip(bad.tolist(), cols.tolist(), strict=True))
    rows = _csv(tmp_path / "s.explain.csv")
    hits = [r["column_1"] == COLUMNS[truth[int(r["row"])]] for r in rows if int(r["row"]) in truth]
    assert len(hits) >= 5 and np.mean(hits) >= 0.7


def test_cli_writes_heatmaps_of_flagged_images(digits, capsys, tmp_path):
    det, test = digits
    det.save(tmp_path / "d.aek")
    np.save(tmp_path / "x.npy", test)
    argv = ["detect", tmp_path / "d.aek", tmp_path / "x.npy", "-o", tmp_path / "s.npy", "--explain"]
    code, out, err = run(capsys, *argv, "--explain-max", "3", "--explain-out", tmp_path / "maps")
    assert code == 0, err
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    index = _csv(tmp_path / "maps" / "explanations.csv")
    assert len(pngs) == len(index) == 3
    picture = np.asarray(Image.open(pngs[0]))
    assert picture.shape == (96, 3 * 96 + 8, 3)  # 8x8 zoomed 12x: input | reconstruction | heat-map
    scores = det.decision_function(test)
    assert {int(r["index"]) for r in index} == set(np.argsort(-scores)[:3].tolist())
    assert "the 3 highest of" in out


def test_cli_explains_a_series_by_time_step(series, capsys, tmp_path):
    det, spiked = series
    det.save(tmp_path / "d.aek")
    pd.DataFrame(spiked, columns=["a", "b"]).to_csv(tmp_path / "s.csv", index=False)
    code, out, err = run(
        capsys, "detect", tmp_path / "d.aek", tmp_path / "s.csv", "-o", tmp_path / "o.csv", "--explain"
    )
    assert code == 0, err
    rows = _csv(tmp_path / "o.explain.csv")
    assert str(SPIKE) in {r["step"] for r in rows}
    top = max(rows, key=lambda r: float(r["error"]))
    assert top["step"] == str(SPIKE) and top["column_1"] == "b"
    assert f"step {SPIKE} (error" in out


def test_cli_explain_bad_input_is_one_line(table, capsys, tmp_path):
    det, frame, _, _ = table
    det.save(tmp_path / "d.aek")
    frame.to_csv(tmp_path / "data.csv", index=False)
    base = ["detect", tmp_path / "d.aek", tmp_path / "data.csv", "-o", tmp_path / "s.csv"]
    one_line_error(capsys, [*base, "--explain-top", "2"], "--explain-top", "only apply with --explain")
    one_line_error(capsys, [*base, "--explain", "--explain-out", tmp_path / "e.txt"], ".csv")
    one_line_error(capsys, [*base, "--explain", "--explain-out", tmp_path / "s.csv"], "scores file")
    one_line_error(capsys, [*base, "--explain", "--explain-out", tmp_path / "data.csv"], "--explain-out")
    assert not (tmp_path / "s.csv").exists()  # refused before any scoring


def test_detect_help_lists_the_explain_options(capsys):
    code, out, _ = run(capsys, "detect", "--help")
    assert code == 0
    for option in ("--explain", "--explain-out", "--explain-top", "--explain-max"):
        assert option in out
