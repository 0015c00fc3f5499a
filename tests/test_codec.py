"""The learned codec: entropy model, range coding, lossless/near-lossless/lossy round trips, files, errors."""

from __future__ import annotations

import hashlib
import textwrap
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.codec import CodecNet, CodecNetConfig, EntropyBottleneck, RateDistortion, limits
from aekit.codec.codec import ImageCodec, fingerprint, psnr
from aekit.codec.coding import (
    StreamDecoder,
    StreamEncoder,
    alphabet_bits,
    fixed_model,
    least_bits,
    least_payload,
)
from aekit.codec.container import ArchiveReader, ArchiveWriter, Item
from aekit.codec.fitting import DENSITY_LR
from aekit.codec.network import GDN
from aekit.codec.pixels import GROUP_PARITY, bin_values, binned, group_map, value_pmf
from aekit.codec.training import objective, rd_loss
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.training import TrainConfig, Trainer

TINY = dict(hidden=8, latent=4, stages=2, pixel_width=8, pixel_layers=2, pixel_mixtures=2, batch_size=8)
# quality 1-2: latent only; 3: latent + pixels in bins of 5 (max error 4); 4: bins of 2
QUALITIES = [(0, 0), (2, 0), (1, 5), (2, 2)]


def _blobs(n: int, h: int, w: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Smooth random images with flat black backgrounds, a little like scans: (n, h, w[, 3]) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w, channels))
    for i in range(n):
        for _ in range(2):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(
                0.5, 1.0, channels
            )
    img = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return _blobs(40, 16, 16)


@pytest.fixture(scope="module")
def codec(images) -> ImageCodec:
    return ImageCodec(
        **TINY,
        lambdas=(0.01, 0.05, 0.2),
        qualities=QUALITIES,
        pixel_train_bins=(1, 2, 5),
        steps=20,
        random_state=0,
    ).fit(images)


def _test_images() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [
        _blobs(1, 16, 16, seed=5)[0],
        _blobs(1, 13, 7, seed=6)[0],  # needs padding on both axes
        np.zeros((5, 9), np.uint8),
        np.full((4, 4), 255, np.uint8),
        rng.integers(0, 256, (6, 11), dtype=np.uint8),  # noise: nothing to predict
        np.zeros((1, 1), np.uint8),
    ]


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()).hexdigest()


# -- the pieces -------------------------------------------------------------------------------------------


def test_gdn_normalises_and_its_inverse_multiplies():
    x = torch.randn(2, 4, 5, 5)
    gdn, igdn = GDN(4), GDN(4, inverse=True)
    y = gdn(x)
    norm = torch.sqrt(
        gdn.beta.abs().view(1, -1, 1, 1) + 1e-6 + torch.einsum("ij,bjhw->bihw", gdn.gamma.abs(), x * x)
    )
    assert torch.allclose(y, x / norm, atol=1e-6)
    assert torch.allclose(igdn(x), x * norm, atol=1e-5)
    # parameters stay usable after a gradient step pushes them negative: they enter through abs
    with torch.no_grad():
        gdn.beta.fill_(-1.0)
    assert torch.isfinite(gdn(x)).all()


def test_entropy_bottleneck_is_a_distribution_and_its_tables_cover_it():
    eb = EntropyBottleneck(3)
    grid = torch.arange(-200, 201, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    p = eb.likelihood(grid)  # (1, 3, 401, 1)
    assert torch.allclose(p.sum(dim=2), torch.ones(1, 3, 1), atol=1e-3)
    eb.update_tables()
    assert eb.pmfs.dtype == torch.float64 and eb.pmfs.shape[0] == 3
    assert torch.allclose(eb.pmfs.sum(dim=1), torch.ones(3, dtype=torch.float64))
    y = torch.tensor([[[[-1e6]], [[0.0]], [[1e6]]]])  # far outside the range: clamped, never an error
    s = eb.symbols(y)
    assert s.min() >= 0 and (s[0, :, 0, 0] < eb.lengths.numpy()).all()
    assert eb.values(s)[0, 1, 0, 0] == 0.0
    noisy, lik = eb(torch.zeros(2, 3, 4, 4), training=True)
    assert not torch.equal(noisy, torch.zeros_like(noisy)) and (lik > 0).all()
    rounded, _ = eb(torch.full((1, 3, 2, 2), 0.4), training=False)
    assert torch.equal(rounded, torch.zeros_like(rounded))


def test_a_channel_with_one_value_codes_and_decodes():
    # training can switch a latent channel off: all its mass on one value, a one-entry table
    enc = StreamEncoder()
    enc.encode_iid(np.zeros(7, np.int64), fixed_model(np.array([1.0])))
    enc.encode_iid(np.array([1, 0, 1]), fixed_model(np.array([0.5, 0.5])))
    dec = StreamDecoder(enc.finish())
    assert np.array_equal(dec.decode_iid(fixed_model(np.array([1.0])), 7), np.zeros(7))
    assert np.array_equal(dec.decode_iid(fixed_model(np.array([0.5, 0.5])), 3), [1, 0, 1])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(2, 12), st.floats(0.05, 3.0)), min_size=1, max_size=3),
    st.integers(0, 2**31 - 1),
)
def test_range_coding_round_trips_every_block_and_trims_exactly(blocks, seed):
    rng = np.random.default_rng(seed)
    enc, coded, info = StreamEncoder(), [], 0.0
    for n, alphabet, concentration in blocks:
        p = rng.dirichlet(np.full(alphabet, concentration), size=n)
        s = np.array([rng.choice(alphabet, p=row) for row in p], dtype=np.int64)
        enc.encode(s, p)
        coded.append((s, p))
        info += float(-np.log2(np.maximum(p[np.arange(n), s], 1e-12)).sum()) if n else 0.0
    # an i.i.d. block under one fixed model (how latent channels are coded) in the same stream
    table = rng.dirichlet(np.ones(5))
    iid = rng.choice(5, size=int(rng.integers(0, 40)), p=table)
    enc.encode_iid(iid, fixed_model(table))
    info += float(-np.log2(table[iid]).sum())
    data = enc.finish()
    dec = StreamDecoder(data)
    for s, p in coded:
        assert np.array_equal(dec.decode(p), s)
    assert np.array_equal(dec.decode_iid(fixed_model(table), len(iid)), iid)
    # the trimmed stream is within a few bytes of the information content (plus fixed-point rounding)
    assert len(data) <= info / 8 * 1.02 + 6


def test_a_damaged_stream_is_a_data_error_or_other_symbols_never_a_crash():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), size=50)
    s = np.array([rng.choice(6, p=row) for row in p])
    enc = StreamEncoder()
    enc.encode(s, p)
    data = bytearray(enc.finish())
    for k in range(len(data)):
        bad = bytearray(data)
        bad[k] ^= 0xFF
        try:
            out = StreamDecoder(bytes(bad)).decode(p)
        except DataError:
            continue
        assert out.shape == s.shape and out.min() >= 0 and out.max() < 6


def test_pixel_groups_and_pmfs():
    g = group_map(4, 6)
    for k, (pr, pc) in enumerate(GROUP_PARITY):
        assert (g[pr::2, pc::2] == k).all()
    params = torch.tensor(
        [[0.0, 0.0, 0.2, 0.8, -3.0, -5.0], [1.0, -2.0, 0.0, 1.0, -6.0, -6.0]]
    )  # (2, 3K), K=2
    pmf = value_pmf(params, 2)
    assert pmf.shape == (2, 256) and np.allclose(pmf.sum(axis=1), 1.0)
    assert pmf[1, 0] > 0.5 * np.exp(-2) / (1 + np.exp(-2))  # the tail below 0 lands in the bin of value 0
    mass = binned(pmf, 5)
    assert mass.shape == (2, 52) and np.allclose(mass.sum(axis=1), 1.0)
    assert np.allclose(value_pmf(params, 2, 5), mass, atol=1e-6)  # bins straight from the mixture
    lo = np.arange(0, 256, 5)
    for hist in (None, np.bincount([0, 0, 0, 255, 7, 7], minlength=256)):
        value = bin_values(5, hist)
        assert ((value >= lo) & (value <= np.minimum(lo + 4, 255))).all()
    assert bin_values(5, np.bincount([0, 0, 0, 4], minlength=256))[0] == 1  # (0+0+0+4)/4
    assert list(bin_values(5)[:2]) == [2, 7]  # uniform: the centres


# -- the estimator -----------------------------------------------------------------------------------------


def test_lossless_round_trip_is_bit_exact_on_every_test_image(codec):
    tests = _test_images()
    items = codec.compress(tests, lossless=True)
    assert all(it.lossless and it.quality == 0 and it.dtype == "uint8" for it in items)
    out = codec.decompress(items)
    assert [_sha(a) for a in out] == [_sha(a) for a in tests]
    # one item alone decodes the same as inside a batch, and on a different thread count
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _sha(codec.decode(items[1])) == _sha(tests[1])
    finally:
        torch.set_num_threads(before)


def test_items_coded_in_a_batch_decode_alone_and_in_any_company(codec):
    """Same-shape images share network passes (a coding batch of 16 places); each item's probabilities
    must not depend on its batch-mates, or decoding one item alone would fail."""
    x = _blobs(21, 12, 12, seed=11)
    for quality, lossless in ((4, False), (3, False), (1, True)):
        items = codec.compress(x, quality=quality, lossless=lossless)
        together = codec.decompress(items)
        alone = np.stack([codec.decode(it) for it in items])
        shuffled = codec.decompress([items[k] for k in (20, 3, 17, 0)])
        assert np.array_equal(together, alone)
        assert np.array_equal(shuffled, together[[20, 3, 17, 0]])
        if lossless:
            assert np.array_equal(together, x)


def test_lossless_rgb_round_trip_is_bit_exact():
    rgb = _blobs(12, 8, 8, channels=3)
    c = ImageCodec(**TINY, lambdas=(0.05,), steps=5, random_state=0).fit(rgb)
    tests = [rgb[0], _blobs(1, 5, 7, seed=3, channels=3)[0]]
    out = c.decompress(c.compress(tests, lossless=True))
    assert [_sha(a) for a in out] == [_sha(a) for a in tests]
    lossy = c.decompress(c.compress(rgb[:2], quality=1))
    assert lossy.shape == (2, 8, 8, 3) and lossy.dtype == np.uint8


def test_near_lossless_qualities_bound_the_error(codec):
    tests = _test_images()
    for quality, bins in ((3, 5), (4, 2)):
        out = codec.decompress(codec.compress(tests, quality=quality))
        for a, b in zip(tests, out, strict=True):
            assert a.shape == b.shape
            assert np.abs(a.astype(int) - b.astype(int)).max() <= bins - 1


def test_lossy_qualities_give_images_of_the_input_shape_deterministically(codec, images):
    test = images[:6]
    sizes = []
    for q in (1, 2):
        items = codec.compress(test, quality=q)
        again = codec.compress(test, quality=q)
        assert [i.payload for i in items] == [i.payload for i in again]
        out = codec.decompress(items)
        assert out.shape == test.shape and out.dtype == np.uint8
        assert all(it.padding == (0, 0) and it.quality == q for it in items)
        sizes.append(sum(len(i.payload) for i in items))
    odd = codec.compress(np.zeros((10, 7), np.uint8), quality=1)[0]
    assert odd.padding == (2, 1) and codec.decode(odd).shape == (10, 7)


def test_fit_is_reproducible_and_training_lowers_the_loss(images):
    a = ImageCodec(**TINY, lambdas=(0.05,), steps=12, random_state=3).fit(images)
    b = ImageCodec(**TINY, lambdas=(0.05,), steps=12, random_state=3).fit(images)
    assert a.fingerprint_ == b.fingerprint_ and len(a.fingerprint_) == 16
    c = ImageCodec(**TINY, lambdas=(0.05,), steps=12, random_state=4).fit(images)
    assert c.fingerprint_ != a.fingerprint_
    x = torch.from_numpy(images[:16]).float().div(255).unsqueeze(1)
    net = CodecNet(CodecNetConfig(hidden=8, latent=4, stages=2, lambdas=(0.05,), pixel_width=8))

    def loss() -> float:
        torch.manual_seed(0)  # the same quantisation noise before and after
        net.train()
        with torch.no_grad():
            return float(rd_loss(net, x, 0, torch.zeros(16, dtype=torch.int64))["loss"])

    before = loss()
    # the network with its loss on the shared trainer, as fit trains it: 30 steps of the 16 images
    config = TrainConfig(
        epochs=30, batch_size=16, lr=3e-3, patience=None, objective=objective, clip_grad_norm=1.0,
        lr_scales=DENSITY_LR,
    )  # fmt: skip
    Trainer(config).fit(RateDistortion(net), x)
    assert loss() < 0.8 * before


def test_fit_refreshes_the_coding_tables():
    net = CodecNet(CodecNetConfig(hidden=4, latent=2, stages=1, lambdas=(0.1, 0.3), pixel_width=4))
    before = net.bottlenecks[0].pmfs.shape
    codec = ImageCodec(hidden=4, latent=2, stages=1, pixel_width=4, lambdas=(0.1, 0.3), steps=3, batch_size=4)
    codec.fit(np.random.default_rng(0).integers(0, 256, (8, 8, 8), dtype=np.uint8))
    assert not codec.net_.training and len(codec.history_) == 1
    assert codec.net_.bottlenecks[0].pmfs.shape != before  # tables sized to the trained densities


def test_save_load_round_trip_float32_and_float16(codec, images, tmp_path):
    path = tmp_path / "c.aek"
    codec.save(path)
    loaded = ImageCodec.load(path)
    assert loaded.fingerprint_ == codec.fingerprint_ and loaded.name_ == str(path.resolve())
    items = codec.compress(images[:3], lossless=True)
    assert _sha(loaded.decompress(items)) == _sha(images[:3])
    assert loaded.get_params()["qualities"] == [list(q) for q in QUALITIES]
    half = ImageCodec(**TINY, lambdas=(0.05,), steps=3, random_state=0).fit(images)
    half.save(tmp_path / "h.aek", weights="float16")
    again = ImageCodec.load(tmp_path / "h.aek")
    assert again.fingerprint_ == half.fingerprint_ == fingerprint(again.net_)
    assert (tmp_path / "h.aek").stat().st_size < path.stat().st_size
    arch = tmp_path / "a.aez"
    half.compress_to(arch, images[:2], quality=1)
    assert again.decompress(arch).shape == (2, 16, 16)


def test_archives_refuse_another_model_naming_both_fingerprints(codec, images, tmp_path):
    arch = tmp_path / "x.aez"
    size = codec.compress_to(arch, list(images[:3]), quality=2, codec_name="mine", meta={"k": 1})
    assert size == arch.stat().st_size
    with ArchiveReader(arch) as r:
        assert r.codec_name == "mine" and r.meta == {"k": 1} and len(r) == 3
        assert r.fingerprint == codec.fingerprint_
    other = ImageCodec(**TINY, lambdas=(0.05,), steps=2, random_state=9).fit(images)
    with pytest.raises(DataError, match=codec.fingerprint_.hex()) as info:
        other.decompress(arch)
    assert other.fingerprint_.hex() in str(info.value) and "mine" in str(info.value)


def test_damaged_files_are_model_file_errors(codec, tmp_path):
    path = tmp_path / "c.aek"
    codec.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    (tmp_path / "bad.aek").write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        ImageCodec.load(tmp_path / "bad.aek")
    with pytest.raises(ModelFileError, match="no such"):
        ImageCodec.load(tmp_path / "missing.aek")


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((2, 8, 8, 3), np.uint8), "RGB"),
        (np.zeros((2, 8, 8), np.float32), "8-bit"),
        (np.full((2, 8, 8), 300, np.int64), "8-bit"),
        (np.full((2, 8, 8), -1, np.int64), "8-bit"),
        ([], "no images"),
        (np.zeros((0, 8, 8), np.uint8), "shape"),
        (np.zeros((2, 3, 8, 8, 1), np.uint8), "shape"),
    ],
)
def test_bad_images_say_what_to_fix(codec, data, match):
    with pytest.raises(DataError, match=match):
        codec.compress(data, quality=1)


def test_integer_images_in_range_are_accepted(codec):
    x = np.arange(64, dtype=np.int64).reshape(8, 8) * 3
    out = codec.decompress(codec.compress(x, lossless=True))
    assert np.array_equal(out[0], x.astype(np.uint8))


@pytest.mark.parametrize("quality", [0, 5, 2.5, True, "8"])
def test_bad_quality_says_the_range(codec, images, quality):
    with pytest.raises(ConfigError, match="from 1"):
        codec.compress(images[:1], quality=quality)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(stages=2, crop=30), "multiple"),
        (dict(lambdas=(0.1, -1.0)), "lambdas"),
        (dict(qualities=[(9, 0)]), "quality 1"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_settings_say_what_to_fix(images, params, match):
    with pytest.raises(ConfigError, match=match):
        ImageCodec(**{**TINY, **params, "steps": 1}).fit(images)


def test_items_that_do_not_fit_the_codec_are_refused(codec):
    good = codec.compress(np.zeros((8, 8), np.uint8), quality=1)[0]
    cases = [
        (Item((8, 8, 3), "uint8", (0, 0), 1, False, good.payload), "RGB"),
        (Item((8, 8), "float32", (0, 0), 1, False, good.payload), "not an image"),
        (Item((8, 8), "uint8", (1, 0), 1, False, good.payload), "padding"),
        (Item((8, 8), "uint8", (0, 0), 9, False, good.payload), "quality 9"),
        # a hostile header: 30000 x 30000 pixels from a few bytes is refused before anything is allocated
        (Item((30000, 30000), "uint8", (0, 0), 1, False, good.payload), "tiles of at most 4096"),
    ]
    for item, match in cases:
        with pytest.raises(DataError, match=match):
            codec.decode(item)


def test_images_too_large_for_one_piece_are_refused_when_compressing(codec):
    with pytest.raises(DataError, match="tiles of at most 4096"):
        codec.compress(np.zeros((4097, 4097), np.uint8), quality=1)


def _payload_fuzz(max_examples: int):
    """Random damage to a real item's payload (the archive's CRC would catch it; here the codec sees it)."""

    @settings(max_examples=max_examples, deadline=None, derandomize=True)
    @given(data=st.data())
    def check(codec, items, data):
        item = items[data.draw(st.integers(0, len(items) - 1))]
        payload = bytearray(item.payload)
        for _ in range(data.draw(st.integers(1, 4))):
            if payload and data.draw(st.booleans()):
                payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
            else:
                payload = payload[: data.draw(st.integers(0, len(payload)))]
        bad = Item(item.shape, item.dtype, item.padding, item.quality, item.lossless, bytes(payload))
        try:
            out = codec.decode(bad)
        except DataError:
            return
        assert out.shape == tuple(item.shape) and out.dtype == np.uint8

    return check


def _fuzz_items(codec) -> list:
    images = [im for im in _test_images() if im.size > 1][:3]
    return [codec.compress(im, quality=q)[0] for im in images for q in (1, 3)] + [
        codec.compress(images[0], lossless=True)[0]
    ]


def test_decoding_damaged_payloads_gives_an_image_or_a_data_error_never_a_crash(codec):
    _payload_fuzz(60)(codec, _fuzz_items(codec))


@pytest.mark.slow
def test_decoding_damaged_payloads_with_a_big_budget(codec):
    _payload_fuzz(3000)(codec, _fuzz_items(codec))


def test_psnr_helper():
    a = np.zeros((4, 4), np.uint8)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, a + 1) - 48.1308) < 1e-3


def test_long_streams_are_kept_whole_and_round_trip():
    rng = np.random.default_rng(2)
    p = np.full((6000, 256), 1 / 256)
    s = rng.integers(0, 256, 6000)
    enc = StreamEncoder()
    enc.encode(s, p)
    data = enc.finish()
    assert len(data) % 4 == 0 and len(data) >= 6000  # 8 bits per symbol, no trimming above 4 KB
    assert np.array_equal(StreamDecoder(data).decode(p), s)


# -- hostile files: what an item declares is bounded by what its payload can honestly hold -----------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 300), st.integers(0, 5000), st.floats(-3, 1), st.booleans(), st.booleans()),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 2**31 - 1),
)
def test_least_payload_is_a_lower_bound_on_what_the_encoder_writes(blocks, seed):
    """The payload check refuses what is shorter than ``least_payload``; an honest stream never is, even
    one of nothing but the likeliest symbols (the bound is tight there)."""
    rng = np.random.default_rng(seed)
    enc, bits = StreamEncoder(), 0.0
    for alphabet, n, log_concentration, iid, likeliest in blocks:
        if iid:
            table = rng.dirichlet(np.full(alphabet, 10.0**log_concentration))
            s = np.full(n, table.argmax()) if likeliest else rng.choice(alphabet, n, p=table)
            enc.encode_iid(s, fixed_model(table))
            bits += n * least_bits(table[None])[0]
        else:
            rows = rng.dirichlet(np.full(max(alphabet, 2), 10.0**log_concentration), size=min(n, 500))
            s = rows.argmax(1) if likeliest else np.array([rng.choice(len(r), p=r) for r in rows])
            enc.encode(s, rows)
            bits += least_bits(rows).sum()
            assert (least_bits(rows) >= alphabet_bits(rows.shape[1])).all()
    assert len(enc.finish()) >= least_payload(bits)


def _lossless(shape, payload=b"") -> Item:
    return Item(shape, "uint8", (-shape[0] % 4, -shape[1] % 4), 0, True, payload)


HOSTILE = {
    # a 71-byte file's one item: 16,777,216 pixels passed a check of height x width, but the stride pads
    # the row to 4 (16 for the photo codec): 4 x 16,777,216 pixels, GBs of activations
    "one row of 16M pixels": ([Item((1, 1 << 24), "uint8", (3, 0), 1, False, b"\x00" * 8)], "pads to 4 x"),
    # a 70-byte file's lossless 4096 x 4096 item: > 8 GB to decode, from 8 bytes of payload
    "4096 x 4096 lossless, 8 bytes": ([_lossless((4096, 4096), b"\x01" * 8)], "holds 8 bytes of coded data"),
    # a 10 kB file of 2,000 empty lossless items: minutes of pixel-head passes for nothing
    "2000 empty lossless items": ([_lossless((256, 256))] * 2000, "holds 0 bytes of coded data"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_items_fail_fast_with_one_data_error(codec, case, tmp_path):
    items, match = HOSTILE[case]
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=match):
        codec.decompress(items)
    path = tmp_path / "x.aez"
    with ArchiveWriter(path, "tiny", codec.fingerprint_, {}) as writer:
        for item in items:
            writer.add(item)
    with pytest.raises(DataError, match=f"item 0 of {path}.*{match}"):
        codec.decompress(path)
    assert time.perf_counter() - t0 < 2.0


def test_the_payload_check_names_the_size_and_the_least_length(codec):
    item = _lossless((4096, 4096), b"\x01" * 8)
    least = codec._least_payload(*codec._mode(0, True), 4096, 4096, 1)
    assert least > 1 << 20  # ~20 bits per latent position, (4096 / 4)**2 positions
    with pytest.raises(
        DataError, match=f"a 4096 x 4096 grayscale image coded lossless takes at least {least:,}"
    ):
        codec.decode(item)
    # what the encoder writes is never refused, in any mode or at any size
    for image in _test_images() + [_blobs(1, 40, 60, seed=4)[0]]:
        for quality, lossless in ((1, False), (3, False), (4, False), (1, True)):
            real = codec.compress(image, quality=quality, lossless=lossless)[0]
            level, bins = codec._mode(real.quality, real.lossless)
            assert len(real.payload) >= codec._least_payload(level, bins, *image.shape[:2], 1)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    height=st.integers(1, 4096) | st.sampled_from([1, 4095, 4096, 4097]),
    width=st.integers(1, 1 << 15) | st.sampled_from([1, 1 << 12, (1 << 24) - 1, 1 << 24]),
    mode=st.sampled_from([(1, False), (2, False), (3, False), (4, False), (0, True)]),
    payload=st.binary(max_size=300),
)
def test_fuzz_large_declared_sizes_fail_fast_or_decode(codec, height, width, mode, payload):
    """Any size within the format's limits, any mode, a short random payload: one DataError or an image,
    quickly. The least-payload bound is what keeps it quick: 300 bytes can only honestly hold a small
    image, and only a small image gets as far as the network."""
    quality, lossless = mode
    item = Item((height, width), "uint8", (-height % 4, -width % 4), quality, lossless, payload)
    t0 = time.perf_counter()
    try:
        out = codec.decode(item)
    except DataError:
        pass
    else:
        assert out.shape == (height, width) and out.dtype == np.uint8 and height * width <= 4096
    assert time.perf_counter() - t0 < 1.0


def test_decoding_beyond_the_memory_budget_is_refused_naming_both(codec, monkeypatch, tmp_path):
    image = _blobs(1, 64, 64, seed=2)[0]
    item = codec.compress(image, lossless=True)[0]
    lossy = codec.compress(image, quality=1)[0]
    config, size = codec.net_.config, codec._coding_batch((64, 64))
    # 80 MB: more than the latent alone takes (64 MB of working space and a little), less than the pixels
    assert (
        limits.decode_memory(config, 64, 64, size, 1, 0)
        < 80 << 20
        < limits.decode_memory(config, 64, 64, size, 1, 1)
    )
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "80")
    with pytest.raises(
        DataError, match=r"item is a 64 x 64 grayscale image coded lossless: decoding it takes about"
    ):
        codec.decode(item)
    with pytest.raises(
        DataError, match=r"\d+ MB of memory at its peak, more than the budget of 80 MB \(set by AEKIT_M"
    ):
        codec.decode(item)
    with pytest.raises(
        DataError, match="image 0 is a 64 x 64 grayscale image coded lossless: coding it takes about"
    ):
        codec.compress(image, lossless=True)
    assert codec.decode(lossy).shape == (64, 64)
    # decompress() returns every image at once (and stacks them): that is checked before anything is decoded
    path = tmp_path / "a.aez"
    codec.compress_to(path, np.zeros((1000, 8, 8), np.uint8), quality=1)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET_MB", "0.1")
    with pytest.raises(
        DataError, match=r"decompressing all of .*a.aez at once \(64,000 pixel values.*decode_stream"
    ):
        codec.decompress(path)
    monkeypatch.delenv("AEKIT_MEMORY_BUDGET_MB")
    assert limits.memory_budget() > 1 << 20  # half of what the machine has


@pytest.mark.parametrize("kernel, stages", [(5, 2), (7, 3), (3, 1)])
def test_lossy_tiles_decode_what_one_whole_pass_decodes(monkeypatch, kernel, stages):
    """Tiles overlap by ``halo`` latent positions: enough for every transposed convolution's reach."""
    torch.manual_seed(0)
    config = CodecNetConfig(hidden=8, latent=4, stages=stages, kernel=kernel, lambdas=(0.05,), pixel_width=4)
    codec = ImageCodec.from_network(CodecNet(config))
    image = _blobs(1, 75, 61, seed=8)[0]
    item = codec.compress(image, quality=1)[0]
    whole = codec.decode(item)
    monkeypatch.setattr(limits, "TILE_PIXELS", 64)
    monkeypatch.setattr(limits, "TILE_SIDE", 2 * config.stride)  # tiles of 2 x 2 latent positions
    tiled = codec.decode(item)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    assert (tiled == whole).mean() > 0.99


# Under a hard memory cap, in a child process (as tests/test_lazy_data.py does). The cap is RLIMIT_DATA, which
# the kernel checks on every allocation: the hostile cases get HEADROOM_MB above what the child holds once
# the codec has decoded a real item, and each real item exactly the decoder's own estimate.
HEADROOM_MB = 200
CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from aekit.codec import limits
    from aekit.codec.codec import ImageCodec
    from aekit.codec.container import ArchiveReader, Item
    from aekit.errors import DataError

    def vm_data():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

    def cap(extra):  # the soft limit only, so that it can be set again
        resource.setrlimit(resource.RLIMIT_DATA, (vm_data() + extra, resource.RLIM_INFINITY))

    codec = ImageCodec.load(sys.argv[1])
    codec.decode(codec.compress(np.zeros((16, 16), np.uint8), lossless=True)[0])
    cap(int(sys.argv[3]) << 20)
    try:  # the control: the cap is real
        np.ones(1 << 30, np.uint8)
        control = "no error"
    except MemoryError:
        control = "MemoryError"
    hostile = {
        "wide": [Item((1, 1 << 24), "uint8", (3, 0), 1, False, b"\\x00" * 8)],
        "big": [Item((4096, 4096), "uint8", (0, 0), 0, True, b"\\x01" * 8)],
        "empty": [Item((256, 256), "uint8", (0, 0), 0, True, b"")] * 2000,
    }
    results = {}
    for name, items in hostile.items():
        t0 = time.perf_counter()
        try:
            codec.decompress(items)
            outcome = "decoded"
        except DataError as e:
            outcome = f"DataError: {e}"
        except (MemoryError, RuntimeError) as e:
            outcome = f"{type(e).__name__}: {e}"
        results[name] = [outcome, time.perf_counter() - t0]
    honest = []
    os.environ["AEKIT_MEMORY_BUDGET_MB"] = "1e9"  # the cap alone decides whether the estimate was enough
    limits.TILE_PIXELS, limits.TILE_SIDE = 1 << 14, 64  # so that a small lossy image runs in tiles too
    for item in ArchiveReader(sys.argv[2]):
        h, w = item.shape
        level, bins = codec._mode(item.quality, item.lossless)
        cap(limits.decode_memory(codec.net_.config, h + item.padding[0], w + item.padding[1], 1, 1, bins))
        try:
            honest.append(list(codec.decode(item).shape))
        except (MemoryError, RuntimeError) as e:
            honest.append(f"{type(e).__name__}: {e}"[:300])
    print(json.dumps({"control": control, "hostile": results, "honest": honest}))
    """
)


def test_decoding_stays_within_a_hard_memory_cap(codec, tmp_path):
    """Hostile items are refused before they allocate anything; honest ones (lossless, near-lossless, and a
    lossy one large enough to be decoded in tiles) fit in what the decoder estimates for them."""
    import json
    import subprocess
    import sys

    codec.save(tmp_path / "c.aek")
    honest = [((200, 160), 1, True), ((128, 160), 3, False), ((256, 320), 1, False)]
    with ArchiveWriter(tmp_path / "h.aez", "tiny", codec.fingerprint_, {}) as writer:
        for (h, w), quality, lossless in honest:
            writer.add(codec.encode(_blobs(1, h, w, seed=h)[0], quality, lossless))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "c.aek"), str(tmp_path / "h.aez"), str(HEADROOM_MB)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["control"] == "MemoryError"
    for name, (outcome, seconds) in report["hostile"].items():
        assert outcome.startswith("DataError: item 0 "), (name, outcome)
        assert seconds < 1.0, (name, seconds)
    assert report["honest"] == [list(shape) for shape, _, _ in honest]
