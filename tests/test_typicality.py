"""Typicality: the training distribution stored in every model file, each input's percentile in it, the
warning for inputs unlike the training data, --strict, old files without it and damaged entries."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from aekit import AutoEncoder, TypicalityWarning
from aekit.errors import AtypicalInputError, ModelFileError, NoTypicalityError
from aekit.typicality import LIMIT, Reference, check
from cli_helpers import assert_one_error, run


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)) @ rng.normal(size=(6, 6))).astype(np.float32)


@pytest.fixture(scope="module")
def table_model():
    x = _table()
    return AutoEncoder(code_size=2, hidden=(8,), epochs=2, random_state=0).fit(x), x


@pytest.fixture(scope="module")
def image_model():
    rng = np.random.default_rng(1)
    # smooth 8x8 "blobs": a low-dimensional family that noise images lie far from
    yy, xx = np.mgrid[:8, :8]
    centres = rng.uniform(2, 6, size=(400, 2))
    x = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 4.0)
    x = (255 * x).astype(np.uint8)
    return AutoEncoder(kind="conv", code_size=4, hidden=(4, 8), epochs=6, random_state=0).fit(x), x


def _far(x):
    return x[:5] + 50 * x.std(axis=0)  # 50 standard deviations off every feature


def test_training_percentiles_are_uniform(table_model):
    ae, x = table_model
    result = ae.typicality(x)
    for name, p in result.percentiles.items():  # each statistic's percentiles of the training data
        assert p.shape == (len(x),)
        counts = np.histogram(p, bins=5, range=(0, 100))[0]
        assert counts.min() > 0.12 * len(x), (name, counts)  # roughly uniform: 20% per fifth
    assert result.atypical.mean() <= 0.005  # 0.1% by each statistic, by definition


def test_far_input_is_atypical_and_warns(table_model):
    ae, x = table_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataRangeWarning: the values are far out, as intended
        result = ae.typicality(_far(x))
    assert (result.percentile > LIMIT).all()
    assert result.rows.tolist() == [0, 1, 2, 3, 4]
    with pytest.warns(TypicalityWarning, match="5 of 5 inputs are less typical than 99.9%"):
        check(result)
    with pytest.raises(AtypicalInputError, match="strict"):
        check(result, strict=True)
    check(ae.typicality(x[:20]))  # typical inputs: no warning (pytest's filter turns one into a failure)


def test_noise_images_are_atypical(image_model):
    ae, x = image_model
    noise = np.random.default_rng(2).integers(0, 256, size=(10, 8, 8), dtype=np.uint8)
    assert ae.typicality(noise).atypical.all()
    assert ae.typicality(x[:50]).atypical.mean() < 0.1


def test_one_pass_variants_agree(table_model):
    ae, x = table_model
    recon, typical = ae.reconstruct(x[:30], return_typicality=True)
    codes, typical2 = ae.transform(x[:30], return_typicality=True)
    np.testing.assert_array_equal(recon, ae.reconstruct(x[:30]))
    np.testing.assert_array_equal(codes, ae.transform(x[:30]))
    alone = ae.typicality(x[:30]).percentile
    np.testing.assert_array_equal(typical.percentile, alone)
    np.testing.assert_array_equal(typical2.percentile, alone)


def test_saved_and_loaded(tmp_path, table_model):
    ae, x = table_model
    ae.save(tmp_path / "m.aek")
    loaded = AutoEncoder.load(tmp_path / "m.aek")
    np.testing.assert_allclose(loaded.typicality(x).percentile, ae.typicality(x).percentile)


def _rewrite_header(src, dst, change):
    """Copy a model file with its JSON header changed (checksum recomputed, as tensorfile.save does)."""
    from aekit import tensorfile

    tensors, doc = tensorfile.load(src)
    change(doc)
    tensorfile.save(dst, tensors, doc)


def test_old_file_loads_and_says_so(tmp_path, capsys, table_model):
    ae, x = table_model
    ae.save(tmp_path / "m.aek")
    _rewrite_header(tmp_path / "m.aek", tmp_path / "old.aek", lambda doc: doc.pop("typicality"))
    old = AutoEncoder.load(tmp_path / "old.aek")
    assert old.typicality_ is None
    np.testing.assert_array_equal(old.reconstruct(x[:5]), ae.reconstruct(x[:5]))
    with pytest.raises(NoTypicalityError, match="predates it"):
        old.typicality(x)
    np.save(tmp_path / "x.npy", x[:20])
    code, out, err = run(
        capsys, "reconstruct", tmp_path / "old.aek", tmp_path / "x.npy", "-o", tmp_path / "r.npy"
    )
    assert code == 0 and "predates it" in err and (tmp_path / "r.npy").exists()
    code, _, err = run(
        capsys, "reconstruct", tmp_path / "old.aek", tmp_path / "x.npy", "-o", tmp_path / "s.npy", "--strict"
    )
    assert_one_error(code, err, "--strict", "predates it")
    old.fit_typicality(x).save(tmp_path / "refit.aek")  # refitting adds it, weights untouched
    assert AutoEncoder.load(tmp_path / "refit.aek").typicality(x[:5]).percentile.shape == (5,)


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.update(levels=t["levels"][:-1]),  # one level short
        lambda t: t["quantiles"].update(code=t["quantiles"]["code"][::-1]),  # decreasing
        lambda t: t["quantiles"].pop("reconstruction"),
        lambda t: t.update(rows="many"),
        lambda t: t["code_gaussian"].update(mean=[0.0]),  # wrong size
        lambda t: t["code_gaussian"]["whiten"].append([1.0, 2.0]),  # one row too many
        lambda t: t["quantiles"].update(code=["x"] * len(t["levels"])),
    ],
)
def test_damaged_entry_is_one_clear_error(tmp_path, table_model, damage):
    ae, _ = table_model
    ae.save(tmp_path / "m.aek")
    _rewrite_header(tmp_path / "m.aek", tmp_path / "bad.aek", lambda doc: damage(doc["typicality"]))
    with pytest.raises(ModelFileError, match="damaged typicality entry"):
        AutoEncoder.load(tmp_path / "bad.aek")


def test_cli_reports_warns_and_strict_refuses(tmp_path, capsys, table_model):
    ae, x = table_model
    ae.save(tmp_path / "m.aek")
    np.save(tmp_path / "ok.npy", x[:40])
    code, out, err = run(
        capsys, "reconstruct", tmp_path / "m.aek", tmp_path / "ok.npy", "-o", tmp_path / "r.npy"
    )
    assert code == 0 and "typicality: all 40 inputs" in out and "warning" not in err
    mixed = np.concatenate([x[:10], _far(x)[:2], x[10:20]])  # rows 10 and 11 are far off
    np.save(tmp_path / "mixed.npy", mixed)
    for verb in ("reconstruct", "embed", "encode"):
        code, out, err = run(
            capsys, verb, tmp_path / "m.aek", tmp_path / "mixed.npy", "-o", tmp_path / f"{verb}.npy"
        )
        assert code == 0, err
        assert "aekit: warning: typicality: 2 of 22 inputs are less typical than 99.9%" in err
        assert "rows 10, 11" in err
        assert np.load(tmp_path / f"{verb}.npy").shape[0] == 22  # outputs as they were
        code, out, err = run(
            capsys,
            verb,
            tmp_path / "m.aek",
            tmp_path / "mixed.npy",
            "-o",
            tmp_path / f"s{verb}.csv",
            "--strict",
        )
        err = "\n".join(line for line in err.splitlines() if "X has values" not in line)  # DataRangeWarning
        assert_one_error(code, err, "2 of 22", "--strict refuses", "nothing was written")
        assert not (tmp_path / f"s{verb}.csv").exists()


def test_cli_grid_strict(tmp_path, capsys, image_model):
    ae, x = image_model
    ae.save(tmp_path / "img.aek")
    noise = np.random.default_rng(3).integers(0, 256, size=(4, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)
    code, _, err = run(
        capsys,
        "reconstruct",
        tmp_path / "img.aek",
        tmp_path / "noise.npy",
        "-o",
        tmp_path / "g.png",
        "--strict",
    )
    assert_one_error(code, err, "4 of 4")
    assert not (tmp_path / "g.png").exists()


def test_reference_percentiles_edges():
    ref = Reference.of({"s": np.arange(1000.0)})
    p = ref.percentiles({"s": np.array([-5.0, 0.0, 499.5, 998.0, 999.0, 1e9, np.nan])}).percentiles["s"]
    assert p[0] == 0 and abs(p[2] - 50) < 0.5 and p[3] < LIMIT and p[4] == 100 and p[5] == 100 and p[6] == 100
    flat = Reference.of({"s": np.zeros(50)})  # every training value the same
    assert flat.percentiles({"s": np.array([0.0, 1e-3])}).percentiles["s"].tolist() == [0.0, 100.0]
    json.dumps(ref.to_dict())
