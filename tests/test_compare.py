"""Features and dimensionality reduction: ``aekit.reports.compare`` and the ``embed`` / ``compare`` verbs.

Tiny models (widths 8, 1 epoch) on the bundled digits and small random arrays, each test in about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from aekit import AutoEncoder
from aekit.data import load
from aekit.errors import ConfigError, DataError
from aekit.reports.compare import (
    FILES,
    check_code_sizes,
    cluster_quality,
    compare_with_pca,
    what_is_skipped,
    write_comparison,
)
from cli_helpers import assert_one_error, run

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = {"hidden": (8,), "batch_size": 64}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits) -> dict[str, Path]:
    """Model files (dense and VAE on digits, a table model) and inputs for them."""
    folder = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(0)
    dense = AutoEncoder(kind="dense", code_size=3, epochs=1, random_state=0, **TINY).fit(digits.x_train)
    dense.save(folder / "dense.aek")
    vae = AutoEncoder(kind="vae", code_size=2, epochs=1, random_state=0, **TINY).fit(digits.x_train)
    vae.save(folder / "vae.aek")
    table = rng.normal(size=(60, 4)).astype(np.float32)
    AutoEncoder(code_size=2, epochs=1, random_state=0, **TINY).fit(table).save(folder / "table.aek")
    np.save(folder / "digits_test.npy", digits.x_test)
    np.save(folder / "wrong_shape.npy", np.zeros((5, 7, 7), np.float32))
    frame = pd.DataFrame(table, columns=list("abcd"))
    frame.to_csv(folder / "table.csv", index=False)
    frame.assign(colour=["red", "blue"] * 30).to_csv(folder / "words.csv", index=False)
    np.save(folder / "unlabelled.npy", rng.random((120, 6)).astype(np.float32))
    frame.assign(label=np.arange(60) % 3).to_parquet(folder / "labelled.parquet")
    return {p.name: p for p in folder.iterdir()}


# -- the library ------------------------------------------------------------------------------------------


def test_compare_measures_both_methods_as_documented(digits):
    from sklearn.decomposition import PCA

    x_train, y = digits.x_train[:300], digits.y_test
    result = compare_with_pca(x_train, digits.x_test, y, code_sizes=(4, 2), kind="dense", epochs=1, **TINY)
    assert [r.code_size for r in result.rows] == [2, 4]  # sorted
    assert result.kind == "dense" and result.n_clusters == 10 and result.skipped == []
    assert (result.n_train, result.n_test, result.n_features) == (300, len(digits.x_test), 64)
    flat_train, flat_test = x_train.reshape(300, -1), digits.x_test.reshape(len(digits.x_test), -1)
    for row in result.rows:
        # PCA's figure is PCA's reconstruction error (digits are in [0, 1], where clipping changes little)
        pca = PCA(n_components=row.code_size).fit(flat_train)
        recon = np.clip(pca.inverse_transform(pca.transform(flat_test)), 0, 1)
        assert row.pca_mse == pytest.approx(np.mean((recon - flat_test) ** 2), rel=1e-4)
        assert row.pca_psnr_db == pytest.approx(10 * np.log10(1 / row.pca_mse))
        assert 0 < row.ae_mse < 1 and row.epochs == 1 and row.parameters > 0
        for value in (row.ae_nmi, row.pca_nmi):
            assert 0 < value <= 1
        for value in (row.ae_ari, row.pca_ari):
            assert -1 <= value <= 1
    assert result.rows[1].pca_mse < result.rows[0].pca_mse  # more components, less error
    assert result.mean_mse == pytest.approx(np.mean((flat_test - flat_train.mean(0)) ** 2), rel=1e-5)
    # the scatter's codes are the code-size-2 models' test codes
    assert result.codes_2d["autoencoder"].shape == result.codes_2d["pca"].shape == (len(digits.x_test), 2)
    pca2 = PCA(n_components=2).fit(flat_train)
    np.testing.assert_allclose(
        np.abs(result.codes_2d["pca"]), np.abs(pca2.transform(flat_test)), rtol=1e-3, atol=1e-4
    )


@pytest.mark.parametrize("kind", ["dense", "conv", "sparse", "vae"])
def test_autoencoder_error_and_codes_are_the_estimators(digits, kind):
    x = digits.x_train[:200]
    result = compare_with_pca(x, digits.x_test, code_sizes=(2,), kind=kind, epochs=1, random_state=3, **TINY)
    ae = AutoEncoder(kind=kind, code_size=2, epochs=1, random_state=3, **TINY).fit(x)
    expected = np.mean((ae.reconstruct(digits.x_test) - digits.x_test).astype(np.float64) ** 2)
    assert result.kind == kind
    assert result.rows[0].ae_mse == pytest.approx(expected, rel=1e-6)
    # the scatter's codes are transform()'s: a VAE's posterior means
    np.testing.assert_allclose(result.codes_2d["autoencoder"], ae.transform(digits.x_test), atol=1e-6)


def test_kind_auto_is_conv_for_images_and_dense_for_tables(digits):
    images = compare_with_pca(digits.x_train[:64], digits.x_test[:32], code_sizes=(2,), epochs=1, hidden=(4,))
    assert images.kind == "conv"
    table = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    tables = compare_with_pca(table[:48], table[48:], code_sizes=(2,), epochs=1, hidden=(4,))
    assert tables.kind == "dense" and tables.unit.startswith("standardised")
    assert tables.rows[0].ae_psnr_db is None  # PSNR needs a known peak: only data in [0, 1] has one


def test_without_labels_clustering_is_skipped_and_said(digits):
    result = compare_with_pca(
        digits.x_train[:64], digits.x_test[:40], code_sizes=(2, 3), kind="dense", epochs=1
    )
    assert result.n_clusters is None and all(r.ae_nmi is None and r.pca_ari is None for r in result.rows)
    assert any("k-means" in s and "no labels" in s for s in result.skipped)
    assert any("colours" in s for s in result.skipped)
    written = write_comparison(result, "out")
    assert {p.name for p in written} == {
        FILES[k] for k in ("curve", "scatter", "codes", "examples", "json", "index")
    }
    with np.load(Path("out", FILES["codes"]), allow_pickle=False) as saved:
        assert set(saved.files) == {"autoencoder", "pca"}
    assert json.loads(Path("out", FILES["json"]).read_text())["rows"][0]["ae_nmi"] is None


def test_what_is_skipped_names_each_part():
    assert what_is_skipped([0, 1, 1], (2, 4)) == []
    assert "code size 2 is not among" in what_is_skipped([0, 1], (4, 8))[0]
    assert "1 class only" in what_is_skipped([5, 5, 5], (2,))[0]


def test_cluster_quality_is_one_on_separated_clusters_and_low_on_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    centres = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    separated = centres[labels] + rng.normal(scale=0.3, size=(150, 2))
    assert cluster_quality(separated, labels, 3) == pytest.approx((1.0, 1.0))
    nmi, ari = cluster_quality(rng.normal(size=(150, 2)), labels, 3)
    assert nmi < 0.2 and ari < 0.2


def test_kmeans_uses_torchs_thread_budget(monkeypatch):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info

    seen = []
    fit_predict = KMeans.fit_predict

    def spy(self, x):
        seen.extend(pool["num_threads"] for pool in threadpool_info())
        return fit_predict(self, x)

    monkeypatch.setattr(KMeans, "fit_predict", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cluster_quality(np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2, 2)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_write_comparison_writes_every_file(digits):
    result = compare_with_pca(
        digits.x_train[:100],
        digits.x_test[:60],
        digits.y_test[:60],
        code_sizes=(2, 4),
        kind="dense",
        epochs=1,
    )
    written = write_comparison(result, "report", title="digits")
    assert {p.name for p in written} == set(FILES.values())
    for name in ("curve", "scatter", "clustering"):
        with Image.open(Path("report", FILES[name])) as image:
            assert image.format == "PNG" and image.width > 300
    with np.load(Path("report", FILES["codes"]), allow_pickle=False) as codes:
        np.testing.assert_array_equal(codes["autoencoder"], result.codes_2d["autoencoder"])
        np.testing.assert_array_equal(codes["pca"], result.codes_2d["pca"])
        np.testing.assert_array_equal(codes["labels"], digits.y_test[:60])
    saved = json.loads(Path("report", FILES["json"]).read_text())
    assert [r["code_size"] for r in saved["rows"]] == [2, 4]
    assert saved["rows"][1]["pca_mse"] == pytest.approx(result.rows[1].pca_mse)
    assert saved["n_clusters"] == len(np.unique(digits.y_test[:60]))
    page = Path("report", FILES["index"]).read_text()
    assert all(FILES[k] in page for k in ("curve", "scatter", "clustering"))


@pytest.mark.parametrize(
    ("sizes", "words"),
    [
        ((0, 2), "whole numbers >= 1"),
        ((2.5,), "whole numbers >= 1"),
        (("4",), "whole numbers >= 1"),
        ((True,), "whole numbers >= 1"),
        ((), "at least one"),
        ((2, 65, 100), "65, 100 exceed the data's 64 features"),
    ],
)
def test_bad_code_sizes_are_refused(sizes, words):
    with pytest.raises(ConfigError, match=words):
        check_code_sizes(sizes, n_features=64, n_train=1000)


def test_code_sizes_above_the_training_samples_are_refused():
    with pytest.raises(ConfigError, match="exceed the data's 10 training samples"):
        check_code_sizes((16,), n_features=64, n_train=10)


def test_bad_inputs_to_compare(digits):
    with pytest.raises(DataError, match="shape"):
        compare_with_pca(digits.x_train[:50], np.zeros((5, 7, 7), np.float32), code_sizes=(2,))
    with pytest.raises(DataError, match="one per test sample"):
        compare_with_pca(digits.x_train[:50], digits.x_test[:10], digits.y_test[:9], code_sizes=(2,))
    with pytest.raises(ConfigError, match="not a model family"):
        compare_with_pca(digits.x_train[:50], digits.x_test[:10], code_sizes=(2,), kind="pca")


# -- aekit embed --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_embed_writes_the_models_codes(files, digits, capsys, suffix):
    code, out, err = run(
        capsys, "embed", files["dense.aek"], files["digits_test.npy"], "-o", f"codes{suffix}"
    )
    assert code == 0, err
    assert f"codes of {len(digits.x_test)} samples" in out and "(359, 3)" in out
    expected = AutoEncoder.load(files["dense.aek"]).transform(digits.x_test)
    from aekit.data import read_array

    np.testing.assert_allclose(read_array(f"codes{suffix}"), expected, rtol=1e-5, atol=1e-6)


def test_embed_a_named_data_set_split(files, digits, capsys):
    code, out, err = run(capsys, "embed", files["dense.aek"], "digits", "-o", "train.npy", "--split", "train")
    assert code == 0, err
    assert "digits (train split)" in out
    expected = AutoEncoder.load(files["dense.aek"]).transform(digits.x_train)
    np.testing.assert_allclose(np.load("train.npy"), expected, rtol=1e-5, atol=1e-6)


def test_embed_of_a_vae_writes_posterior_means(files, digits, capsys):
    code, _, err = run(capsys, "embed", files["vae.aek"], files["digits_test.npy"], "-o", "codes.npy")
    assert code == 0, err
    est = AutoEncoder.load(files["vae.aek"])
    x = torch.from_numpy(digits.x_test.reshape(-1, 1, 8, 8))
    with torch.no_grad():
        mean = est.model_.eval().posterior(x).mean.numpy()  # (N, 2)
    codes = np.load("codes.npy")
    np.testing.assert_allclose(codes, mean, rtol=1e-5, atol=1e-6)
    # deterministic: the mean, not a sample of the posterior
    run(capsys, "embed", files["vae.aek"], files["digits_test.npy"], "-o", "again.npy")
    np.testing.assert_array_equal(np.load("again.npy"), codes)


def test_embed_a_csv_table(files, capsys):
    code, out, err = run(capsys, "embed", files["table.aek"], files["table.csv"], "-o", "codes.csv")
    assert code == 0, err
    assert pd.read_csv("codes.csv").shape == (60, 2)


@pytest.mark.parametrize(
    ("model", "data", "out", "words"),
    [
        ("table.aek", "words.csv", "c.npy", ("non-numeric columns", "colour")),
        ("dense.aek", "wrong_shape.npy", "c.npy", ("shape (7, 7)", "(8, 8)")),
        ("table.aek", "digits_test.npy", "c.npy", ("shape (8, 8)",)),
        ("dense.aek", "digits_test.npy", "digits_test.npy", ("refusing to overwrite the input",)),
        ("dense.aek", "digits_test.npy", "dense.aek", ("refusing to overwrite the input",)),
        ("dense.aek", "no-such-set", "c.npy", ("no-such-set",)),
        ("missing.aek", "digits_test.npy", "c.npy", ("missing.aek",)),
        ("dense.aek", "digits_test.npy", "c.txt", (".txt",)),
    ],
)
def test_embed_bad_inputs_are_one_line(files, capsys, model, data, out, words):
    model_path = files.get(model, Path(model))
    data_path = files.get(data, data)
    out_path = files.get(out, out)
    before = Path(out_path).read_bytes() if Path(out_path).exists() else None
    code, _, err = run(capsys, "embed", model_path, data_path, "-o", out_path)
    assert_one_error(code, err, *words)
    if before is not None:
        assert Path(out_path).read_bytes() == before  # never overwritten


def test_embed_reads_a_file_as_it_is_whatever_split_says(files, capsys, tmp_path):
    np.savez(tmp_path / "only_train.npz", x_train=np.zeros((4, 8, 8), np.float32))
    code, _, err = run(capsys, "embed", files["dense.aek"], tmp_path / "only_train.npz", "-o", "c.npy")
    assert code == 0, err
    assert np.load("c.npy").shape == (4, 3)


# -- aekit compare ------------------------------------------------------------------------------------------


def test_compare_cli_end_to_end_on_digits(capsys):
    argv = ["compare", "--data", "digits", "--code-sizes", "2,4", "--kind", "dense", "--epochs", "1"]
    code, out, err = run(capsys, *argv, "--max-train", "200")
    assert code == 0, err
    assert "code size 2: training a dense autoencoder on 200 samples" in out
    assert "AE NMI" in out and "wrote compare-digits/" in out
    assert "--max-train" in err and "skipping" not in err
    saved = json.loads(Path("compare-digits", FILES["json"]).read_text())
    assert saved["n_train"] == 200 and saved["n_test"] == 359 and saved["n_clusters"] == 10
    assert [r["code_size"] for r in saved["rows"]] == [2, 4]
    assert all(Path("compare-digits", name).is_file() for name in FILES.values())


def test_compare_cli_without_labels_or_test_split_says_what_it_skips(files, capsys):
    argv = [
        "compare",
        "--data",
        files["unlabelled.npy"],
        "--code-sizes",
        "2,6",
        "--epochs",
        "1",
        "--out",
        "r",
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "holding out 24 of its samples" in err
    assert "skipping k-means clustering quality (NMI/ARI): the data has no labels" in err
    assert "skipping colours in the 2-D scatter" in err
    assert "at code size 6, the number of features, PCA keeps everything" in err  # all 6 features: exact
    assert "AE NMI" not in out
    assert not Path("r", FILES["clustering"]).exists() and Path("r", FILES["scatter"]).exists()
    assert json.loads(Path("r", FILES["json"]).read_text())["n_test"] == 24


def test_compare_cli_labelled_table_held_out(files, capsys):
    argv = ["compare", "--data", files["labelled.parquet"], "--code-sizes", "3", "--epochs", "1", "--quiet"]
    code, out, err = run(capsys, *argv, "--out", "t")
    assert code == 0 and err == ""  # --quiet: the 2-D scatter's absence is not announced
    saved = json.loads(Path("t", FILES["json"]).read_text())
    assert saved["kind"] == "dense" and saved["n_clusters"] == 3 and saved["n_test"] == 12


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--code-sizes", "0,2"], ("--code-sizes", "whole numbers >= 1")),
        (["--code-sizes", "2,x"], ("--code-sizes", "'2,x'")),
        (["--code-sizes", "2.5"], ("--code-sizes",)),
        (["--code-sizes", "2,100"], ("code size(s) 100", "64 features", "up to 64")),
        (["--kind", "bogus"], ("--kind 'bogus'", "dense")),
        (["--max-train", "0"], ("--max-train",)),
        (["--data", "words.csv"], ("non-numeric columns",)),
        (["--device", "cuda:7"], ("--device",)),
    ],
)
def test_compare_cli_bad_options_are_one_line(files, capsys, options, words):
    argv = ["compare", "--data", "digits", "--epochs", "1", *options]
    if "--data" in options:
        argv = ["compare", "--epochs", "1", "--data", files[options[1]]]
    code, _, err = run(capsys, *argv)
    assert_one_error(code, err, *words)
    assert not Path("compare-digits").exists()


def test_compare_cli_refuses_a_file_as_out(capsys):
    Path("taken").write_text("mine")
    code, _, err = run(capsys, "compare", "--data", "digits", "--code-sizes", "2", "--out", "taken")
    assert_one_error(code, err, "--out taken is a file")
    assert Path("taken").read_text() == "mine"


def test_help_of_both_verbs_is_fast_and_imports_nothing_heavy():
    code = (
        "import contextlib, io, sys\n"
        "from aekit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main([verb, '--help']) for verb in ('embed', 'compare')]\n"
        "heavy = [m for m in ('torch', 'sklearn', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "print(codes, heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[0, 0] []", result.stderr
