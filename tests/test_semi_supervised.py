"""AnomalyDetector.fit(X, y) with a few known anomalies: kept out of training, their codes draw scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aekit import AnomalyDetector
from aekit.errors import DataError

TINY = {"epochs": 10, "n_estimators": 2, "refits": 1, "hidden": (8,), "code_size": 2, "batch_size": 32}


def grouped_anomalies(seed: int, n: int = 300, d: int = 6, n_out: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A rank-2 Gaussian bulk and a tight group of anomalies just off its plane (the first rows): a
    group is what unsupervised training learns to rebuild, and what a few labels give away."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, d))
    x = rng.normal(size=(n, 2)) @ basis + 0.1 * rng.normal(size=(n, d))
    centre = rng.normal(size=2) @ basis + 0.8 * rng.normal(size=d)
    x[:n_out] = centre + 0.1 * rng.normal(size=(n_out, d))
    y = np.zeros(n, np.int64)
    y[:n_out] = 1
    return x.astype(np.float32), y


def test_three_labels_lift_the_auroc_on_the_other_rows():
    plain, semi = [], []
    for seed in range(2):
        x, y = grouped_anomalies(seed)
        given = np.zeros_like(y)
        given[:3] = 1  # 3 of the 24 anomalies are known
        rest = np.arange(3, len(y))
        u = AnomalyDetector(random_state=seed, **TINY).fit(x).decision_scores_
        s = AnomalyDetector(random_state=seed, **TINY).fit(x, given).decision_scores_
        plain.append(roc_auc_score(y[rest], u[rest]))
        semi.append(roc_auc_score(y[rest], s[rest]))
    assert min(semi) >= 0.95, semi
    assert np.mean(semi) >= np.mean(plain) + 0.05, (plain, semi)


def test_known_anomalies_never_train_a_member():
    x, y = grouped_anomalies(0)
    det = AnomalyDetector(random_state=0, **TINY).fit(x, y)  # every anomaly known
    assert [r["rows"] for r in det.rounds_][0] == len(x) - y.sum()
    assert all(r["rows"] <= len(x) - y.sum() for r in det.rounds_)
    assert len(det.anomaly_codes_) == len(det.estimators_) and det.anomaly_codes_[0].shape == (24, 2)
    # label_weight=0: the same members, without the part that pulls scores towards the known anomalies
    plain = AnomalyDetector(random_state=0, label_weight=0.0, **TINY).fit(x, y)
    assert not np.allclose(plain.decision_scores_, det.decision_scores_)


def test_save_and_load_keep_the_known_anomalies(tmp_path):
    x, y = grouped_anomalies(1)
    given = np.zeros_like(y)
    given[:3] = 1
    det = AnomalyDetector(random_state=0, **TINY).fit(x, given)
    det.save(tmp_path / "d.aek")
    back = AnomalyDetector.load(tmp_path / "d.aek")
    np.testing.assert_allclose(back.decision_function(x), det.decision_function(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(back.anomaly_codes_[0], det.anomaly_codes_[0])
    np.testing.assert_array_equal(back.element_baseline_, det.element_baseline_)


def test_a_series_takes_one_label_per_time_step():
    t = np.arange(400, dtype=np.float32)
    series = np.sin(t / 5)[:, None] + 0.05 * np.random.default_rng(0).normal(size=(400, 1)).astype(np.float32)
    series[300:305] += 3.0
    labels = np.zeros(400, np.int64)
    labels[300:305] = 1
    det = AnomalyDetector(window=16, random_state=0, **TINY).fit(series, labels)
    n_windows = 400 - 16 + 1
    assert det.rounds_[0]["rows"] == n_windows - (5 + 16 - 1)  # every window touching a labelled step
    assert det.decision_scores_.shape == (400,)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros(10), "one label per sample \\(300\\)"),
        (np.full(300, 2), "must be 1 \\(a known anomaly\\) or 0"),
        (np.ones(300), "every sample as an anomaly"),
    ],
)
def test_bad_labels_say_what_y_must_hold(labels, message):
    x, _ = grouped_anomalies(0)
    with pytest.raises(DataError, match=message):
        AnomalyDetector(**TINY).fit(x, labels)


def test_large_arrays_are_scored_in_chunks_with_the_same_scores(monkeypatch):
    import aekit.estimators.anomaly as anomaly

    x, _ = grouped_anomalies(0)
    det = AnomalyDetector(random_state=0, **TINY).fit(x)
    whole = det.decision_function(x)
    monkeypatch.setattr(anomaly, "SCORE_CHUNK_ROWS", 64)
    seen = []
    score_rows = det._combine
    monkeypatch.setattr(det, "_combine", lambda rows, n: seen.append(len(rows)) or score_rows(rows, n))
    np.testing.assert_allclose(det.decision_function(x), whole, rtol=1e-6, atol=1e-9)
    assert max(seen) == 64 and sum(seen) == len(x)


def test_train_takes_known_anomalies_from_a_file(tmp_path, capsys):
    from aekit.cli.main import main as _  # noqa: F401  (the CLI imports cleanly)
    from cli_helpers import assert_one_error, run

    x, y = grouped_anomalies(0)
    np.save(tmp_path / "x.npy", x)
    given = np.zeros_like(y)
    given[:3] = 1
    np.save(tmp_path / "known.npy", given)
    common = ["--epochs", "3", "--hidden", "8", "--batch-size", "32", "--refits", "1", "--quiet"]
    common += ["--runs", tmp_path / "runs"]
    code, out, err = run(
        capsys, "train", "--task", "detect", "--data", tmp_path / "x.npy", "--out", tmp_path / "d.aek",
        "--known-anomalies", tmp_path / "known.npy", *common,
    )  # fmt: skip
    assert code == 0, err
    det = AnomalyDetector.load(tmp_path / "d.aek")
    assert len(det.anomaly_codes_) == len(det.estimators_) and len(det.anomaly_codes_[0]) == 3
    np.save(tmp_path / "short.npy", given[:10])
    code, out, err = run(
        capsys, "train", "--task", "detect", "--data", tmp_path / "x.npy", "--out", tmp_path / "e.aek",
        "--known-anomalies", tmp_path / "short.npy", *common,
    )  # fmt: skip
    assert_one_error(code, err, "10 values", "300 samples")
    assert not (tmp_path / "e.aek").exists()
