"""Refusals made before any work: models too large for memory, outputs that cannot be written, NaN inputs;
and what killed or failed writes leave behind (stale temporary files, half-written output folders)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aekit import AutoEncoder
from aekit.atomic import atomic_folder, atomic_path, write_bytes_atomic
from aekit.cli.main import main
from aekit.errors import ConfigError, DataError
from cli_helpers import one_line_error

TABLE = np.random.default_rng(0).random((20, 6)).astype(np.float32)


# -- models too large for memory -----------------------------------------------------------------------


def test_a_huge_code_size_is_refused_before_anything_is_allocated():
    with pytest.raises(ConfigError, match=r"needs about .* to train .* more than the .* of memory left"):
        AutoEncoder(code_size=10**9, epochs=1).fit(TABLE)


def test_the_cli_refuses_a_huge_code_size_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", TABLE)
    argv = ["train", "--data", tmp_path / "x.npy", "--code-size", "1000000000", "--out", tmp_path / "m.aek"]
    one_line_error(capsys, argv, "weights", "code_size")
    assert not (tmp_path / "m.aek").exists()


def test_a_dense_model_on_a_photograph_is_refused_when_memory_is_short(monkeypatch):
    # The default dense model on one 512 x 768 RGB photo has 1.2 billion weights (about 18 GB to train):
    # with 4 GB available it must be refused with a pointer to kind='conv', not killed by the kernel.
    import aekit.memory

    monkeypatch.setattr(aekit.memory, "memory_left", lambda: 4 << 30)
    photo = np.zeros((2, 512, 768, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"1,209,\d{3},\d{3} weights.*kind='conv'"):
        AutoEncoder(epochs=1).fit(photo)


def test_the_memory_check_holds_under_a_real_memory_cap(tmp_path):
    # Under a 3 GB address-space cap the refusal must still come as one ConfigError, not a MemoryError:
    # the estimate reads the cap (RLIMIT_AS) and nothing big is allocated before the check.
    script = tmp_path / "capped.py"
    script.write_text(
        "import resource, numpy as np\n"
        "import torch, aekit\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))\n"
        "from aekit import AutoEncoder\n"
        "from aekit.errors import ConfigError\n"
        "try:\n"
        "    AutoEncoder(epochs=1, hidden=(20000, 20000)).fit(np.random.rand(16, 3000).astype('float32'))\n"
        "except ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "more than the" in done.stdout


# -- outputs checked before the work -------------------------------------------------------------------


def test_train_checks_out_before_training(tmp_path, capsys):
    np.save(tmp_path / "x.npy", TABLE)
    (tmp_path / "a_file").write_text("not a folder")
    bad = tmp_path / "a_file" / "m.aek"
    argv = ["train", "--data", tmp_path / "x.npy", "--epochs", "50", "--out", bad, "--runs", tmp_path / "r"]
    line = one_line_error(capsys, argv, str(bad), "is a file")
    assert "epoch" not in line
    assert not (tmp_path / "r").exists(), "training started before --out was checked"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_train_refuses_a_read_only_folder_before_training(tmp_path, capsys):
    np.save(tmp_path / "x.npy", TABLE)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv = ["train", "--data", tmp_path / "x.npy", "--out", locked / "m.aek", "--runs", tmp_path / "r"]
    one_line_error(capsys, argv, "not writable", str(locked))


# -- messages -----------------------------------------------------------------------------------------


def test_nan_at_encode_does_not_talk_about_training(tmp_path):
    est = AutoEncoder(code_size=2, hidden=(4,), epochs=1, random_state=0).fit(TABLE)
    bad = TABLE.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN") as info:
        est.transform(bad)
    assert "before training" not in str(info.value)


# -- temporary files -----------------------------------------------------------------------------------


def _killed_writer_leaves(target: Path, folder: bool = False) -> Path:
    """Start a process that opens an atomic write of ``target``, then kill it with SIGKILL mid-write."""
    code = (
        "import sys, time\n"
        "from aekit.atomic import atomic_folder, atomic_path\n"
        f"with ({'atomic_folder' if folder else 'atomic_path'})(sys.argv[1]) as tmp:\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert tmp.exists() and tmp.parent == target.parent
    return tmp


def test_a_killed_writers_temporary_file_goes_at_the_next_write(tmp_path):
    target = tmp_path / "model.aek"
    stale = _killed_writer_leaves(target)
    other = tmp_path / "other.aek"
    write_bytes_atomic(other, b"x")
    assert stale.exists(), "a write to another path must not touch this path's temporary files"
    write_bytes_atomic(target, b"new")
    assert not stale.exists()
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.aek", "other.aek"]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "out.npy"
    with atomic_path(target) as mine:
        mine.write_bytes(b"half")
        write_bytes_atomic(target, b"other")  # a second writer in the same (live) process
        assert mine.exists()


def test_a_killed_folder_write_goes_at_the_next_one(tmp_path):
    target = tmp_path / "images"
    stale = _killed_writer_leaves(target, folder=True)
    with atomic_folder(target) as folder:
        (folder / "a.png").write_bytes(b"a")
    assert not stale.exists()
    assert [p.name for p in target.iterdir()] == ["a.png"]


def test_resume_after_a_kill_leaves_no_temporary_checkpoint(tmp_path):
    # The case: a checkpoint .tmp survived a kill -9 and the successful --resume after it.
    np.save(tmp_path / "x.npy", TABLE)
    runs = tmp_path / "runs"
    argv = ["train", "--data", tmp_path / "x.npy", "--hidden", "4", "--code-size", "2", "--epochs", "3"]
    argv += ["--out", tmp_path / "m.aek", "--runs", runs, "--quiet"]
    assert main([str(a) for a in argv]) == 0
    checkpoint = next(runs.rglob("checkpoint*"))
    _killed_writer_leaves(checkpoint)
    assert main([str(a) for a in [*argv, "--resume"]]) == 0
    assert not [p for p in runs.rglob(".*") if p.name.endswith(".tmp")]


# -- output folders --------------------------------------------------------------------------------------


def test_atomic_folder_keeps_an_existing_folder_whole_on_error(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError), atomic_folder(target) as folder:
        (folder / "a.png").write_bytes(b"a")
        raise RuntimeError("damaged item")
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_folder(target) as folder:
        (folder / "a.png").write_bytes(b"a")
    assert sorted(p.name for p in target.iterdir()) == ["a.png", "mine.txt"]


def test_decompress_to_a_folder_writes_nothing_when_an_item_is_damaged(tmp_path, capsys):
    from PIL import Image

    from aekit.codec.container import ArchiveReader

    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate([(16, 16), (12, 20), (20, 8)]):  # three sizes: three coding batches
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"im{k}.png")
    archive = tmp_path / "a.aez"
    images = [tmp_path / f"im{k}.png" for k in range(3)]
    assert main(["compress", "photo", *map(str, images), "-o", str(archive), "--quiet"]) == 0
    capsys.readouterr()  # compress warned that noise is unlike the codec's photos: not this test's line
    with ArchiveReader(archive) as reader:
        second = reader._offsets[1]
    data = bytearray(archive.read_bytes())
    data[second] ^= 0xFF  # item 1's payload: its CRC fails after item 0 was decoded
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    one_line_error(capsys, ["decompress", archive, "-o", out, "--quiet"], "item 1", "damaged")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
