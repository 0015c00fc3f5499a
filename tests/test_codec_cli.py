"""``aekit train --task compress``, ``aekit compress`` and ``aekit decompress``, end to end through main()."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.cli.main import main
from aekit.codec.container import ArchiveReader
from cli_helpers import one_line_error

TINY = [
    "--hidden",
    "8",
    "--latent",
    "4",
    "--stages",
    "2",
    "--steps",
    "8",
    "--batch-size",
    "8",
    "--lambda",
    "0.02,0.2",
]


def _blobs(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w))
    for i in range(n):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 5)
        out[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return np.round(out * 255).astype(np.uint8)


def _sha(path: Path) -> str:
    return hashlib.sha256(np.asarray(Image.open(path)).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with training data, a trained codec (codec.aek) and a few PNGs of odd sizes."""
    root = tmp_path_factory.mktemp("codec-cli")
    np.save(root / "train.npy", _blobs(24, 16, 16))
    argv = [
        "train",
        "--task",
        "compress",
        "--data",
        str(root / "train.npy"),
        "--out",
        str(root / "codec.aek"),
    ]
    assert main([*argv, "--runs", str(root / "runs"), "--quiet", *TINY]) == 0
    photos = root / "photos"
    photos.mkdir()
    for k, (h, w) in enumerate([(16, 16), (13, 7), (5, 21)]):
        Image.fromarray(_blobs(1, h, w, seed=k + 10)[0]).save(photos / f"im{k}.png")
    return root


def test_help_lists_the_options(capsys):
    for verb in ("compress", "decompress"):
        assert main([verb, "--help"]) == 0
        assert "--model" in capsys.readouterr().out or verb == "compress"
    assert main(["train", "--help"]) == 0
    assert "--lambda" in capsys.readouterr().out


def test_train_writes_a_codec(work, capsys):
    assert (work / "codec.aek").is_file()
    assert main(["info", str(work / "codec.aek")]) in (0, 2)  # info may not know codecs; it must not crash
    capsys.readouterr()


def test_lossless_files_round_trip_bit_exact(work, tmp_path, capsys):
    files = sorted((work / "photos").glob("*.png"))
    arch = tmp_path / "b.aez"
    assert main(["compress", str(work / "codec.aek"), *map(str, files), "-o", str(arch), "--lossless"]) == 0
    assert "compressed 3 image(s)" in capsys.readouterr().out
    with ArchiveReader(arch) as r:
        assert [it.name for it in r] == [f.name for f in files]
        assert r.meta["codec"] == str((work / "codec.aek").resolve())
    assert main(["decompress", str(arch), "-o", str(tmp_path / "out")]) == 0
    for f in files:
        assert _sha(tmp_path / "out" / f.name) == _sha(f)


def test_folder_in_lossy_out_with_quality(work, tmp_path, capsys):
    arch = tmp_path / "q.aez"
    assert (
        main(["compress", str(work / "codec.aek"), str(work / "photos"), "-o", str(arch), "--quality", "1"])
        == 0
    )
    with ArchiveReader(arch) as r:
        assert len(r) == 3 and {it.quality for it in r} == {1}
    assert main(["decompress", str(arch), "-o", str(tmp_path / "o"), "--quiet"]) == 0
    out = np.asarray(Image.open(tmp_path / "o" / "im1.png"))
    assert out.shape == (13, 7) and out.dtype == np.uint8
    capsys.readouterr()


def test_npy_stack_round_trip_and_model_override(work, tmp_path, capsys):
    stack = _blobs(5, 12, 12, seed=3)
    np.save(tmp_path / "s.npy", stack)
    arch = tmp_path / "s.aez"
    assert (
        main(["compress", str(work / "codec.aek"), str(tmp_path / "s.npy"), "-o", str(arch), "--lossless"])
        == 0
    )
    with ArchiveReader(arch) as r:
        assert r.meta["source"] == "s.npy" and r.meta["stack_shape"] == [5, 12, 12]
    moved = tmp_path / "moved.aek"
    moved.write_bytes((work / "codec.aek").read_bytes())
    out = tmp_path / "back.npy"
    assert main(["decompress", str(arch), "-o", str(out), "--model", str(moved)]) == 0
    assert np.array_equal(np.load(out), stack)
    # a folder output names the stack's items by position
    assert main(["decompress", str(arch), "-o", str(tmp_path / "f"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir())[0] == "item_00000.png"
    capsys.readouterr()


def test_bad_inputs_are_one_line_and_exit_2(work, tmp_path, capsys):
    codec = str(work / "codec.aek")
    im = str(work / "photos" / "im0.png")
    arch = tmp_path / "a.aez"
    assert main(["compress", codec, im, "-o", str(arch), "--quiet"]) == 0
    one_line_error(
        capsys, ["compress", codec, str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.aez")], "no such"
    )
    one_line_error(
        capsys, ["compress", str(tmp_path / "none.aek"), im, "-o", str(tmp_path / "x.aez")], "no such codec"
    )
    one_line_error(capsys, ["compress", codec, im, "-o", im], "refusing to overwrite")
    one_line_error(
        capsys, ["compress", codec, im, "-o", str(tmp_path / "x.aez"), "--quality", "9"], "quality"
    )
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb)
    one_line_error(capsys, ["compress", codec, str(rgb), "-o", str(tmp_path / "x.aez")], "rgb.png", "RGB")
    np.save(tmp_path / "f.npy", np.zeros((2, 8, 8), np.float32))
    one_line_error(
        capsys, ["compress", codec, str(tmp_path / "f.npy"), "-o", str(tmp_path / "x.aez")], "8-bit"
    )
    assert not (tmp_path / "x.aez").exists()  # nothing half-written is left behind
    # a corrupted archive
    data = bytearray(arch.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad = tmp_path / "bad.aez"
    bad.write_bytes(bytes(data))
    one_line_error(capsys, ["decompress", str(bad), "-o", str(tmp_path / "o")], "bad.aez")
    one_line_error(
        capsys, ["decompress", str(tmp_path / "nope.aez"), "-o", str(tmp_path / "o")], "no such archive"
    )
    one_line_error(capsys, ["decompress", im, "-o", str(tmp_path / "o")], "im0.png")
    one_line_error(
        capsys, ["decompress", str(arch), "-o", str(arch.with_suffix(".npy")), "--model", im], "im0.png"
    )


def test_wrong_model_names_both_fingerprints(work, tmp_path, capsys):
    from aekit.codec.codec import ImageCodec

    other = tmp_path / "other.aek"
    argv = [
        "train",
        "--task",
        "compress",
        "--data",
        str(work / "train.npy"),
        "--out",
        str(other),
        "--seed",
        "7",
    ]
    assert main([*argv, "--runs", str(tmp_path / "runs"), "--quiet", *TINY]) == 0
    arch = tmp_path / "a.aez"
    assert main(["compress", str(work / "codec.aek"), str(work / "photos" / "im0.png"), "-o", str(arch)]) == 0
    mine, theirs = ImageCodec.load(work / "codec.aek"), ImageCodec.load(other)
    one_line_error(
        capsys,
        ["decompress", str(arch), "-o", str(tmp_path / "o"), "--model", str(other)],
        mine.fingerprint_.hex(),
        theirs.fingerprint_.hex(),
    )


def test_a_missing_recorded_codec_asks_for_model(work, tmp_path, capsys):
    moved = tmp_path / "gone.aek"
    moved.write_bytes((work / "codec.aek").read_bytes())
    arch = tmp_path / "a.aez"
    assert main(["compress", str(moved), str(work / "photos" / "im0.png"), "-o", str(arch)]) == 0
    moved.unlink()
    one_line_error(capsys, ["decompress", str(arch), "-o", str(tmp_path / "o")], "gone.aek", "--model")


def test_train_resume_without_a_checkpoint_is_one_line(work, tmp_path, capsys):
    argv = [
        "train",
        "--task",
        "compress",
        "--data",
        str(work / "train.npy"),
        "--out",
        str(tmp_path / "c.aek"),
        "--runs",
        str(tmp_path / "runs"),
    ]
    one_line_error(capsys, [*argv, "--resume", *TINY], "no checkpoint")  # a resumed run: test_codec_training


# -- hostile archives and odd names ------------------------------------------------------------------------


def _forge(work: Path, path: Path, items) -> Path:
    """An archive that names the work codec and carries its fingerprint: whatever items it is given."""
    from aekit.codec.codec import ImageCodec
    from aekit.codec.container import ArchiveWriter

    codec = ImageCodec.load(work / "codec.aek")
    with ArchiveWriter(path, codec.name_, codec.fingerprint_, {"codec": codec.name_}) as writer:
        for item in items:
            writer.add(item)
    return path


@pytest.mark.parametrize(
    "case, words",
    [
        ("one row of 16M pixels", ["pads to 4 x 16777216", "tiles of at most 4096 x 4096"]),
        ("4096 x 4096 lossless, 8 bytes", ["holds 8 bytes of coded data", "takes at least"]),
        ("2000 empty lossless items", ["item 0 of", "holds 0 bytes of coded data"]),
    ],
)
def test_hostile_archives_are_one_line_and_exit_2_quickly(work, tmp_path, capsys, case, words):
    import time

    from test_codec import HOSTILE

    arch = _forge(work, tmp_path / "x.aez", HOSTILE[case][0])
    t0 = time.perf_counter()
    one_line_error(capsys, ["decompress", str(arch), "-o", str(tmp_path / "out")], *words)
    assert time.perf_counter() - t0 < 3.0  # the codec file is loaded too
    assert not (tmp_path / "out").exists()
    one_line_error(capsys, ["decompress", str(arch), "-o", str(tmp_path / "out.npy")], *words)


def test_a_file_name_that_is_not_utf8_is_stored_escaped(work, tmp_path, capsys):
    import os

    folder = tmp_path / "odd"
    folder.mkdir()
    latin1 = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # 'café.png' written by a Latin-1 system
    Image.fromarray(_blobs(1, 8, 8)[0]).save(latin1, format="PNG")
    Image.fromarray(_blobs(1, 8, 8, seed=1)[0]).save(folder / "plain.png")
    arch = tmp_path / "odd.aez"
    assert main(["compress", str(work / "codec.aek"), str(folder), "-o", str(arch), "--quiet"]) == 0
    with ArchiveReader(arch) as r:
        assert [it.name for it in r] == ["caf\\xe9.png", "plain.png"]
    assert main(["decompress", str(arch), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["caf_.png", "plain.png"]
    # an .npy stack of such a name: the archive records its name, escaped the same way
    stack = os.path.join(os.fsencode(tmp_path), b"caf\xe9.npy")
    with open(stack, "wb") as f:
        np.save(f, _blobs(2, 8, 8))
    arch = tmp_path / "stack.aez"
    assert main(["compress", str(work / "codec.aek"), os.fsdecode(stack), "-o", str(arch), "--quiet"]) == 0
    with ArchiveReader(arch) as r:
        assert r.meta["source"] == "caf\\xe9.npy"


def test_stored_names_never_write_outside_the_output_folder(work, tmp_path, capsys):
    from aekit.codec.codec import ImageCodec

    codec = ImageCodec.load(work / "codec.aek")
    names = [
        "../../escape.png",
        "..\\..\\escape.png",
        "/tmp/absolute.png",
        "caf\\xe9.png",
        "\\x2e\\x2e/\\x2e\\x2e/escape.png",
        "..",
        "",
    ]
    items = codec.compress(_blobs(len(names), 8, 8), quality=1, names=names)
    arch = _forge(work, tmp_path / "names.aez", items)
    sandbox = tmp_path / "sandbox"
    out = sandbox / "a" / "b" / "out"
    out.parent.mkdir(parents=True)
    assert main(["decompress", str(arch), "-o", str(out), "--quiet"]) == 0
    written = sorted(p.relative_to(sandbox).as_posix() for p in sandbox.rglob("*") if p.is_file())
    assert len(written) == len(names) and all(w.startswith("a/b/out/") for w in written), written
    assert "a/b/out/caf_.png" in written and "a/b/out/item_00006.png" in written


def test_an_item_beyond_the_memory_budget_is_one_line_and_exit_2(work, tmp_path, capsys, monkeypatch):
    arch = tmp_path / "l.aez"
    im = str(work / "photos" / "im0.png")
    assert main(["compress", str(work / "codec.aek"), im, "-o", str(arch), "--lossless", "--quiet"]) == 0
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "1")
    one_line_error(
        capsys,
        ["decompress", str(arch), "-o", str(tmp_path / "out")],
        "item 0 of",
        "16 x 16 grayscale image coded lossless: decoding it takes about",
        "more than the budget of 1 MB (set by AEKIT_MEMORY_BUDGET_MB)",
    )
    one_line_error(
        capsys,
        ["compress", str(work / "codec.aek"), im, "-o", str(tmp_path / "x.aez"), "--lossless"],
        "im0.png: image 0 is a 16 x 16 grayscale image coded lossless: coding it takes about",
    )
