"""AnomalyDetector (tables, images, series), sliding windows, robust scaling, and ``aekit detect`` end to end.

Tiny data throughout: planted outliers far from a Gaussian bulk must rank on top, so a detector that
scored at random (or backwards) fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import AnomalyDetector, AutoEncoder
from aekit.data.scaling import IQR_TO_STD, DataSpec, fit_spec
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.estimators.windows import sliding_windows, spread_scores
from cli_helpers import assert_one_error, run

TINY = {
    "epochs": 2,
    "n_estimators": 2,
    "refits": 1,
    "hidden": (8,),
    "code_size": 2,
    "batch_size": 32,
    "random_state": 0,
}


def planted_table(n: int = 150, d: int = 6, n_out: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A correlated Gaussian bulk (rank 2) plus ``n_out`` points off its plane: the first rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 0.1 * rng.normal(size=(n, d))
    y = np.zeros(n, np.int64)
    x[:n_out] += rng.choice([-4.0, 4.0], size=(n_out, d))
    y[:n_out] = 1
    return x.astype(np.float32), y


def spiky_series(t: int = 300, d: int = 2) -> np.ndarray:
    steps = np.arange(t)[:, None]
    s = np.sin(steps / 4.0 + np.arange(d)) + 0.05 * np.random.default_rng(0).normal(size=(t, d))
    s[200:204] += 4.0
    return s.astype(np.float32)


# -- the estimator -------------------------------------------------------------------------------------------


def test_table_scores_follow_pyods_conventions():
    x, y = planted_table()
    det = AnomalyDetector(contamination=0.1, **TINY).fit(x)
    assert det.decision_scores_.shape == (len(x),)
    assert roc_auc_score(y, det.decision_scores_) > 0.95
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90))
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))
    assert det.labels_.sum() == pytest.approx(0.1 * len(x), abs=1)
    np.testing.assert_allclose(det.decision_function(x), det.decision_scores_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(det.predict(x), det.labels_)
    np.testing.assert_allclose(det.score_samples(x), -det.decision_scores_, rtol=1e-6, atol=1e-9)
    proba = det.predict_proba(x)
    assert proba.shape == (len(x), 2) and np.allclose(proba.sum(1), 1) and proba.min() >= 0
    assert set(np.unique(det.predict(x[:10]))) <= {0, 1}
    assert len(det.estimators_) == 4  # n_estimators x (1 + refits)
    # the first ensemble trains `epochs`, the refits as long ("auto")
    assert [len(m.history_) for m in det.estimators_] == [2, 2, 2, 2]


def test_refit_epochs_can_be_set():
    x, _ = planted_table(n=60)
    det = AnomalyDetector(**{**TINY, "refit_epochs": 3}).fit(x)
    assert [len(m.history_) for m in det.estimators_] == [2, 2, 3, 3]


def test_auto_epochs_fit_each_round_in_a_step_budget(monkeypatch):
    import aekit.estimators.anomaly as anomaly

    det = AnomalyDetector(batch_size=100)
    det._convolutional = False
    assert det._round_epochs(0, 150) == 20  # small data: 2 steps an epoch, the full 20 epochs
    assert det._round_epochs(0, 10_000) == 4  # 100 steps an epoch: 400 steps make 4 epochs
    assert det._round_epochs(1, 10_000) == 4  # refits as long ("auto")
    assert det._round_epochs(0, 1_000_000) == 2  # never fewer than 2 epochs
    monkeypatch.setattr(anomaly, "ROUND_STEPS", 1000)
    assert det._round_epochs(0, 10_000) == 10
    det._convolutional = True  # images and series models keep 20 epochs
    assert det._round_epochs(0, 10_000) == 20
    assert AnomalyDetector(epochs=3, refit_epochs=5)._round_epochs(1, 10_000) == 5


def test_rounds_say_what_each_round_trained():
    x, _ = planted_table(n=60)
    det = AnomalyDetector(**TINY).fit(x)
    assert [(r["members"], r["epochs"]) for r in det.rounds_] == [(2, 2), (2, 2)]
    assert det.rounds_[0]["rows"] == 60 and det.rounds_[1]["rows"] == pytest.approx(0.7 * 60, abs=1)
    last = [m.history_[-1]["recon"] for m in det.estimators_]
    assert det.rounds_[0]["final"]["recon"] == pytest.approx(np.mean(last[:2]))
    assert det.rounds_[1]["final"]["recon"] == pytest.approx(np.mean(last[2:]))


def test_auto_sizes_and_log_scale_centres():
    x, y = planted_table(n=120, d=12)
    det = AnomalyDetector(epochs=2, n_estimators=2, refits=0, batch_size=32, random_state=0).fit(x)
    member = det.estimators_[0]
    assert member.code_size == 3 and member.hidden == (8,)  # code max(2, D // 4), hidden h = max(8, D // 2)
    assert det.estimators_[1].hidden == (16,)  # odd members are twice as wide
    assert det.code_weight == 1.0 and det.neighbor_weight == 1.0 and AnomalyDetector().refits == 3
    stats = det.stats_[0]
    assert stats["score"]["log"] and stats["distance"]["log"]
    raw, _ = det._raw_scores(member, x)
    assert stats["score"]["median"] == pytest.approx(np.median(np.log(raw)), rel=1e-6)
    assert roc_auc_score(y, det.decision_scores_) > 0.9


def test_centres_without_the_log_key_stay_linear():
    from aekit.estimators.anomaly import _robust_centre, _standardised

    values = np.array([1.0, 2.0, 4.0, 8.0, 1000.0])
    linear = _robust_centre(values)
    old = {k: v for k, v in linear.items() if k != "log"}  # a centre as files before the log scale hold it
    np.testing.assert_allclose(_standardised(values, old), _standardised(values, linear))
    assert _standardised(values, old)[2] == pytest.approx(0.0)
    logged = _robust_centre(values, log=True)
    assert logged["median"] == pytest.approx(np.log(4.0))
    # on the log scale the 1000 is ~5 spreads out, on the linear one it is hundreds
    assert _standardised(values, logged)[-1] < 10 < _standardised(values, linear)[-1]
    assert np.isfinite(_standardised(np.zeros(2), logged)).all()  # an exact 0 error does not give -inf


def test_score_is_the_mean_of_each_members_three_standardised_parts():
    from sklearn.neighbors import NearestNeighbors

    from aekit.estimators.anomaly import _mahalanobis, _standardised

    x, _ = planted_table(n=80)
    det = AnomalyDetector(**{**TINY, "code_weight": 0.5, "neighbor_weight": 2.0, "neighbors": 5}).fit(x)
    total = np.zeros(len(x))
    for member, stats, reference in zip(det.estimators_, det.stats_, det.references_, strict=True):
        raw, codes = det._raw_scores(member, x)
        d = NearestNeighbors(n_neighbors=6).fit(reference).kneighbors(codes)[0]  # (N, 6)
        near = np.where(d[:, :1] == 0, d[:, 1:], d[:, :5]).mean(axis=1)  # a training row is not its own
        total += _standardised(raw, stats["score"])
        total += 0.5 * _standardised(_mahalanobis(codes, stats), stats["distance"])
        total += 2.0 * _standardised(near, stats["neighbors"])
    np.testing.assert_allclose(det.decision_scores_, total / len(det.estimators_), rtol=1e-6, atol=1e-9)


def test_refits_leave_out_the_rows_whose_codes_lie_farthest_out():
    from aekit.estimators.anomaly import _mahalanobis, _standardised

    x, y = planted_table(n=100, n_out=8)
    det = AnomalyDetector(**{**TINY, "refits": 2, "trim": 0.2}).fit(x)
    assert len(det.estimators_) == 6
    assert [len(r) for r in det.references_] == [100, 100, 80, 80, 80, 80]  # each member's training rows
    # Round 2 trains on the 80 rows with the smallest summed code distance of the first two members.
    remoteness = np.zeros(len(x))
    for member, stats in zip(det.estimators_[:2], det.stats_[:2], strict=True):
        remoteness += _standardised(_mahalanobis(det._raw_scores(member, x)[1], stats), stats["distance"])
    kept = np.flatnonzero(remoteness <= np.quantile(remoteness, 0.8))
    _, codes = det._raw_scores(det.estimators_[2], x)
    np.testing.assert_allclose(det.references_[2], codes[kept], rtol=1e-6)
    assert not set(np.flatnonzero(y)) & set(kept)  # the planted outliers are all left out


def test_a_training_row_is_not_its_own_neighbour():
    x, _ = planted_table(n=60)
    det = AnomalyDetector(**{**TINY, "refits": 0, "neighbors": 3}).fit(x)
    _, codes = det._raw_scores(det.estimators_[0], x)
    reference = det.references_[0].astype(np.float64)
    gaps = np.linalg.norm(codes[:, None, :] - reference[None, :, :], axis=2)  # (N, N): row i is reference i
    np.fill_diagonal(gaps, np.inf)  # every other training code, not itself
    expected = np.sort(gaps, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(det._neighbor_distance(0, codes, 3), expected, rtol=1e-4)


def test_large_training_sets_keep_a_capped_reference(monkeypatch):
    from aekit.estimators import anomaly

    monkeypatch.setattr(anomaly, "MAX_REFERENCE_VALUES", 40)  # 20 rows of 2-dim codes
    x, _ = planted_table(n=60)
    det = AnomalyDetector(**{**TINY, "refits": 0}).fit(x)
    assert [len(r) for r in det.references_] == [20, 20]
    assert det.decision_function(x).shape == (60,)


def test_members_without_reference_codes_score_without_the_neighbour_part():
    """Detector files of format 1 have no reference codes: they still load and score as they did."""
    x, _ = planted_table(n=60)
    det = AnomalyDetector(**{**TINY, "neighbor_weight": 0.0}).fit(x)
    expected = det.decision_function(x)
    det.set_params(neighbor_weight=1.0)
    for stats in det.stats_:
        del stats["neighbors"]
    det.references_ = [None] * len(det.estimators_)
    np.testing.assert_allclose(det.decision_function(x), expected, rtol=1e-6, atol=1e-9)


def test_percentile_and_set_threshold_move_only_the_threshold():
    x, _ = planted_table()
    det = AnomalyDetector(percentile=80, **TINY).fit(x)
    assert det.labels_.sum() == pytest.approx(0.2 * len(x), abs=1)
    scores = det.decision_scores_.copy()
    det.set_threshold(contamination=0.05)
    assert det.labels_.sum() == pytest.approx(0.05 * len(x), abs=1) and det.percentile is None
    np.testing.assert_array_equal(det.decision_scores_, scores)
    with pytest.raises(ConfigError, match="exactly one"):
        det.set_threshold()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"contamination": 0.7}, "contamination must lie in"),
        ({"percentile": 120}, "percentile must lie in"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"scoring": "likelihood"}, "scoring='likelihood'"),
        ({"scoring": "elbo"}, "needs kind='vae'"),
        ({"code_weight": -1}, "code_weight"),
        ({"neighbor_weight": -0.5}, "neighbor_weight"),
        ({"neighbors": 0}, "neighbors must be"),
        ({"refits": -1}, "refits must be"),
        ({"trim": 1.0}, "trim must lie in"),
        ({"refit_epochs": 0}, "refit_epochs must be"),
        ({"refit_epochs": "long"}, "refit_epochs must be"),
        ({"epochs": 0}, "epochs must be 'auto'"),
        ({"epochs": "long"}, "epochs must be 'auto'"),
        ({"label_weight": -1}, "label_weight"),
        ({"autoencoder_params": {"colour": 1}}, "'colour'"),
        ({"autoencoder_params": {"random_state": 1}}, "sets the seeds"),
    ],
)
def test_bad_settings_raise_in_fit_with_the_fix(params, message):
    x, _ = planted_table(n=40)
    det = AnomalyDetector(**{**TINY, **params})  # __init__ only stores
    with pytest.raises(ConfigError, match=message):
        det.fit(x)


def test_save_load_round_trip_gives_the_same_scores(tmp_path):
    x, _ = planted_table()
    det = AnomalyDetector(**TINY).fit(x)
    det.save(tmp_path / "d.aek")
    back = AnomalyDetector.load(tmp_path / "d.aek")
    np.testing.assert_allclose(back.decision_function(x), det.decision_scores_, rtol=1e-6, atol=1e-9)
    assert back.threshold_ == det.threshold_ and back.get_params() == det.get_params()
    np.testing.assert_array_equal(back.labels_, det.labels_)


def test_model_files_of_the_other_kind_are_refused_with_directions(tmp_path):
    x, _ = planted_table(n=40)
    AutoEncoder(code_size=2, hidden=(4,), epochs=1, random_state=0).fit(x).save(tmp_path / "ae.aek")
    with pytest.raises(ModelFileError, match="--task detect"):
        AnomalyDetector.load(tmp_path / "ae.aek")
    AnomalyDetector(**TINY).fit(x).save(tmp_path / "det.aek")
    with pytest.raises(ModelFileError, match="not an aekit model file"):
        AutoEncoder.load(tmp_path / "det.aek")


def test_vae_scores_by_negative_elbo():
    x, y = planted_table()
    det = AnomalyDetector(kind="vae", **TINY).fit(x)
    assert det.scoring_ == "elbo"
    assert roc_auc_score(y, det.decision_scores_) > 0.9


def test_same_seed_same_scores():
    x, _ = planted_table(n=60)
    a = AnomalyDetector(**TINY).fit(x).decision_scores_
    b = AnomalyDetector(**TINY).fit(x).decision_scores_
    np.testing.assert_array_equal(a, b)


def test_images_use_a_conv_model_and_wrong_channels_are_named():
    from aekit.data import load

    digits = load("digits")  # 8x8 images in [0, 1]: a hundred zeros and eight ones, the anomalies
    x, y = digits.x_train, digits.y_train
    images, truth = np.concatenate([x[y == 0][:100], x[y == 1][:8]]), np.r_[np.zeros(100), np.ones(8)]
    det = AnomalyDetector(**{**TINY, "hidden": (4, 8)}).fit(images)
    assert det.estimators_[0].kind == "conv" and det.decision_scores_.shape == (108,)
    assert roc_auc_score(truth, det.decision_scores_) > 0.9
    with pytest.raises(DataError, match="channel"):
        det.decision_function(np.zeros((3, 8, 8, 3), np.float32))


def test_a_table_with_the_wrong_width_uses_scikit_learns_wording():
    x, _ = planted_table(n=40)
    det = AnomalyDetector(**TINY).fit(x)
    with pytest.raises(DataError, match="X has 5 features, but AnomalyDetector is expecting 6"):
        det.decision_function(x[:, :5])


# -- series ------------------------------------------------------------------------------------------------


def test_sliding_windows_are_step_major_rows():
    s = np.arange(10, dtype=np.float32).reshape(5, 2)  # (T=5, D=2)
    w = sliding_windows(s, 3, stride=2)
    np.testing.assert_array_equal(w, [[0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9]])
    assert sliding_windows(np.arange(7.0), 4).shape == (4, 4)


def test_spread_scores_is_the_mean_over_covering_windows():
    scores = np.array([1.0, 2.0, 4.0])
    got = spread_scores(scores, n_steps=7, size=3, stride=2)  # windows at 0-2, 2-4, 4-6
    np.testing.assert_allclose(got, [1, 1, 1.5, 2, 3, 4, 4])
    rng = np.random.default_rng(1)
    many = rng.normal(size=20)
    naive = [np.mean([many[i] for i in range(20) if i <= t < i + 5]) for t in range(24)]
    np.testing.assert_allclose(spread_scores(many, 24, 5), naive)


def test_series_detector_scores_every_time_step_and_finds_the_spike():
    s = spiky_series()
    det = AnomalyDetector(window=8, **TINY).fit(s)
    assert det.decision_scores_.shape == (len(s),)
    assert 196 <= int(np.argmax(det.decision_scores_)) <= 208
    assert det.decision_function(s[:50]).shape == (50,)
    with pytest.raises(DataError, match="fewer than the window of 8"):
        det.decision_function(s[:5])
    with pytest.raises(DataError, match="trained on a series with 2"):
        det.decision_function(s[:, :1])


# -- robust scaling ---------------------------------------------------------------------------------------


def test_robust_scaling_uses_median_and_iqr_and_is_stored():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(400, 3)).astype(np.float32)
    x[:, 2] = 0.0
    x[:4, 2] = 1.0  # IQR 0: falls back to the standard deviation
    x[:10, 0] = 1e4  # outliers move the standard deviation, not the robust scale
    spec = fit_spec(x, "robust", "mse")
    q1, med, q3 = np.percentile(x[:, 1], [25, 50, 75])
    assert spec.offset[1] == pytest.approx(med, rel=1e-5)
    assert spec.scale[1] == pytest.approx((q3 - q1) / IQR_TO_STD, rel=1e-5)
    assert spec.scale[0] < 10 and spec.scale[2] == pytest.approx(x[:, 2].std(), rel=1e-5)
    assert (
        DataSpec.from_dict(spec.to_dict()) == spec or DataSpec.from_dict(spec.to_dict()).scaling == "robust"
    )
    ae = AutoEncoder(code_size=2, hidden=(4,), epochs=1, scaling="robust", random_state=0).fit(x)
    assert ae.reconstruct(x).shape == x.shape


# -- scikit-learn's checks ----------------------------------------------------------------------------------
# All of them pass, the subset and sample-order checks included (short batches are padded: see
# tests/test_estimator.py::test_a_row_gets_the_same_bits_alone_and_in_a_batch). They run on the
# unsupervised fit: fit's y holds known anomalies (0 or 1) and refuses other values, where fifteen of the
# checks pass class labels 0, 1, 2 as a y to be ignored. tests/test_semi_supervised.py covers y.


class UnsupervisedDetector(AnomalyDetector):
    """The detector with y ignored, as scikit-learn's checks expect of an outlier detector."""

    def fit(self, X, y=None):
        return super().fit(X)


@parametrize_with_checks(
    [UnsupervisedDetector(epochs=1, n_estimators=1, refits=1, hidden=(4,), code_size=2, random_state=0)],
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# -- the command line -------------------------------------------------------------------------------------

TRAIN = ["--epochs", "2", "--hidden", "8", "--batch-size", "32", "--refits", "1", "--quiet"]


@pytest.fixture
def table_model(tmp_path, capsys):
    x, y = planted_table()
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y)
    frame.to_csv(tmp_path / "data.csv", index=False)
    code, out, err = run(
        capsys, "train", "--task", "detect", "--data", tmp_path / "data.csv", "--out", tmp_path / "d.aek",
        "--runs", tmp_path / "runs", "--contamination", "0.05", *TRAIN,
    )  # fmt: skip
    assert code == 0, err
    return tmp_path


def test_train_and_detect_a_table_with_labels(table_model, capsys):
    tmp = table_model
    code, out, err = run(capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", tmp / "scores.csv")
    assert code == 0, err
    scores = pd.read_csv(tmp / "scores.csv")
    assert list(scores.columns) == ["score", "label"] and len(scores) == 150
    assert scores["label"].sum() == pytest.approx(0.05 * 150, abs=1)
    auroc = float(out.split("AUROC ")[1].split(",")[0])
    assert auroc > 0.95 and "average precision" in out
    y = pd.read_csv(tmp / "data.csv")["label"].to_numpy()
    assert auroc == pytest.approx(roc_auc_score(y, scores["score"]), abs=1e-4)


def test_train_summary_names_each_round_and_its_epochs(tmp_path, capsys):
    """The log's last epoch is a refit member's: the summary says which round trained how long, on what."""
    np.save(tmp_path / "x.npy", planted_table(n=60)[0])
    options = [o for o in TRAIN if o != "--quiet"]
    code, out, err = run(
        capsys, "train", "--task", "detect", "--data", tmp_path / "x.npy", "--out", tmp_path / "d.aek",
        "--runs", tmp_path / "runs", *options,
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("as 6 autoencoders in 2 round(s) of 3") and "epoch" not in lines[0]
    assert lines[1].startswith("round 1: 3 member(s) x 2 epoch(s) on all 60 rows; final training recon ")
    assert lines[2].startswith("round 2: 3 member(s) x 2 epoch(s) on 42 rows (refit: the 30% farthest out")
    assert "(mean of its members)" in lines[2] and lines[3].startswith("wrote ")
    # the log heads each round's epochs with the round
    assert "round 1/2 on all 60 rows: 3 member(s) of 2 epoch(s)" in err
    assert "round 2/2 (refit) on 42 of 60 rows" in err and "2 epoch(s)" in err


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".npz"])
def test_detect_writes_every_format_and_moves_the_threshold(table_model, capsys, suffix):
    tmp = table_model
    out_file = tmp / f"scores{suffix}"
    code, out, err = run(
        capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", out_file, "--percentile", "70"
    )
    assert code == 0, err
    if suffix == ".npy":
        labels = np.load(out_file)[:, 1]
    elif suffix == ".npz":
        labels = np.load(out_file)["label"]
    else:
        labels = pd.read_parquet(out_file)["label"].to_numpy()
    assert labels.sum() == pytest.approx(0.3 * 150, abs=1)


def test_detect_bad_inputs_are_one_line(table_model, capsys, tmp_path):
    tmp = table_model
    frame = pd.read_csv(tmp / "data.csv").assign(colour="red")
    frame.to_csv(tmp / "text.csv", index=False)
    code, _, err = run(capsys, "detect", tmp / "d.aek", tmp / "text.csv", "-o", tmp / "s.csv")
    assert_one_error(code, err, "non-numeric", "colour")
    np.save(tmp / "short.npy", np.zeros(7))
    code, _, err = run(
        capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", tmp / "s.csv", "--labels", tmp / "short.npy"
    )
    assert_one_error(code, err, "7 values", "150 samples")
    np.save(tmp / "three.npy", np.arange(150) % 3)
    code, _, err = run(
        capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", tmp / "s.csv", "--labels", tmp / "three.npy"
    )
    assert_one_error(code, err, "0 (normal) or 1 (anomaly)")
    code, _, err = run(capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", tmp / "data.csv")
    assert_one_error(code, err, "refusing to overwrite")
    code, _, err = run(capsys, "detect", tmp / "d.aek", tmp / "data.csv", "-o", tmp / "s.txt")
    assert_one_error(code, err, ".csv")
    code, _, err = run(capsys, "detect", tmp / "data.csv", tmp / "data.csv", "-o", tmp / "s.csv")
    assert_one_error(code, err, "data.csv")


def test_plain_autoencoder_file_is_refused_by_detect(tmp_path, capsys):
    x, _ = planted_table(n=40)
    AutoEncoder(code_size=2, hidden=(4,), epochs=1, random_state=0).fit(x).save(tmp_path / "ae.aek")
    np.save(tmp_path / "x.npy", x)
    code, _, err = run(capsys, "detect", tmp_path / "ae.aek", tmp_path / "x.npy", "-o", tmp_path / "s.csv")
    assert_one_error(code, err, "--task detect")


def test_series_end_to_end_and_short_series(tmp_path, capsys):
    s = spiky_series()
    pd.DataFrame(s, columns=["a", "b"]).to_csv(tmp_path / "series.csv", index=False)
    code, out, err = run(
        capsys, "train", "--task", "detect", "--data", tmp_path / "series.csv", "--window", "8",
        "--out", tmp_path / "s.aek", "--runs", tmp_path / "runs", *TRAIN,
    )  # fmt: skip
    assert code == 0, err
    labels = np.zeros(len(s), np.int64)
    labels[200:204] = 1
    np.save(tmp_path / "labels.npy", labels)
    code, out, err = run(
        capsys, "detect", tmp_path / "s.aek", tmp_path / "series.csv", "-o", tmp_path / "o.csv",
        "--labels", tmp_path / "labels.npy",
    )  # fmt: skip
    assert code == 0, err
    assert "300 time steps" in out and float(out.split("AUROC ")[1].split(",")[0]) > 0.9
    pd.DataFrame(s[:5], columns=["a", "b"]).to_csv(tmp_path / "short.csv", index=False)
    code, _, err = run(capsys, "detect", tmp_path / "s.aek", tmp_path / "short.csv", "-o", tmp_path / "o.csv")
    assert_one_error(code, err, "5 time steps", "window of 8")


def test_images_of_the_wrong_channel_count(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "gray.npy", rng.integers(0, 256, (32, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "rgb.npy", rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))
    code, _, err = run(
        capsys, "train", "--task", "detect", "--kind", "conv", "--hidden", "4,8",
        "--data", tmp_path / "gray.npy",
        "--out", tmp_path / "i.aek", "--runs", tmp_path / "runs", "--epochs", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "detect", tmp_path / "i.aek", tmp_path / "rgb.npy", "-o", tmp_path / "o.csv")
    assert_one_error(code, err, "3 channel(s)", "takes 1")


def test_detect_help(capsys):
    code, out, _ = run(capsys, "detect", "--help")
    assert code == 0 and "--contamination" in out and "--percentile" in out and "--labels" in out
