"""Clusters of codes: ``aekit.cluster_codes`` / ``choose_k`` and ``aekit embed --clusters K|auto``.

Three well-separated blobs in 8 features: a tiny autoencoder's 2-unit codes keep them apart, so k-means on
the codes must recover them, and the silhouette must prefer 3 clusters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

import aekit
from aekit import AutoEncoder
from aekit.clusters import choose_k, cluster_codes
from aekit.errors import ConfigError, DataError
from cli_helpers import assert_one_error, run


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 6.0  # (3, 8): far apart next to the unit spread
    labels = np.repeat(np.arange(3), 100)
    x = centres[labels] + rng.normal(size=(300, 8))
    order = rng.permutation(300)
    return x[order].astype(np.float32), labels[order]


@pytest.fixture(scope="module")
def files(blobs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clusters")
    x, _ = blobs
    np.save(folder / "blobs.npy", x)
    AutoEncoder(code_size=2, hidden=(16,), epochs=20, batch_size=32, random_state=0).fit(x).save(
        folder / "blobs.aek"
    )
    return folder


def test_cluster_codes_recovers_blobs_and_repeats_itself(blobs):
    x, labels = blobs
    found = aekit.cluster_codes(x, 3)
    assert found.shape == (300,) and found.dtype == np.int64 and set(found) == {0, 1, 2}
    assert normalized_mutual_info_score(labels, found) > 0.9
    np.testing.assert_array_equal(found, cluster_codes(x, 3))  # fixed seed: the same labels


def test_auto_picks_three_by_silhouette(blobs):
    x, labels = blobs
    k, scores = choose_k(x)
    assert k == 3 and sorted(scores) == list(range(2, 16))
    assert scores[3] == max(scores.values())
    assert normalized_mutual_info_score(labels, cluster_codes(x, "auto")) > 0.9


@pytest.mark.parametrize(
    ("codes", "k", "error", "word"),
    [
        (np.zeros((10, 2)), 1, ConfigError, ">= 2 or 'auto'"),
        (np.zeros((10, 2)), "many", ConfigError, ">= 2 or 'auto'"),
        (np.zeros((10, 2)), 11, DataError, "at most 10"),
        (np.zeros(10), 2, DataError, "shape"),
        (np.full((10, 2), np.nan), 2, DataError, "NaN"),
        (np.zeros((2, 2)), "auto", DataError, "at least 3 rows"),
    ],
)
def test_bad_inputs_are_refused(codes, k, error, word):
    with pytest.raises(error, match=word):
        cluster_codes(codes, k)


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".parquet"])
def test_embed_writes_a_label_per_row(files, blobs, suffix, capsys, tmp_path):
    out = tmp_path / f"codes{suffix}"
    code, stdout, err = run(
        capsys, "embed", files / "blobs.aek", files / "blobs.npy", "-o", out, "--clusters", 3
    )
    assert code == 0, err
    assert "k-means with 3 clusters" in stdout
    if suffix == ".npz":
        with np.load(out) as saved:
            codes, found = saved["x"], saved["cluster"]
    else:
        table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert list(table.columns) == ["x0", "x1", "cluster"]
        codes, found = table[["x0", "x1"]].to_numpy(), table["cluster"].to_numpy()
    assert codes.shape == (300, 2)
    assert normalized_mutual_info_score(blobs[1], found) > 0.9


def test_embed_clusters_auto_finds_three(files, blobs, capsys, tmp_path):
    out = tmp_path / "codes.npz"
    code, stdout, err = run(
        capsys, "embed", files / "blobs.aek", files / "blobs.npy", "-o", out, "--clusters", "auto"
    )
    assert code == 0, err
    assert "k-means with 3 clusters" in stdout and "chosen by silhouette" in stdout
    with np.load(out) as saved:
        assert normalized_mutual_info_score(blobs[1], saved["cluster"]) > 0.9


@pytest.mark.parametrize("value", ["1", "0", "x", "-3", "2.5"])
def test_bad_cluster_counts_are_one_line(files, value, capsys, tmp_path):
    argv = ["embed", files / "blobs.aek", files / "blobs.npy", "-o", tmp_path / "c.npz", "--clusters", value]
    code, _, err = run(capsys, *argv)
    assert_one_error(code, err, "--clusters", repr(value))
    assert not (tmp_path / "c.npz").exists()


def test_a_npy_output_cannot_hold_labels(files, capsys, tmp_path):
    argv = ["embed", files / "blobs.aek", files / "blobs.npy", "-o", tmp_path / "c.npy", "--clusters", "3"]
    code, _, err = run(capsys, *argv)
    assert_one_error(code, err, ".npz")
    assert not (tmp_path / "c.npy").exists()


def test_the_help_names_the_range_auto_tries():
    from aekit.cli.clusters import AUTO_RANGE
    from aekit.clusters import K_RANGE

    assert AUTO_RANGE == K_RANGE
