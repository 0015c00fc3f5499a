"""Streaming batch inference: incremental writers, and every verb streamed equal to the in-memory result.

Inputs of 3000 rows with ``--chunk-rows 1024`` go through three chunks (the last one short), so every
test crosses chunk boundaries; a series detector's windows straddle them. The memory test runs a
reconstruction of a file several times larger than the memory it is allowed to grow by, in a subprocess.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aekit import AnomalyDetector, AutoEncoder, streaming
from aekit.data import read_array, write_array
from aekit.data.writers import WRITERS, npy_header, open_writer
from aekit.errors import DataError
from aekit.estimators.series_stream import series_scores
from cli_helpers import assert_one_error, run

ROWS, FEATURES = 3000, 10
CHUNK = ["--chunk-rows", "1024"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """table.npy (3000 x 10), table.csv (the same with a label column), a dense model, a table detector,
    a series (5000 x 2) and a window-8 series detector."""
    root = tmp_path_factory.mktemp("streaming")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    x[::97] += 6.0  # planted anomalies
    np.save(root / "table.npy", x)
    y = np.zeros(ROWS, np.int64)
    y[::97] = 1
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)]).assign(label=y)
    frame.to_csv(root / "table.csv", index=False)
    AutoEncoder(hidden=(8,), code_size=3, epochs=1, random_state=0).fit(x[:500]).save(root / "dense.aek")
    tiny = {"hidden": (8,), "code_size": 2, "epochs": 1, "n_estimators": 1, "refits": 0, "random_state": 0}
    AnomalyDetector(**tiny).fit(x[:500]).save(root / "det.aek")
    series = np.cumsum(rng.normal(size=(5000, 2)), axis=0).astype(np.float32) / 30
    np.save(root / "series.npy", series)
    AnomalyDetector(window=8, **tiny).fit(series[:800]).save(root / "series.aek")
    AnomalyDetector(window=3, stride=5, **tiny).fit(series[:800]).save(root / "gaps.aek")
    return root


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer would leave behind (atomic_path names them .<name>.*.tmp)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- writers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", list(WRITERS))
@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32),
        np.random.default_rng(2).normal(size=(7,)),
        np.random.default_rng(3).integers(0, 256, (9, 4, 5), dtype=np.uint8),
    ],
    ids=["table", "column", "images"],
)
def test_chunked_writes_read_back_as_write_array(tmp_path, suffix, array):
    if array.ndim == 3 and suffix in (".csv", ".parquet"):
        with pytest.raises(DataError, match="holds a table"), open_writer(tmp_path / f"w{suffix}") as w:
            w.write({"x": array})
        assert not (tmp_path / f"w{suffix}").exists() and leftovers(tmp_path) == []
        return
    write_array(tmp_path / f"whole{suffix}", array)
    with open_writer(tmp_path / f"w{suffix}") as w:
        for start in range(0, len(array), 3):  # chunks of 3, the last one short
            w.write({"x": array[start : start + 3]})
        w.write({"x": array[:0]})  # an empty chunk changes nothing
    got, want = read_array(tmp_path / f"w{suffix}"), read_array(tmp_path / f"whole{suffix}")
    assert got.dtype == want.dtype and np.array_equal(got, want)
    if suffix == ".csv":  # pandas formats each value on its own: the text is the same, byte for byte
        assert (tmp_path / "w.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert leftovers(tmp_path) == []


def test_npy_header_keeps_numpys_layout_for_any_row_count(tmp_path):
    for rows in (0, 7, 10**12):
        header = npy_header(np.dtype("<f4"), (rows, 3, 2))
        assert len(header) % 64 == 0  # the data starts aligned, as numpy writes it
        assert len(header) == len(npy_header(np.dtype("<f4"), (0, 3, 2)))  # rewritten in place at close
    with open_writer(tmp_path / "m.npy") as w:
        w.write({"x": np.arange(12, dtype=np.int16).reshape(4, 3)})
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")  # a real .npy: numpy maps it
    assert mapped.shape == (4, 3) and mapped.dtype == np.int16 and int(mapped[3, 2]) == 11


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_score_and_label_fields_keep_the_detect_layout(tmp_path, suffix):
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=11), (rng.random(11) > 0.7).astype(np.int64)
    with open_writer(tmp_path / f"s{suffix}") as w:
        for start in range(0, 11, 4):
            w.write({"score": scores[start : start + 4], "label": labels[start : start + 4]})
    path = tmp_path / f"s{suffix}"
    if suffix == ".npy":  # (N, 2) float64: score, label
        np.testing.assert_array_equal(np.load(path), np.column_stack([scores, labels.astype(np.float64)]))
    elif suffix == ".npz":
        with np.load(path) as z:
            assert z.files == ["score", "label"] and z["label"].dtype == np.int64
            np.testing.assert_array_equal(z["score"], scores)
    else:
        table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        pd.testing.assert_frame_equal(table, pd.DataFrame({"score": scores, "label": labels}))


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_an_error_midway_leaves_no_partial_output_and_the_old_file_intact(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"the previous result")
    with pytest.raises(RuntimeError, match="disk on fire"), open_writer(target) as w:
        w.write({"x": np.ones((5, 2), np.float32)})
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"the previous result"
    assert leftovers(tmp_path) == []


def test_writer_refusals_are_clear(tmp_path):
    with pytest.raises(DataError, match=r"\.txt.*\.npy"):
        open_writer(tmp_path / "out.txt")
    with pytest.raises(DataError, match="rows of shape"), open_writer(tmp_path / "a.npy") as w:
        w.write({"x": np.zeros((2, 3))})
        w.write({"x": np.zeros((2, 4))})
    with pytest.raises(DataError, match="Python objects"), open_writer(tmp_path / "b.npy") as w:
        w.write({"x": np.array([None, 1], dtype=object)})
    with pytest.raises(DataError, match="equal length"), open_writer(tmp_path / "c.csv") as w:
        w.write({"score": np.zeros(3), "label": np.zeros(2)})
    assert leftovers(tmp_path) == [] and not list(tmp_path.iterdir())


# -- every verb: streamed == in memory ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_embed_streams_what_transform_gives(work, capsys, suffix):
    x = np.load(work / "table.npy")
    code, out, err = run(capsys, "embed", work / "dense.aek", work / "table.npy", "-o", f"c{suffix}", *CHUNK)
    assert code == 0, err
    assert f"codes of {ROWS} samples" in out and f"({ROWS}, 3)" in out
    expected = AutoEncoder.load(work / "dense.aek").transform(x)
    np.testing.assert_array_equal(read_array(f"c{suffix}"), expected)  # bit for bit, not just close


def test_embed_a_csv_table_in_chunks_equals_reading_it_whole(work, capsys):
    assert run(capsys, "embed", work / "dense.aek", work / "table.csv", "-o", "c.csv", *CHUNK)[0] == 0
    x = read_array(work / "table.csv")  # the label column is left out, as when reading it whole
    expected = AutoEncoder.load(work / "dense.aek").transform(x)
    np.testing.assert_array_equal(pd.read_csv("c.csv").to_numpy(np.float32), expected)


@pytest.mark.parametrize("verb", ["encode", "reconstruct"])
def test_encode_and_reconstruct_stream(work, capsys, verb):
    x = np.load(work / "table.npy")
    code, out, err = run(capsys, verb, work / "dense.aek", work / "table.npy", "-o", "r.npz", *CHUNK)
    assert code == 0, err
    est = AutoEncoder.load(work / "dense.aek")
    expected = est.transform(x) if verb == "encode" else est.reconstruct(x)
    with np.load("r.npz") as z:
        np.testing.assert_array_equal(z["x"], expected)
    assert str(expected.shape) in out


def test_decode_streams_codes(work, capsys):
    est = AutoEncoder.load(work / "dense.aek")
    codes = est.transform(np.load(work / "table.npy"))
    np.save("codes.npy", codes)
    assert run(capsys, "decode", work / "dense.aek", "codes.npy", "-o", "back.npy", *CHUNK)[0] == 0
    np.testing.assert_array_equal(np.load("back.npy"), est.inverse_transform(codes))


def test_detect_a_table_streams_scores_labels_and_metrics(work, capsys):
    code, out, err = run(
        capsys,
        "detect",
        work / "det.aek",
        work / "table.csv",
        "-o",
        "s.parquet",
        "--percentile",
        "90",
        *CHUNK,
    )
    assert code == 0, err
    det = AnomalyDetector.load(work / "det.aek")
    det.set_threshold(percentile=90)
    x = np.load(work / "table.npy")
    expected = det.decision_function(x)
    got = pd.read_parquet("s.parquet")
    np.testing.assert_array_equal(got["score"].to_numpy(), expected)
    np.testing.assert_array_equal(got["label"].to_numpy(), (expected > det.threshold_).astype(np.int64))
    assert f"{int(got['label'].sum())} flagged" in out
    from sklearn.metrics import roc_auc_score

    y = pd.read_csv(work / "table.csv")["label"].to_numpy()
    assert f"AUROC {roc_auc_score(y, expected):.4f}" in out  # labels from the table's column, in order


@pytest.mark.parametrize("model", ["series.aek", "gaps.aek"])
def test_detect_a_series_across_chunk_boundaries(work, capsys, model):
    """Windows of 8 straddle every chunk boundary; gaps.aek (window 3, stride 5) leaves steps between
    windows, which take the last window's score: both equal decision_function on the whole series."""
    series = np.load(work / "series.npy")
    code, out, err = run(capsys, "detect", work / model, work / "series.npy", "-o", "s.npy", *CHUNK)
    assert code == 0, err
    assert f"scored {len(series)} time steps" in out
    expected = AnomalyDetector.load(work / model).decision_function(series)
    np.testing.assert_array_equal(np.load("s.npy")[:, 0], expected)


def test_series_scores_are_exact_for_any_chunking(work):
    det = AnomalyDetector.load(work / "series.aek")
    series = np.load(work / "series.npy")[:3100]
    expected = det.decision_function(series)
    for size in (1, 7, 1000, 4000):  # chunks shorter than a window, odd sizes, one chunk
        chunks = (series[i : i + size] for i in range(0, len(series), size))
        parts = [scores for _, scores in series_scores(det, chunks, len(series), block=1024)]
        np.testing.assert_array_equal(np.concatenate(parts), expected)


def test_compress_reads_a_stack_in_chunks_and_decompress_writes_it_as_it_comes(capsys, monkeypatch, tmp_path):
    from aekit.cli import compress
    from aekit.codec.codec import ImageCodec
    from aekit.data import sources

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (7, 8, 8), dtype=np.uint8)
    np.save("stack.npy", stack)
    tiny = ["--hidden", "8", "--latent", "4", "--stages", "2", "--steps", "4", "--batch-size", "4"]
    argv = ["train", "--task", "compress", "--data", "stack.npy", "--out", "codec.aek", "--runs", "runs"]
    assert run(capsys, *argv, "--quiet", "--lambda", "0.02,0.2", *tiny)[0] == 0
    reads = []
    real = sources.NpySource.iter_chunks

    def spy(self, rows):
        for chunk in real(self, rows):
            reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(sources.NpySource, "iter_chunks", spy)
    monkeypatch.setattr(compress, "STACK_CHUNK_BYTES", 3 * 64)  # three 8x8 images per read
    assert run(capsys, "compress", "codec.aek", "stack.npy", "-o", "s.aez", "--lossless", "--quiet")[0] == 0
    assert reads == [3, 3, 1]
    # the same archive, byte for byte, as compressing the images held in memory
    codec = ImageCodec.load("codec.aek")
    meta = {"codec": codec.name_, "source": "stack.npy", "stack_shape": [7, 8, 8]}
    codec.compress_to(tmp_path / "memory.aez", list(stack), codec.n_qualities, True, None, codec.name_, meta)
    assert Path("s.aez").read_bytes() == (tmp_path / "memory.aez").read_bytes()
    assert run(capsys, "decompress", "s.aez", "-o", "back.npy", "--quiet")[0] == 0
    np.testing.assert_array_equal(np.load("back.npy"), stack)


# -- errors, progress, workers, memory ----------------------------------------------------------------------


def test_an_error_in_a_later_chunk_leaves_no_output(work, capsys, tmp_path):
    frame = pd.read_csv(work / "table.csv")
    frame["f3"] = frame["f3"].astype(object)
    frame.loc[2500, "f3"] = "n/a"  # pandas' missing value, in the third chunk: two are written before it
    frame.to_csv("bad.csv", index=False)
    Path("codes.npy").write_bytes(b"keep me")
    code, _, err = run(capsys, "embed", work / "dense.aek", "bad.csv", "-o", "codes.npy", *CHUNK)
    assert_one_error(code, err, "missing", "'f3'", "row 2501")
    assert Path("codes.npy").read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []


def test_bad_streaming_options_are_one_line(work, capsys):
    code, _, err = run(
        capsys, "embed", work / "dense.aek", work / "table.npy", "-o", "c.npy", "--chunk-rows", "1000"
    )
    assert_one_error(code, err, "multiple of 1024", "1024")
    code, _, err = run(capsys, "encode", work / "dense.aek", work / "table.npy", "-o", "c.txt")
    assert_one_error(code, err, ".txt", ".npy")
    np.save("flat.npy", np.zeros(5, np.float32))
    code, _, err = run(capsys, "embed", work / "dense.aek", "flat.npy", "-o", "c.npy")
    assert_one_error(code, err, "1-D", "one row per sample")


def test_the_progress_bar_counts_rows_on_a_terminal(work, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    seen = []
    real = streaming.Bar.advance
    monkeypatch.setattr(streaming.Bar, "advance", lambda self, rows: (seen.append(rows), real(self, rows)))
    assert run(capsys, "embed", work / "dense.aek", work / "table.npy", "-o", "c.npy", *CHUNK)[0] == 0
    assert seen == [1024, 1024, 952] and "embedding" in screen.getvalue()
    seen.clear()
    assert run(capsys, "embed", work / "dense.aek", work / "table.npy", "-o", "c.npy", "--quiet")[0] == 0
    assert seen == [3000] and "embedding" not in screen.getvalue().split("\n")[-1]


def test_workers_give_the_same_output_in_order(work, capsys):
    """Two spawned processes, each loading the detector itself (with the moved threshold)."""
    argv = ["detect", work / "det.aek", work / "table.npy", "--percentile", "80", *CHUNK]
    assert run(capsys, *argv, "-o", "one.npy")[0] == 0
    code, out, err = run(capsys, *argv, "-o", "two.npy", "--workers", "2")
    assert code == 0, err
    np.testing.assert_array_equal(np.load("two.npy"), np.load("one.npy"))
    assert np.load("two.npy")[:, 1].sum() == pytest.approx(0.2 * ROWS, rel=0.25)  # the threshold moved


MEMORY_CHILD = r"""
import json, sys
import numpy as np
from aekit import AutoEncoder
from aekit.cli.main import main

def status(field):  # KiB
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

model, data, out, mode = sys.argv[1:]
AutoEncoder.load(model).reconstruct(np.zeros((1024, 256), np.float32))  # torch's lazy set-up, paid once
# Reset the peak to the resident set now: the peak so far (imports) may be higher than the resident set
# is now, as the kernel drops library pages when a big file has just filled the page cache.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
if mode == "stream":
    code = main(["reconstruct", model, data, "-o", out, "--chunk-rows", "1024", "--quiet"])
else:  # the in-memory way, for scale
    est = AutoEncoder.load(model)
    np.save(out, est.reconstruct(np.load(data)))
    code = 0
print(json.dumps({"code": code, "before_kib": before, "peak_kib": status("VmHWM")}))
"""


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the resident set from Linux's /proc"
)
def test_a_large_file_is_reconstructed_with_bounded_memory(tmp_path):
    """64 MB in and 64 MB out: streaming's peak resident memory exceeds the resident set before it by a small
    fraction of that (a few 1 MB chunks: read, scaled, reconstructed), where reading it whole takes more
    than the file (input, scaled copy, output).
    The peak resident set (VmHWM, reset just before) is a fair measure here: the sources read with pread
    into fresh buffers, not a memory map, and writes go to the page cache, which is not the process's."""
    rows, features = 64 * 1024, 256
    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(rows, features))
    for start in range(0, rows, 4096):
        x[start : start + 4096] = np.random.default_rng(start).random((4096, features), np.float32)
    x.flush()
    del x
    est = AutoEncoder(hidden=(8,), code_size=2, epochs=1, random_state=0)
    est.fit(np.random.default_rng(0).random((256, features), np.float32)).save(tmp_path / "m.aek")
    file_mib = rows * features * 4 / 2**20

    def child(mode: str) -> float:
        argv = [sys.executable, "-c", MEMORY_CHILD, tmp_path / "m.aek", tmp_path / "big.npy"]
        done = subprocess.run(
            [*map(str, argv), tmp_path / f"{mode}.npy", mode], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["code"] == 0
        return (report["peak_kib"] - report["before_kib"]) / 1024

    streamed = child("stream")
    assert streamed < file_mib / 3, f"streaming grew by {streamed:.0f} MiB for a {file_mib:.0f} MiB file"
    out = np.load(tmp_path / "stream.npy", mmap_mode="r")
    assert out.shape == (rows, features) and np.isfinite(out[-5:]).all()
    whole = child("whole")  # the comparison that shows the measure can fail
    assert whole > file_mib, f"reading it whole grew by only {whole:.0f} MiB"
    np.testing.assert_array_equal(np.load(tmp_path / "whole.npy", mmap_mode="r")[-4096:], out[-4096:])
