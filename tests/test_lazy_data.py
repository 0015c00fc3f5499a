"""Data larger than memory: the row readers (``aekit.data.sources``), block-shuffled batches and streaming
statistics (``aekit.data.lazy``), ``AutoEncoder`` on paths and Sources, ``aekit train`` on big files, and
training + embedding a file several times larger than a hard memory cap, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from aekit import AutoEncoder
from aekit.data import read_array
from aekit.data.lazy import (
    LazyData,
    fits_in_memory,
    in_memory_bytes,
    memory_budget,
    streaming_spec,
)
from aekit.data.scaling import fit_spec
from aekit.data.sources import ArraySource, CompressedNpzSource, Source, open_source
from aekit.errors import ConfigError, DataError
from aekit.estimators import autoencoder as autoencoder_module
from aekit.estimators.autoencoder import _split
from cli_helpers import one_line_error, run

RNG = np.random.default_rng(0)
TABLE = RNG.normal(3.0, 2.0, (1000, 5)).astype(np.float32)
GRAY = RNG.integers(0, 256, (9, 6, 5), dtype=np.uint8)
RGB = RNG.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"c{i}" for i in range(x.shape[1])])


def _write_folder(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


# Each case writes one file (or folder) and gives the array read_array reads from it: the reference.
WRITERS = {
    "npy": lambda d: np.save(d / "x.npy", TABLE) or d / "x.npy",
    "npy-images": lambda d: np.save(d / "g.npy", GRAY) or d / "g.npy",
    "npz-stored": lambda d: np.savez(d / "x.npz", x=TABLE, y=np.arange(len(TABLE))) or d / "x.npz",
    "npz-compressed": lambda d: np.savez_compressed(d / "c.npz", x=TABLE) or d / "c.npz",
    # several row groups, and a label column that is not a feature
    "parquet": lambda d: (
        _frame(TABLE).assign(label=np.arange(len(TABLE)) % 3).to_parquet(d / "t.parquet", row_group_size=77)
        or d / "t.parquet"
    ),
    "csv-header": lambda d: (
        _frame(TABLE.astype(np.float64)).assign(y=1).to_csv(d / "t.csv", index=False) or d / "t.csv"
    ),
    "csv-bare": lambda d: np.savetxt(d / "n.csv", TABLE[:333], delimiter=",") or d / "n.csv",
    "folder-gray": lambda d: _write_folder(d / "gray", GRAY),
    "folder-rgb": lambda d: _write_folder(d / "rgb", RGB),
}


@pytest.fixture(params=sorted(WRITERS))
def written(request, tmp_path) -> tuple[Path, np.ndarray]:
    path = WRITERS[request.param](tmp_path)
    return path, read_array(path)


# -- readers ---------------------------------------------------------------------------------------------
def test_every_reader_reads_what_read_array_reads(written):
    path, full = written
    source = open_source(path)
    assert isinstance(source, Source)
    assert source.shape == full.shape and len(source) == len(full)
    assert source.nbytes == len(full) * int(np.prod(full.shape[1:])) * source.dtype.itemsize
    np.testing.assert_allclose(source.read_all(), full, rtol=1e-6)
    # any order, repeats, the last row: the rows come back in the order asked for
    asked = np.array([len(full) - 1, 2, 0, 2, 3, 1]) % len(full)
    np.testing.assert_allclose(source.read(asked), full[asked], rtol=1e-6)
    assert source.read(np.array([], dtype=np.int64)).shape == (0, *full.shape[1:])
    chunks = list(source.iter_chunks(4))
    assert [len(c) for c in chunks[:-1]] == [4] * (len(chunks) - 1) and 1 <= len(chunks[-1]) <= 4
    np.testing.assert_allclose(np.concatenate(chunks), full, rtol=1e-6)


def test_the_csv_index_finds_rows_across_its_blocks(tmp_path, monkeypatch):
    from aekit.data import sources

    monkeypatch.setattr(sources, "CSV_INDEX_ROWS", 7)  # many index blocks for a small file
    path = tmp_path / "t.csv"
    text = _frame(TABLE[:50]).to_csv(index=False).replace("\n", "\r\n")  # Windows line ends
    path.write_text(text.replace("\r\n", "\r\n\r\n", 3).rstrip("\r\n"))  # blank lines, no last newline
    source = open_source(path)
    assert len(source) == 50
    rows = np.array([49, 0, 6, 7, 13, 14, 48])
    np.testing.assert_allclose(source.read(rows), TABLE[rows], rtol=1e-6)


def test_npy_reads_are_one_pread_per_run_of_rows(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", TABLE)
    source = open_source(tmp_path / "x.npy")
    calls = []
    real = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, offset: calls.append(offset) or real(fd, bufs, offset))
    np.testing.assert_array_equal(source.read(np.r_[100:200, 500:520, 7]), TABLE[np.r_[100:200, 500:520, 7]])
    assert len(calls) == 3  # three runs of consecutive rows, each one system call


def test_array_source_chunks_are_views():
    source = ArraySource(TABLE)
    chunk = next(source.iter_chunks(10))
    assert np.shares_memory(chunk, TABLE) and source.read_all() is TABLE
    with pytest.raises(DataError, match="one row per sample"):
        ArraySource(np.zeros(3))


def test_npz_members_by_key(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=TABLE, x_test=TABLE[:5])
    assert open_source(tmp_path / "d.npz", key="x_test").shape == (5, 5)
    assert open_source(tmp_path / "d.npz").shape == (5, 5)  # read_array's pick: x_test before x_train
    with pytest.raises(DataError, match="has no array 'nope'.*'x_train'"):
        open_source(tmp_path / "d.npz", key="nope")
    with pytest.raises(DataError, match="only applies to .npz"):
        open_source(WRITERS["npy"](tmp_path), key="x")


def test_fortran_order_arrays_are_read_whole_in_c_order(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(TABLE))
    np.savez_compressed(tmp_path / "f.npz", X=np.asfortranarray(TABLE))
    for path in (tmp_path / "f.npy", tmp_path / "f.npz"):
        source = open_source(path)
        np.testing.assert_array_equal(source.read([3, 1]), TABLE[[3, 1]])
        assert source.read_all().flags.c_contiguous


BAD_FILES = {
    "unknown suffix": (lambda d: (d / "x.txt").write_text("1,2"), "x.txt", "unknown type '.txt'"),
    "objects": (
        lambda d: np.save(d / "o.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True),
        "o.npy",
        "unpickling",
    ),
    "cut short": (
        lambda d: (d / "s.npy").write_bytes(
            (np.save(d / "full.npy", TABLE), (d / "full.npy").read_bytes())[1][:500]
        ),
        "s.npy",
        "cut short",
    ),
    "not npy": (lambda d: (d / "n.npy").write_bytes(b"hello world" * 10), "n.npy", "not a valid .npy"),
    "not npz": (lambda d: (d / "n.npz").write_bytes(b"hello world" * 10), "n.npz", "not a valid .npz"),
    "mixed image sizes": (
        lambda d: (
            _write_folder(d / "mixed", GRAY),
            Image.fromarray(GRAY[0, :4]).save(d / "mixed" / "zz.png"),
        ),
        "mixed",
        "must share size and mode",
    ),
    "empty folder": (lambda d: (d / "empty").mkdir(), "empty", "no PNG or JPEG images"),
    "text column": (
        lambda d: (d / "t.csv").write_text("a,b\n1,x\n2,y\n"),
        "t.csv",
        "non-numeric columns 'b'",
    ),
    "parquet text column": (
        lambda d: pd.DataFrame({"a": [1.0], "b": ["x"]}).to_parquet(d / "t.parquet"),
        "t.parquet",
        "non-numeric columns 'b'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_one_clear_error(tmp_path, case):
    make, name, words = BAD_FILES[case]
    make(tmp_path)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        source = open_source(tmp_path / name)
        source.read_all()
    assert "\n" not in str(err.value)


def test_missing_values_are_found_where_they_are_read(tmp_path):
    x = TABLE[:20].astype(np.float64)
    x[13, 2] = np.nan
    _frame(x).to_csv(tmp_path / "m.csv", index=False)
    source = open_source(tmp_path / "m.csv")  # opening does not parse the numbers
    with pytest.raises(DataError, match=r"column 'c2', data row 14"):
        source.read_all()
    np.save(tmp_path / "m.npy", x)
    with pytest.raises(DataError, match="NaN or inf .*row 13"):
        streaming_spec(open_source(tmp_path / "m.npy"), "auto", "mse")


# -- block shuffle ---------------------------------------------------------------------------------------
class CountingSource(ArraySource):
    """An ArraySource that records the runs of consecutive rows of every read."""

    def __init__(self, array):
        super().__init__(array)
        self.runs: list[int] = []

    def _read_sorted(self, idx):
        self.runs.append(1 + int(np.count_nonzero(np.diff(idx) != 1)))
        return super()._read_sorted(idx)


def _lazy(n: int, block_rows: int = 8, window_blocks: int = 3, features: int = 2) -> LazyData:
    rows = np.arange(n, dtype=np.float32)[:, None].repeat(features, axis=1)  # row i holds the value i
    spec = fit_spec(rows, "none", "mse")
    return LazyData(
        CountingSource(rows),
        spec,
        block_rows=block_rows,
        window_bytes=window_blocks * block_rows * 4 * features,
    )


def _ids(batches) -> list[np.ndarray]:
    return [b[:, 0].numpy().astype(np.int64) for b in batches]


@pytest.mark.parametrize(("n", "batch_size"), [(100, 7), (64, 8), (5, 16), (97, 1)])
def test_block_shuffle_visits_every_row_once_per_epoch(n, batch_size):
    data = _lazy(n)
    epoch = _ids(data.batches(batch_size, seed=3))
    assert [len(b) for b in epoch] == [min(batch_size, n - s) for s in range(0, n, batch_size)]
    seen = np.concatenate(epoch)
    assert sorted(seen.tolist()) == list(range(n))  # every row once
    if n >= 16:
        assert seen.tolist() != list(range(n))  # shuffled ...
        assert seen.tolist() == np.concatenate(_ids(data.batches(batch_size, seed=3))).tolist()  # by the seed
        assert seen.tolist() != np.concatenate(_ids(data.batches(batch_size, seed=4))).tolist()
    assert np.concatenate(_ids(data.batches(batch_size, seed=None))).tolist() == list(range(n))  # in order


def test_reads_stay_sequential_and_rows_mix_within_a_window():
    data = _lazy(960, block_rows=32, window_blocks=5)
    first = _ids(data.batches(160, seed=0))[0]  # one window holds 5 blocks = exactly one batch
    assert len(np.unique(first // 32)) == 5  # the batch mixes five blocks ...
    assert max(data.source.runs) <= 5  # ... each read as one run of consecutive rows
    assert len(data.source.runs) == 960 // 160  # one read per window, not one per row or batch


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_share_each_global_batch(world):
    data = _lazy(50)
    whole = _ids(data.batches(8, seed=1))
    slices = [_ids(data.batches(8, seed=1, rank=r, world=world)) for r in range(world)]
    assert all(len(s) == len(whole) for s in slices)  # every rank takes the same number of steps
    for b, batch in enumerate(whole):
        parts = [s[b] for s in slices]
        assert np.concatenate(parts).tolist() == batch.tolist()  # rank order = torch.tensor_split's
        assert [len(p) for p in parts] == [len(t) for t in torch.tensor_split(torch.zeros(len(batch)), world)]
    with pytest.raises(ConfigError, match="rank 2"):
        next(data.batches(8, seed=1, rank=2, world=2))


def test_split_takes_the_rows_of_the_in_memory_split():
    data = _lazy(40)
    train, val = data.split(0.25, seed=5)
    mem_train, mem_val = _split(torch.arange(40), 0.25, 5)
    assert sorted(train.rows.tolist()) == sorted(mem_train.tolist())
    assert sorted(val.rows.tolist()) == sorted(mem_val.tolist())
    assert np.concatenate(_ids(val.batches(4, None))).tolist() == sorted(mem_val.tolist())  # file order
    assert sorted(np.concatenate(_ids(train.batches(4, seed=2))).tolist()) == sorted(mem_train.tolist())
    assert data.split(0.0, seed=5) == (data, None)


def test_compressed_npz_streams_but_cannot_be_shuffled(tmp_path):
    source = open_source(WRITERS["npz-compressed"](tmp_path))
    assert isinstance(source, CompressedNpzSource) and not source.random_access
    np.testing.assert_array_equal(source.read(np.array([999, 0, 500])), TABLE[[999, 0, 500]])
    with pytest.raises(DataError, match=r"compressed.*np.save\('data.npy', x\)"):
        LazyData(source, fit_spec(TABLE, "auto", "mse"))


# -- streaming statistics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("scaling", ["auto", "standard", "minmax", "none", "robust"])
def test_streaming_statistics_match_the_in_memory_ones(tmp_path, monkeypatch, scaling):
    from aekit.data import lazy

    monkeypatch.setattr(lazy, "STATS_CHUNK_BYTES", 8 * 5 * 64)  # 64 rows a chunk: many merges
    x = (TABLE * np.arange(1, 6) + 1e4).astype(np.float32)  # a large offset stresses the variance merge
    np.save(tmp_path / "x.npy", x)
    got = streaming_spec(open_source(tmp_path / "x.npy"), scaling, "mse")
    want = fit_spec(x, scaling, "mse")
    assert (got.scaling, got.dtype, got.sample_shape, got.unit_range) == (
        want.scaling,
        want.dtype,
        want.sample_shape,
        want.unit_range,
    )
    np.testing.assert_allclose(got.offset, want.offset, rtol=1e-9)
    np.testing.assert_allclose(got.scale, want.scale, rtol=1e-6)  # float32 data, float64 sums


def test_streaming_statistics_of_images_and_their_errors(tmp_path):
    np.save(tmp_path / "g.npy", GRAY)
    spec = streaming_spec(open_source(tmp_path / "g.npy"), "auto", "bce")
    assert spec.to_dict() == fit_spec(GRAY, "auto", "bce").to_dict()
    np.save(tmp_path / "x.npy", TABLE)
    with pytest.raises(DataError, match="loss='bce' needs data in"):
        streaming_spec(open_source(tmp_path / "x.npy"), "auto", "bce")
    with pytest.raises(DataError, match="scaling='cube' is not one of"):
        streaming_spec(open_source(tmp_path / "x.npy"), "cube", "mse")
    np.save(tmp_path / "v.npy", np.zeros((3, 2, 2, 2, 2)))
    with pytest.raises(DataError, match="must be 2-D"):
        streaming_spec(open_source(tmp_path / "v.npy"), "auto", "mse")


# -- the memory budget -------------------------------------------------------------------------------------
def test_the_memory_budget(monkeypatch, tmp_path):
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "1.5")
    assert memory_budget() == int(1.5 * 2**20)
    source = open_source(WRITERS["npy"](tmp_path))
    assert in_memory_bytes(source) == TABLE.nbytes * 3  # raw float32 + scaled copy + train/val gather
    assert fits_in_memory(source)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    assert not fits_in_memory(source)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(ConfigError, match="AEKIT_MEMORY_BUDGET_MB='lots' must be a number"):
        memory_budget()
    monkeypatch.delenv("AEKIT_MEMORY_BUDGET_MB")
    assert 0 < memory_budget() < 2**62


# -- the estimator -----------------------------------------------------------------------------------------
SMALL = {"code_size": 2, "hidden": (8,), "epochs": 2, "random_state": 0, "validation_fraction": 0.2}


def _history(est, key="loss"):
    return [r[key] for r in est.history_]


def test_a_small_file_trains_in_memory_exactly_as_its_array(tmp_path):
    path = WRITERS["npy"](tmp_path)
    a = AutoEncoder(**SMALL, batch_size=64).fit(TABLE)
    b = AutoEncoder(**SMALL, batch_size=64).fit(str(path))
    for key in ("loss", "val_loss"):  # the records' "seconds" differ; nothing else may
        assert _history(b, key) == _history(a, key)
    for name, weight in a.model_.state_dict().items():
        torch.testing.assert_close(b.model_.state_dict()[name], weight, rtol=0, atol=0)
    assert b.spec_.to_dict() == a.spec_.to_dict()


def test_lazy_and_in_memory_training_give_the_same_model(tmp_path, monkeypatch):
    """With one batch per epoch the order of the rows cannot matter (up to float rounding): the lazy
    path then must give the in-memory model, scaling, split and losses included."""
    path = WRITERS["npy"](tmp_path)
    settings = {**SMALL, "batch_size": 1000, "epochs": 3}
    memory = AutoEncoder(**settings).fit(TABLE)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    lazy = AutoEncoder(**settings).fit(path)
    np.testing.assert_allclose(lazy.spec_.offset, memory.spec_.offset, rtol=1e-9)
    np.testing.assert_allclose(_history(lazy), _history(memory), rtol=1e-5)
    np.testing.assert_allclose(_history(lazy, "val_loss"), _history(memory, "val_loss"), rtol=1e-5)
    for name, weight in memory.model_.state_dict().items():
        torch.testing.assert_close(lazy.model_.state_dict()[name], weight, rtol=1e-4, atol=1e-5)


def test_lazy_training_learns_images(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    digits = (load_digits().images * 255 / 16).astype(np.uint8)  # (1797, 8, 8)
    np.save(tmp_path / "d.npy", digits)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    est = AutoEncoder(kind="conv", code_size=8, hidden=(4, 8), epochs=2, batch_size=64, random_state=0)
    est.fit(tmp_path / "d.npy")
    assert est.spec_.scaling == "divide255" and est.n_features_in_ == 64
    assert _history(est)[1] < _history(est)[0]
    assert est.reconstruct(digits[:3]).shape == (3, 8, 8)


def test_transform_and_friends_take_paths_and_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(autoencoder_module, "PREDICT_BATCH", 64)
    monkeypatch.setattr(autoencoder_module, "SOURCE_CHUNK_BYTES", 128 * 4 * 5)  # 128 rows: eight chunks
    est = AutoEncoder(**SMALL, batch_size=64).fit(TABLE)
    path = WRITERS["npy"](tmp_path)
    for X in (path, str(path), open_source(path)):
        np.testing.assert_array_equal(est.transform(X), est.transform(TABLE))
        np.testing.assert_array_equal(est.reconstruct(X), est.reconstruct(TABLE))
        np.testing.assert_array_equal(est.score_samples(X), est.score_samples(TABLE))
    np.save(tmp_path / "wrong.npy", TABLE[:, :3])
    with pytest.raises(DataError, match="X has 3 features, but AutoEncoder is expecting 5"):
        est.transform(tmp_path / "wrong.npy")


def test_a_compressed_npz_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    path = WRITERS["npz-compressed"](tmp_path)
    assert len(AutoEncoder(**SMALL).fit(path).history_) == 2  # it fits: read into memory
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    with pytest.raises(DataError, match="Save it uncompressed"):
        AutoEncoder(**SMALL).fit(path)


# -- the command line --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["npy-images", "parquet", "folder-rgb", "npz-stored"])
def test_aekit_train_reads_big_data_lazily(tmp_path, monkeypatch, capsys, case):
    path = WRITERS[case](tmp_path)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    kind = "dense" if case in ("parquet", "npz-stored") else "conv"
    code, out, err = run(
        capsys, "train", "--data", path, "--kind", kind, "--code-size", 2, "--hidden", "4,4",
        "--epochs", 1, "--batch-size", 4, "--out", tmp_path / "m.aek", "--runs", tmp_path / "runs", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    shape = read_array(path).shape
    assert f"({shape[0]} samples of shape {shape[1:]})" in out
    assert AutoEncoder.load(tmp_path / "m.aek").spec_.sample_shape == shape[1:]


def test_aekit_train_refuses_a_compressed_archive_too_big_for_memory(tmp_path, monkeypatch, capsys):
    path = WRITERS["npz-compressed"](tmp_path)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    one_line_error(
        capsys,
        ["train", "--data", path, "--out", tmp_path / "m.aek", "--runs", tmp_path / "runs", "--quiet"],
        "c.npz['x'] can only be read from its start",
        "np.save",
    )
    assert not (tmp_path / "m.aek").exists()


def test_two_processes_train_lazily_what_one_process_trains(tmp_path, monkeypatch, capsys):
    """torchrun with 2 processes on a file read lazily: each process reads only its slice of every global
    batch (63 rows: 32 + 31), and together they must follow one process's steps. Float32 sums in another
    order differ by ~1e-7 after these steps; a wrong slice or a row read twice moves weights by ~1e-2."""
    import socket

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1500, 3)) @ rng.normal(size=(3, 12))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    settings = [
        "--data",
        "x.npy",
        "--hidden",
        "16",
        "--code-size",
        "4",
        "--epochs",
        "2",
        "--batch-size",
        "63",
    ]
    settings += ["--device", "cpu", "--patience", "0", "--seed", "5", "--quiet"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(
        AEKIT_MEMORY_BUDGET_MB="0", OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1] / "src")
    )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    launcher += ["--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "aekit", "train"]
    done = subprocess.run(
        [*launcher, *settings, "--out", "two.aek", "--runs", "runs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0")
    code, _, err = run(capsys, "train", *settings, "--out", "one.aek", "--runs", "runs")
    assert code == 0, err
    two, one = AutoEncoder.load(tmp_path / "two.aek"), AutoEncoder.load(tmp_path / "one.aek")
    np.testing.assert_allclose(_history(two), _history(one), rtol=1e-5)
    for name, weight in one.model_.state_dict().items():
        torch.testing.assert_close(two.model_.state_dict()[name], weight, rtol=0, atol=1e-5)


# -- a hard memory cap -------------------------------------------------------------------------------------
# The cap is RLIMIT_DATA, which the kernel checks on every allocation (heap and private writable maps: what
# a MemoryError is about). It is set to what the child holds once torch, scikit-learn and aekit are loaded
# and a tiny model has trained (about 450 MB of libraries here) plus HEADROOM_MB for the data. RLIMIT_AS
# would instead count ~1.1 GB of address space that torch and the libraries reserve and never touch. The
# page cache that the file's reads fill belongs to the kernel and counts in neither.
HEADROOM_MB = 100
FILE_MB = 3 * HEADROOM_MB
CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from aekit import AutoEncoder

    def vm_data():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

    settings = dict(
        code_size=2, hidden=(8,), epochs=1, batch_size=1024, random_state=0, validation_fraction=0.01
    )
    AutoEncoder(**settings).fit(np.zeros((64, 512), np.uint8)).transform(np.zeros((64, 512), np.uint8))
    base = vm_data()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cap = base + (int(sys.argv[2]) << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    # The control: told to hold the data in memory, the capped process cannot (so the cap is real) ...
    os.environ["AEKIT_MEMORY_BUDGET_MB"] = "1000000"
    try:
        AutoEncoder(**settings).fit(sys.argv[1])
        refused = "no error"
    except MemoryError as e:
        refused = f"MemoryError: {e}"
    # ... while left to choose (the budget follows the cap), it reads lazily and stays under the cap.
    del os.environ["AEKIT_MEMORY_BUDGET_MB"]
    ae = AutoEncoder(**settings).fit(sys.argv[1])
    codes = ae.transform(sys.argv[1])
    print(json.dumps({
        "refused": refused,
        "epochs": len(ae.history_), "loss": ae.history_[0]["loss"], "codes": list(codes.shape),
        "finite": bool(np.isfinite(codes).all()), "base_mb": base / 2**20,
        "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss) / 2**20,
    }))
    """
)


def _big_npy(path: Path, megabytes: int, width: int = 512) -> tuple[int, int]:
    """A uint8 .npy of about ``megabytes``, written a slice at a time (this process never holds it)."""
    rows = megabytes * 2**20 // width
    rng = np.random.default_rng(0)
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (rows, width)}
        )
        for start in range(0, rows, 32768):
            rng.integers(0, 256, (min(32768, rows - start), width), dtype=np.uint8).tofile(f)
    return rows, width


def _child(path: Path) -> dict:
    """Run CHILD on ``path`` under the cap, with the environment less any memory budget."""
    env = {k: v for k, v in os.environ.items() if k != "AEKIT_MEMORY_BUDGET_MB"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(HEADROOM_MB)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_file_three_times_the_memory_cap_trains_and_embeds(tmp_path):
    path = tmp_path / "big.npy"
    rows, width = _big_npy(path, FILE_MB)
    assert path.stat().st_size >= 3 * HEADROOM_MB * 2**20
    result = _child(path)
    assert result["refused"].startswith("MemoryError: Unable to allocate"), result  # in memory: no
    assert result["epochs"] == 1 and result["codes"] == [rows, 2] and result["finite"], result  # lazily
    assert np.isfinite(result["loss"])
    assert result["rss_growth_mb"] < HEADROOM_MB, result
