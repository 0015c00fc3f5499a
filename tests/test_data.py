"""aekit.data: named sets, the download path (against a local HTTP server), file types and bad input."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit.data import DATASETS, Dataset, cache_dir, data_dir, load, read_array, write_array
from aekit.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test reads the user's data folders, writes ~/.cache, or sends 127.0.0.1 traffic to a proxy."""
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("AEKIT_DATA_DIR", "AEKIT_DATA_MIRROR", *PROXY_VARS):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shared_dir(monkeypatch):
    if not (SHARED / "mnist.npz").is_file():
        pytest.skip(f"shared data sets not found at {SHARED} (expected ../shared/datasets beside the repo)")
    monkeypatch.setenv("AEKIT_DATA_DIR", str(SHARED))
    return SHARED


class FileServer:
    """A real HTTP server on 127.0.0.1 that serves ``files`` by name and records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mirror/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = FileServer()
    monkeypatch.setenv("AEKIT_DATA_MIRROR", srv.url)
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("AEKIT_DATA_DIR", str(empty))  # set but empty: forces the download path
    yield srv
    srv.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens once the socket is closed


def set_checksums(monkeypatch, name: str, files: dict[str, bytes]) -> None:
    """Make the registry entry ``name`` expect exactly these file contents."""
    spec = DATASETS[name]
    remotes = tuple(
        replace(r, checksum=hashlib.new(r.algorithm, files[r.filename]).hexdigest()) for r in spec.remotes
    )
    monkeypatch.setitem(DATASETS, name, replace(spec, remotes=remotes))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def tiny_mnist() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": np.arange(5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "y_test": np.array([7, 2], dtype=np.uint8),
    }


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------------------------------ named sets


def test_digits_is_scaled_split_and_deterministic():
    from sklearn.datasets import load_digits

    ds = load("digits")
    assert ds.name == "digits"
    assert ds.x_train.shape == (1438, 8, 8) and ds.x_test.shape == (359, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert len(ds.y_train) == 1438 and len(ds.y_test) == 359
    order = np.random.default_rng(0).permutation(1797)  # the documented split: last 20% is test
    np.testing.assert_array_equal(ds.x_test, (load_digits().images[order[1438:]] / 16).astype(np.float32))
    again = load("digits")
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)


def test_mnist_comes_from_data_dir_without_network_or_cache(shared_dir, monkeypatch):
    monkeypatch.setenv("AEKIT_DATA_MIRROR", closed_port_url())  # any download attempt would fail loudly
    ds = load("mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8
    assert list(ds.y_train[:5]) == [5, 0, 4, 1, 9] and list(ds.y_test[:5]) == [7, 2, 1, 0, 4]
    assert data_dir() == SHARED
    assert files_under(cache_dir()) == []


def test_cifar10_falls_back_to_the_lossy_jpeg_copy_with_a_warning(shared_dir):
    if not (shared_dir / "cifar10_test_jpeg.npz").is_file():
        pytest.skip("cifar10_test_jpeg.npz missing from the shared data sets")
    with pytest.warns(UserWarning, match="lossy JPEG"):
        ds = load("cifar10")
    assert ds.x_train.shape == (8000, 32, 32, 3) and ds.x_test.shape == (2000, 32, 32, 3)
    assert ds.x_train.dtype == np.uint8 and len(ds.y_train) == 8000
    with np.load(shared_dir / "cifar10_test_jpeg.npz", allow_pickle=False) as z:
        order = np.random.default_rng(0).permutation(10000)  # the documented fixed shuffle
        np.testing.assert_array_equal(ds.y_test, z["y"][order[8000:]])


def test_a_real_cifar10_npz_in_data_dir_wins_over_the_jpeg_copy(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    x = np.zeros((3, 32, 32, 3), np.uint8)
    write_bytes(folder / "cifar10.npz", npz_bytes(x_train=x, y_train=np.arange(3)))
    write_bytes(folder / "cifar10_test_jpeg.npz", npz_bytes(x=x, y=np.arange(3)))
    monkeypatch.setenv("AEKIT_DATA_DIR", str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load("cifar10")
    assert ds.x_train.shape == (3, 32, 32, 3) and ds.x_test is None


def test_a_named_set_file_with_the_wrong_shape_is_refused(tmp_path, monkeypatch):
    write_bytes(tmp_path / "mnist.npz", npz_bytes(x_train=np.zeros((2, 8, 8), np.uint8)))
    monkeypatch.setenv("AEKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"mnist images are uint8 of shape \(28, 28\)"):
        load("mnist")


def test_data_dir_that_is_not_a_folder_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AEKIT_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="AEKIT_DATA_DIR=.* is not a folder"):
        load("mnist")


def test_cache_dir_follows_env_and_defaults_to_home(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("AEKIT_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "aekit"


# --------------------------------------------------------------------------------------------- download


def test_download_is_verified_cached_and_not_repeated(server, monkeypatch):
    arrays = tiny_mnist()
    server.files["mnist.npz"] = npz_bytes(**arrays)
    set_checksums(monkeypatch, "mnist", server.files)
    ds = load("mnist")
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(ds, key), value)
    assert server.hits == ["/mirror/mnist.npz"]
    assert files_under(cache_dir()) == [cache_dir() / "mnist.npz"]  # the raw download is not kept
    again = load("mnist")
    np.testing.assert_array_equal(again.x_test, arrays["x_test"])
    assert len(server.hits) == 1


def test_checksum_mismatch_raises_and_leaves_no_file(server, monkeypatch):
    server.files["mnist.npz"] = npz_bytes(**tiny_mnist())
    set_checksums(monkeypatch, "mnist", {"mnist.npz": b"something else"})
    with pytest.raises(
        DataError, match=r"checksum mismatch for http://127\.0\.0\.1:\d+/mirror/mnist\.npz"
    ) as err:
        load("mnist")
    assert "expected sha256" in str(err.value) and hashlib.sha256(
        server.files["mnist.npz"]
    ).hexdigest() in str(err.value)
    assert files_under(cache_dir()) == []


def test_server_down_names_the_file_to_place_in_data_dir(monkeypatch):
    monkeypatch.setenv("AEKIT_DATA_MIRROR", closed_port_url())
    with pytest.raises(DataError, match="could not download mnist.npz .* place it in .*AEKIT_DATA_DIR"):
        load("mnist")
    assert files_under(cache_dir()) == []


def test_missing_file_on_server_reports_the_http_status(server):
    with pytest.raises(DataError, match="HTTP 404"):
        load("mnist")


def test_mirror_must_be_a_url(monkeypatch):
    monkeypatch.setenv("AEKIT_DATA_MIRROR", "ftp.example.org/data")
    with pytest.raises(DataError, match="AEKIT_DATA_MIRROR=.* is not an http"):
        load("mnist")


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes((0, 0, 0x08, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_download_parses_idx_files(server, monkeypatch):
    rng = np.random.default_rng(2)
    x_train, x_test = (
        rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (3, 28, 28), np.uint8),
    )
    y_train, y_test = np.array([1, 2, 3, 4], np.uint8), np.array([9, 8, 7], np.uint8)
    server.files.update(
        {
            "train-images-idx3-ubyte.gz": idx_gz(x_train),
            "train-labels-idx1-ubyte.gz": idx_gz(y_train),
            "t10k-images-idx3-ubyte.gz": idx_gz(x_test),
            "t10k-labels-idx1-ubyte.gz": idx_gz(y_test),
        }
    )
    set_checksums(monkeypatch, "fashion-mnist", server.files)
    ds = load("fashion-mnist")
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.x_test, x_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.x_train.flags.writeable
    assert files_under(cache_dir()) == [cache_dir() / "fashion-mnist.npz"]


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda raw: raw[:16] + raw[16:-5], "data bytes where its header says"),  # truncated body
        (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "not a uint8 IDX file"),  # float IDX, not uint8
    ],
)
def test_damaged_idx_file_is_refused(server, monkeypatch, damage, phrase):
    good = {
        "train-images-idx3-ubyte.gz": idx_gz(np.zeros((2, 28, 28), np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_gz(np.zeros(2, np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_gz(np.zeros((1, 28, 28), np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_gz(np.zeros(1, np.uint8)),
    }
    raw = gzip.decompress(good["train-images-idx3-ubyte.gz"])
    server.files.update(good, **{"train-images-idx3-ubyte.gz": gzip.compress(damage(raw))})
    set_checksums(monkeypatch, "fashion-mnist", server.files)
    with pytest.raises(DataError, match=phrase):
        load("fashion-mnist")


def cifar_tar_gz(batches: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> bytes:
    """A cifar-10-binary.tar.gz in the real layout: per record a label byte then R, G, B planes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, images in batches.items():
            planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
            data = np.concatenate([labels[name][:, None], planes], axis=1).astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cifar_parts() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    return (
        {n: rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for n in names},
        {n: rng.integers(0, 10, 2, dtype=np.uint8) for n in names},
    )


def test_cifar10_download_parses_the_binary_version(server, monkeypatch):
    batches, labels = cifar_parts()
    server.files["cifar-10-binary.tar.gz"] = cifar_tar_gz(batches, labels)
    set_checksums(monkeypatch, "cifar10", server.files)
    ds = load("cifar10")
    train = [f"data_batch_{i}.bin" for i in range(1, 6)]
    np.testing.assert_array_equal(ds.x_train, np.concatenate([batches[n] for n in train]))
    np.testing.assert_array_equal(ds.y_train, np.concatenate([labels[n] for n in train]))
    np.testing.assert_array_equal(ds.x_test, batches["test_batch.bin"])
    assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_train.dtype == np.uint8


def test_source_file_in_data_dir_is_verified_then_used_offline(tmp_path, monkeypatch):
    batches, labels = cifar_parts()
    archive = cifar_tar_gz(batches, labels)
    write_bytes(tmp_path / "data" / "cifar-10-binary.tar.gz", archive)
    monkeypatch.setenv("AEKIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AEKIT_DATA_MIRROR", closed_port_url())
    with pytest.raises(DataError, match="damaged or another version"):
        load("cifar10")  # the real md5 does not match our tiny archive
    set_checksums(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": archive})
    ds = load("cifar10")
    np.testing.assert_array_equal(ds.x_test, batches["test_batch.bin"])
    assert (tmp_path / "data" / "cifar-10-binary.tar.gz").is_file()  # the user's file is left alone


def test_cifar_archive_with_a_torn_batch_is_refused(server, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 100  # not a whole 3073-byte record
        tar.addfile(info, io.BytesIO(bytes(100)))
    server.files["cifar-10-binary.tar.gz"] = buf.getvalue()
    set_checksums(monkeypatch, "cifar10", server.files)
    with pytest.raises(DataError, match="not whole 3073-byte CIFAR records"):
        load("cifar10")


# ---------------------------------------------------------------------------------------- file types


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("suffix", "array"),
    [
        (".npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
        (".npz", np.arange(12, dtype=np.uint8).reshape(3, 4)),
        (".csv", np.array([[0.5, -1.25], [3.0, 1e-7], [2.0, 4.0]])),
        (".parquet", np.arange(6, dtype=np.int64).reshape(3, 2)),
    ],
)
def test_write_then_read_round_trips(tmp_path, suffix, array):
    path = tmp_path / "deep" / "er" / f"out{suffix}"  # parent folders are created
    assert write_array(path, array) == path
    back = read_array(path)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(load(path).x_train, array)
    assert load(str(path)).name == "out"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_write_array_replaces_a_file_in_one_step(tmp_path):
    path = tmp_path / "a.npy"
    write_array(path, np.zeros(3))
    write_array(path, np.ones(4))
    np.testing.assert_array_equal(read_array(path), np.ones(4))


def test_write_array_refuses_unknown_suffix_and_bad_tables(tmp_path):
    with pytest.raises(DataError, match=r"\.npy, \.npz, \.csv, \.parquet; pick one of those suffixes"):
        write_array(tmp_path / "out.png", np.zeros((2, 2)))
    with pytest.raises(DataError, match="flatten it"):
        write_array(tmp_path / "out.csv", np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match="Python objects"):
        write_array(tmp_path / "out.npy", np.array([{"a": 1}], dtype=object))
    assert files_under(tmp_path) == []


def test_npz_picks_x_then_x_test_then_x_train_or_the_key_given(tmp_path):
    path = tmp_path / "split.npz"
    write_bytes(path, npz_bytes(x_train=np.zeros((3, 2)), x_test=np.ones((2, 2)), y_train=np.arange(3)))
    np.testing.assert_array_equal(read_array(path), np.ones((2, 2)))
    np.testing.assert_array_equal(read_array(path, key="x_train"), np.zeros((3, 2)))
    with pytest.raises(DataError, match="has no array 'z'; it has 'x_train', 'x_test', 'y_train'"):
        read_array(path, key="z")
    single = write_bytes(tmp_path / "one.npz", npz_bytes(anything=np.arange(4)))
    np.testing.assert_array_equal(read_array(single), np.arange(4))
    several = write_bytes(tmp_path / "many.npz", npz_bytes(a=np.arange(2), b=np.arange(3)))
    with pytest.raises(DataError, match="pick one with --key NAME"):
        read_array(several)
    with pytest.raises(DataError, match="only applies to .npz"):
        read_array(write_array(tmp_path / "a.npy", np.arange(3)), key="x")


def test_npz_becomes_a_dataset_by_its_key_names(tmp_path):
    split = write_bytes(
        tmp_path / "split.npz",
        npz_bytes(
            x_train=np.zeros((3, 2)), x_test=np.ones((2, 2)), y_train=np.arange(3), y_test=np.arange(2)
        ),
    )
    ds = load(split)
    assert ds.x_train.shape == (3, 2) and ds.x_test.shape == (2, 2)
    np.testing.assert_array_equal(ds.y_test, np.arange(2))
    plain = load(write_bytes(tmp_path / "plain.npz", npz_bytes(x=np.zeros((4, 2)), y=np.arange(4))))
    assert plain.x_train.shape == (4, 2) and plain.x_test is None and len(plain.y_train) == 4
    only = load(write_bytes(tmp_path / "only.npz", npz_bytes(images=np.zeros((4, 2)))))
    assert only.x_train.shape == (4, 2)  # the only array is the data, whatever its name
    odds = load(write_bytes(tmp_path / "odds.npz", npz_bytes(X=np.zeros((4, 2)), y=np.zeros((4, 1)))))
    assert odds.x_train.shape == (4, 2) and odds.y_train.shape == (4,)  # ODDS: 'X', and labels as a column
    with pytest.raises(DataError, match="needs 'x_train'.*--key NAME"):
        load(write_bytes(tmp_path / "wrong.npz", npz_bytes(images=np.zeros((4, 2)), more=np.zeros(4))))
    with pytest.raises(DataError, match="x_train has 3 rows but y_train has 2"):
        load(write_bytes(tmp_path / "bad.npz", npz_bytes(x_train=np.zeros((3, 2)), y_train=np.arange(2))))


def test_csv_with_header_and_label_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2.5,0\n3,4,1\n")
    ds = load(path)
    np.testing.assert_array_equal(ds.x_train, [[1, 2.5], [3, 4]])
    np.testing.assert_array_equal(ds.y_train, [0, 1])
    np.testing.assert_array_equal(read_array(path), [[1, 2.5], [3, 4]])


def test_csv_without_header_keeps_its_first_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2\n3,4\n")
    np.testing.assert_array_equal(read_array(path), [[1, 2], [3, 4]])


def test_parquet_with_y_column_and_string_labels(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"f": [0.5, 1.5], "y": ["cat", "dog"]}).to_parquet(path)
    ds = load(path)
    np.testing.assert_array_equal(ds.x_train, [[0.5], [1.5]])
    assert list(ds.y_train) == ["cat", "dog"] and ds.y_train.dtype.kind == "U"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_with_non_numeric_columns_name_them(tmp_path, suffix):
    frame = pd.DataFrame({"size": [1.0, 2.0], "colour": ["red", "blue"], "label": [0, 1]})
    path = tmp_path / f"t{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    with pytest.raises(DataError, match="non-numeric columns 'colour'"):
        load(path)


def test_csv_with_missing_values_says_where(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,\n")
    with pytest.raises(DataError, match="1 missing values .*column 'b', data row 2"):
        read_array(path)


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("empty.npy", b"", "is empty"),
        ("empty.csv", b"", "is empty"),
        ("bad.npz", b"not a zip at all", "not a valid .npz file"),
        ("bad.npy", b"\x93NUMPY garbage", "not a valid .npy file"),
        ("bad.parquet", b"PAR1 nonsense", "not a readable Parquet file"),
        ("bad.png", b"\x89PNG not really", "not a readable PNG/JPEG image"),
        ("header.csv", b"a,b\n", "has no data"),
        ("notes.txt", b"hello", "unknown file type '.txt'"),
    ],
)
def test_bad_files_raise_data_error(tmp_path, name, content, phrase):
    path = write_bytes(tmp_path / name, content)
    with pytest.raises(DataError, match=phrase):
        load(path)


def test_pickled_object_array_is_never_loaded(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never does"):
        read_array(path)


def test_missing_path_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="no such file or folder: .*nothing.npy"):
        load(tmp_path / "nothing.npy")
    with pytest.raises(DataError, match="no such file or folder"):
        read_array("some/where/x.csv")
    with pytest.raises(
        DataError, match="unknown data set 'mnits'.*digits, mnist, fashion-mnist, cifar10.*parquet"
    ):
        load("mnits")


# --------------------------------------------------------------------------------------------- images


def save_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def test_single_png_and_jpeg(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    png = save_image(tmp_path / "g.png", gray)
    np.testing.assert_array_equal(read_array(png), gray)
    assert load(png).x_train.shape == (1, 3, 4)  # a data set of one image
    jpeg = save_image(tmp_path / "c.JPG", np.full((5, 6, 3), 128, np.uint8))
    assert read_array(jpeg).shape == (5, 6, 3) and read_array(jpeg).dtype == np.uint8


def test_image_folder_is_stacked_in_file_name_order(tmp_path):
    folder = tmp_path / "imgs"
    for value, name in [(30, "c.png"), (10, "a.png"), (20, "b.jpeg")]:
        save_image(folder / name, np.full((4, 5), value, np.uint8))
    (folder / "README.txt").write_text("not an image, ignored")
    x = read_array(folder)
    assert x.shape == (3, 4, 5) and x.dtype == np.uint8
    assert [int(round(v)) for v in x.mean(axis=(1, 2))] == [10, 20, 30]
    ds = load(folder)
    assert ds.name == "imgs" and ds.x_train.shape == (3, 4, 5)


def test_rgba_images_become_rgb(tmp_path):
    folder = tmp_path / "imgs"
    save_image(folder / "a.png", np.full((4, 4, 4), 200, np.uint8), "RGBA")
    save_image(folder / "b.png", np.full((4, 4, 3), 100, np.uint8))
    x = read_array(folder)
    assert x.shape == (2, 4, 4, 3)
    assert x[0, 0, 0].tolist() == [200, 200, 200]


@pytest.mark.parametrize(
    ("second", "phrase"),
    [
        (np.zeros((5, 4), np.uint8), "b.png is 4x5 grayscale but a.png is 4x4 grayscale"),
        (np.zeros((4, 4, 3), np.uint8), "b.png is 4x4 RGB but a.png is 4x4 grayscale"),
    ],
)
def test_image_folder_with_mixed_sizes_or_modes_names_the_offender(tmp_path, second, phrase):
    folder = tmp_path / "imgs"
    save_image(folder / "a.png", np.zeros((4, 4), np.uint8))
    save_image(folder / "b.png", second)
    save_image(folder / "c.png", np.zeros((9, 9), np.uint8))
    with pytest.raises(DataError, match=phrase):
        read_array(folder)


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no PNG or JPEG images"):
        load(tmp_path / "empty")


def test_16_bit_images_are_refused_rather_than_truncated(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((3, 3), 40000, np.uint16)).save(path)
    with pytest.raises(DataError, match="image mode 'I;16'"):
        read_array(path)


def test_dataset_is_frozen():
    ds = Dataset("d", np.zeros((2, 2)))
    with pytest.raises(AttributeError):
        ds.name = "other"
