"""Per-image quality targets (``target_bpp``, ``target_psnr``, ``--target-bpp``, ``--target-psnr``) and the
codec's default quality."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.codec.codec import ImageCodec
from aekit.codec.container import ArchiveReader
from aekit.codec.targets import bits_per_pixel, first, psnr
from aekit.errors import ConfigError
from cli_helpers import one_line_error, run

# qualities 1-2: latent only (an untrained-ish latent: tiny files, low PSNR); 3-6: pixels in bins of 16, 8,
# 4, 2. On these images the sizes tie and even fall between neighbours (quality 2 < quality 1 on some),
# so the search meets a ladder that is not strictly monotone.
QUALITIES = [(0, 0), (1, 0), (0, 16), (0, 8), (1, 4), (0, 2)]
N = len(QUALITIES)


def _blobs(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w))
    for i in range(n):
        for _ in range(2):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * rng.uniform(0.5, 1.0)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec(
        hidden=8,
        latent=4,
        stages=2,
        pixel_width=8,
        pixel_layers=2,
        pixel_mixtures=2,
        batch_size=8,
        lambdas=(0.01, 0.2),
        qualities=QUALITIES,
        pixel_train_bins=(1, 2, 4, 8, 16),
        steps=10,
        random_state=0,
    ).fit(_blobs(24, 16, 16))


@pytest.fixture(scope="module")
def pictures() -> list[np.ndarray]:
    return [_blobs(1, 16, 16, seed=5)[0], _blobs(1, 13, 7, seed=6)[0], _blobs(1, 12, 20, seed=7)[0]]


@pytest.fixture(scope="module")
def ladders(codec, pictures) -> list[list[tuple[float, float, bytes]]]:
    """Per picture, per quality 1..N: (bits per pixel, decoded PSNR, payload) of an ordinary encode."""
    out = []
    for image in pictures:
        items = [codec.compress([image], quality=q)[0] for q in range(1, N + 1)]
        out.append([(bits_per_pixel(it), psnr(image, codec.decode(it)), it.payload) for it in items])
    return out


def _targets(ladders: list[list[tuple[float, float, bytes]]], column: int) -> list[float]:
    """Targets around the measured values: beyond both ends, two ties with the first picture's values
    (a target met exactly counts as met) and a value between two of them. The bisection itself is tested
    on every ladder above; encoding (and decoding) is what these cost."""
    values = [row[column] for ladder in ladders for row in ladder if math.isfinite(row[column])]
    first_picture = [row[column] for row in ladders[0]]
    ties = [first_picture[1], first_picture[3]]
    return [min(values) / 2, *ties, (first_picture[3] + first_picture[4]) / 2, max(values) * 2]


def _with_default(codec: ImageCodec, quality: int | None, path: Path) -> ImageCodec:
    """A copy of ``codec`` (through ``path``) whose network names ``quality`` as its default."""
    codec.save(path)
    copy = ImageCodec.load(path)
    copy.net_.config.default_quality = quality
    copy.save(path)
    return ImageCodec.load(path)


# -- the bisection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 9))
def test_first_bisects_a_monotone_ladder_in_log2_steps(n):
    for threshold in range(1, n + 2):
        asked: list[int] = []
        assert first(lambda q, t=threshold, asked=asked: asked.append(q) or q >= t, n) == threshold
        assert len(asked) == len(set(asked)) <= math.ceil(math.log2(n + 1))


@pytest.mark.parametrize("n", range(1, 7))
def test_first_finds_a_boundary_on_any_ladder(n):
    for holds in itertools.product([False, True], repeat=n):
        truth = (False, *holds, True)  # taken as False at 0 and True at n + 1
        q = first(lambda k, truth=truth: truth[k], n)
        assert truth[q] and not truth[q - 1]


# -- the API ------------------------------------------------------------------------------------------------


def test_target_bpp_picks_the_highest_quality_within_it(codec, pictures, ladders):
    for x in _targets(ladders, 0):
        items = codec.compress(pictures, target_bpp=x)
        for item, ladder in zip(items, ladders, strict=True):
            q = item.quality
            assert item.payload == ladder[q - 1][2]  # the item is the ordinary encode at that quality
            if bits_per_pixel(item) > x:  # no quality the search tried fits: the smallest is given
                assert q == 1
            else:
                assert q == N or ladder[q][0] > x  # quality + 1 would break the target


def test_target_psnr_picks_the_lowest_quality_that_reaches_it(codec, pictures, ladders):
    for d in _targets(ladders, 1):
        items = codec.compress(pictures, target_psnr=d)
        decoded = codec.decompress(items)  # sizes differ: a list, as the decoder gives them
        for item, image, back, ladder in zip(items, pictures, decoded, ladders, strict=True):
            q = item.quality
            assert item.payload == ladder[q - 1][2]
            if psnr(image, back) < d:  # no quality the search tried reaches it: the best is given
                assert q == N
            else:
                assert q == 1 or ladder[q - 2][1] < d  # quality - 1 would miss the target


def test_the_search_encodes_log2_of_the_ladder_per_image(codec, pictures, ladders, monkeypatch):
    calls = {"encode": 0, "decode": 0}
    for name, key in (("_encode_group", "encode"), ("_decode_group", "decode")):
        original = getattr(ImageCodec, name)

        def counted(self, *args, _original=original, _key=key, **kwargs):
            calls[_key] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ImageCodec, name, counted)
    steps = math.ceil(math.log2(N + 1))
    codec.compress(pictures, target_bpp=ladders[0][2][0])
    assert calls == {"encode": steps * len(pictures), "decode": 0}
    codec.compress(pictures, target_psnr=30.0)
    assert calls == {"encode": 2 * steps * len(pictures), "decode": steps * len(pictures)}


def test_compress_to_with_a_target_writes_the_same_items(codec, pictures, ladders, tmp_path):
    x = ladders[0][3][0]
    items = codec.compress(pictures, target_bpp=x)
    path = tmp_path / "t.aez"
    codec.compress_to(path, iter(pictures), target_bpp=x)
    with ArchiveReader(path) as reader:
        assert [(it.quality, it.payload) for it in reader] == [(it.quality, it.payload) for it in items]
    for a, b in zip(codec.decompress(path), codec.decompress(items), strict=True):
        assert np.array_equal(a, b)


def test_refine_with_a_target_refines_the_lossy_qualities_it_tries(codec, pictures, ladders):
    # the search tries near-lossless quality 3 (where refine does not apply: no error), then lossy ones
    x = max(ladders[0][0][0], ladders[0][1][0])
    item = codec.compress(pictures[:1], target_bpp=x, refine=1)[0]
    assert item.quality <= 2 and (bits_per_pixel(item) <= x or item.quality == 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target_bpp=1.0, target_psnr=30.0), "give one of them"),
        (dict(target_bpp=1.0, lossless=True), "lossless=True"),
        (dict(target_psnr=30.0, quality=3), "quality=3 fixes every image's quality"),
        (dict(target_bpp=0), "above 0"),
        (dict(target_bpp=-1.0), "above 0"),
        (dict(target_psnr=float("nan")), "finite"),
        (dict(target_psnr=float("inf")), "finite"),
        (dict(target_bpp="0.5"), "must be a number"),
        (dict(target_bpp=True), "must be a number"),
    ],
)
def test_bad_targets_say_what_to_fix_and_write_nothing(codec, pictures, kwargs, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        codec.compress(pictures, **kwargs)
    with pytest.raises(ConfigError, match=match):
        codec.compress_to(tmp_path / "x.aez", pictures, **kwargs)
    assert not (tmp_path / "x.aez").exists()


def test_the_default_quality_is_the_networks_else_the_best(codec, pictures, tmp_path):
    best = _with_default(codec, None, tmp_path / "b.aek")
    assert best.default_quality == N
    assert {it.quality for it in best.compress(pictures)} == {N}
    chosen = _with_default(codec, 2, tmp_path / "c.aek")
    assert chosen.default_quality == 2
    assert {it.quality for it in chosen.compress(pictures)} == {2}
    assert {it.quality for it in chosen.compress(pictures, quality=5)} == {5}
    chosen.compress_to(tmp_path / "d.aez", pictures)
    with ArchiveReader(tmp_path / "d.aez") as reader:
        assert {it.quality for it in reader} == {2}


# -- the command line ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(codec, pictures, tmp_path_factory) -> Path:
    """codec.aek, default2.aek (default quality 2), best.aek (none) and the pictures as PNGs."""
    root = tmp_path_factory.mktemp("codec-target")
    codec.save(root / "codec.aek")
    _with_default(codec, 2, root / "default2.aek")
    _with_default(codec, None, root / "best.aek")
    (root / "photos").mkdir()
    for k, image in enumerate(pictures):
        Image.fromarray(image).save(root / "photos" / f"im{k}.png")
    return root


def _qualities(path: Path) -> list[int]:
    with ArchiveReader(path) as reader:
        return [item.quality for item in reader]


def _compress(capsys, work: Path, out: str, *options) -> str:
    argv = ["compress", work / "codec.aek", work / "photos", "-o", work / out, *options]
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    return stdout


def test_cli_target_bpp_says_the_qualities_chosen(work, codec, pictures, ladders, capsys):
    x = ladders[0][3][0]
    stdout = _compress(capsys, work, "bpp.aez", "--target-bpp", x)
    expected = [it.quality for it in codec.compress(pictures, target_bpp=x)]  # photos/: im0, im1, im2
    assert _qualities(work / "bpp.aez") == expected
    low, high = min(expected), max(expected)
    span = f"quality {low}" if low == high else f"qualities {low}-{high}"
    assert f"target {x:g} bpp: {span}, mean {sum(expected) / len(expected):.1f}" in stdout


def test_cli_target_psnr_decodes_what_it_picks(work, ladders, capsys):
    d = min(p for ladder in ladders for _, p, _ in ladder) / 2  # every quality reaches it: quality 1
    stdout = _compress(capsys, work, "psnr.aez", "--target-psnr", d)
    assert _qualities(work / "psnr.aez") == [1, 1, 1]
    assert f"target {d:g} dB PSNR: quality 1, mean 1.0" in stdout


def test_cli_says_when_a_bpp_target_is_out_of_reach(work, capsys):
    stdout = _compress(capsys, work, "low.aez", "--target-bpp", 0.01)
    assert _qualities(work / "low.aez") == [1, 1, 1]
    assert "3 image(s) above the target even at quality 1" in stdout


@pytest.mark.parametrize(
    "options, words",
    [
        (["--target-bpp", "0"], ["--target-bpp", "> 0"]),
        (["--target-bpp", "nan"], ["--target-bpp", "finite"]),
        (["--target-psnr", "-3"], ["--target-psnr", "> 0"]),
        (["--target-bpp", "1", "--target-psnr", "30"], ["give one of them"]),
        (["--target-bpp", "1", "--quality", "3"], ["--target-bpp", "--quality"]),
        (["--target-psnr", "30", "--lossless"], ["--target-psnr", "--lossless"]),
    ],
)
def test_cli_bad_targets_are_one_line_and_write_nothing(work, capsys, options, words):
    out = work / "bad.aez"
    one_line_error(capsys, ["compress", work / "codec.aek", work / "photos", "-o", out, *options], *words)
    assert not out.exists()


def test_cli_uses_the_codecs_default_quality(work, capsys):
    for model, quality in (("best.aek", N), ("default2.aek", 2)):
        out = work / f"default-{quality}.aez"
        code, stdout, err = run(capsys, "compress", work / model, work / "photos", "-o", out)
        assert code == 0, err
        assert _qualities(out) == [quality] * 3 and f"quality {quality}," in stdout
