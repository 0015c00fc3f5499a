"""The hyperprior entropy model (format 2 codec files) and the format-1 files and archives that came before.

Tiny networks, lightly trained: what is checked is exactness (lossless round trips, near-lossless error
bounds, the decoder's latent equal to the encoder's to the last bit), not compression. The old-version
check decodes a committed archive made by the format-1 photo codec (``tests/data``), pinned by hash.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from aekit import tensorfile, threads
from aekit.codec import CodecNet, CodecNetConfig, builtin
from aekit.codec.codec import ImageCodec, fingerprint
from aekit.codec.coding import StreamDecoder, StreamEncoder, least_payload
from aekit.codec.container import ArchiveReader, ArchiveWriter, Item
from aekit.codec.network import ADDED_SETTINGS
from aekit.codec.passes import synthesize
from aekit.codec.targets import psnr
from aekit.errors import DataError, ModelFileError

DATA = Path(__file__).resolve().parent / "data"
PIXELS = dict(pixel_width=8, pixel_layers=2, pixel_mixtures=2)
# quality 1, 2: the latent alone at levels 0, 1; quality 3: level 1 + pixels in bins of 2 (max error 1)
QUALITIES = ((0, 0), (1, 0), (1, 2))
SHAPES = [(37, 53), (1, 1), (5, 300)]


def _config(channels: int, **changes) -> CodecNetConfig:
    settings_ = dict(
        channels=channels,
        latent=16,
        stages=2,
        widths=(8,),
        prior="hyperprior",
        hyper_hidden=16,
        hyper_latent=8,
        lambdas=(0.01, 0.05),
        qualities=QUALITIES,
        pixel_train_bins=(1, 2),
        **PIXELS,
    )
    return CodecNetConfig(**{**settings_, **changes})


def _picture(h: int, w: int, channels: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a blob and a little noise: (h, w) or (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w] / max(h, w, 2)
    cy, cx = rng.uniform(0, 1, 2)
    base = 0.4 * (yy + xx) + 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) * 20)
    out = base[..., None] * rng.uniform(0.6, 1.0, channels) + rng.normal(0, 0.02, (h, w, channels))
    img = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def _codec(channels: int) -> ImageCodec:
    """A tiny hyperprior codec after a few rate-distortion steps (the densities and the hyper-synthesis
    move off their initial values; the pixel head stays untrained, which exactness does not mind)."""
    x = torch.from_numpy(np.stack([_picture(16, 16, 3, seed) for seed in range(8)])).permute(0, 3, 1, 2)
    x = x[:, :channels].float() / 255  # (8, C, 16, 16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = CodecNet(_config(channels))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for step in range(8):
            level = step % net.config.levels
            out = net(x, level)
            distortion = net.config.lambdas[level] * 255**2 * F.mse_loss(out.x_hat, x)
            loss = out.bits.sum() / x[:, 0].numel() + distortion
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ImageCodec.from_network(net.eval(), sample=x)


@pytest.fixture(scope="module")
def rgb() -> ImageCodec:
    return _codec(3)


@pytest.fixture(scope="module")
def gray() -> ImageCodec:
    return _codec(1)


@pytest.fixture(params=["rgb", "gray"])
def codec(request) -> ImageCodec:
    return request.getfixturevalue(request.param)


def _channels(codec: ImageCodec) -> int:
    return codec.net_.config.channels


def _max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


# -- round trips ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lossless_is_bit_exact_and_near_lossless_stays_within_its_bins(codec, shape):
    image = _picture(*shape, _channels(codec), seed=3)
    item = codec.compress(image, lossless=True)[0]
    assert np.array_equal(codec.decode(item), image)
    near = codec.decode(codec.compress(image, quality=3)[0])
    assert near.shape == image.shape and _max_error(near, image) <= 1


@pytest.mark.parametrize("quality", [1, 2])
def test_lossy_decoding_gives_the_encoders_own_reconstruction(codec, quality):
    """The decoder's latent is the encoder's to the last bit (means included), and the image is its
    synthesis; the coded latent is the latent rounded around the means."""
    net, c = codec.net_, _channels(codec)
    image = _picture(37, 53, c, seed=4)
    level, _ = codec._mode(quality, False)
    x, _ = codec._padded(image[None])
    size = codec._coding_batch(image.shape)
    with torch.no_grad(), threads.using(1):
        y = net.analysis(x) * net.gain(level)  # (1, M, 10, 14)
        encoders = [StreamEncoder()]
        latent = net.prior.encode(y, level, encoders, size)  # (size, M, 10, 14)
        payload = encoders[0].finish()
        decoded = net.prior.decode([StreamDecoder(payload)], level, tuple(latent.shape))
    assert latent.shape[0] == size and torch.equal(decoded, latent)
    assert float((latent[:1] - y).abs().max()) <= 0.5 + 1e-4
    item = codec.compress(image, quality=quality)[0]
    assert item.payload == payload
    expected = synthesize(net, latent[:1], level, 37, 53, c)[0]
    assert np.array_equal(codec.decode(item), expected[..., 0] if c == 1 else expected)


def test_a_batch_of_mixed_shapes_decodes_in_company_and_alone(rgb):
    shapes = [(37, 53), (1, 1), (37, 53), (37, 53), (5, 30)]
    images = [_picture(*shape, 3, seed=k) for k, shape in enumerate(shapes)]
    for mode in (dict(lossless=True), dict(quality=3), dict(quality=1)):
        items = rgb.compress(images, **mode)
        together = rgb.decompress(items)  # a list: the shapes differ
        alone = [rgb.decode(item) for item in items]
        for image, a, b in zip(images, together, alone, strict=True):
            assert a.shape == image.shape and np.array_equal(a, b), mode
            if mode.get("lossless"):
                assert np.array_equal(a, image)
            elif mode["quality"] == 3:
                assert _max_error(a, image) <= 1


def test_encoded_on_one_thread_decoded_on_two(rgb):
    images = [_picture(37, 53, 3, seed=k) for k in range(3)]
    with threads.using(1):
        items = {q: rgb.compress(images, quality=q) for q in (1, 3)}
        items[0] = rgb.compress(images, lossless=True)
        one = {q: rgb.decompress(coded) for q, coded in items.items()}
    with threads.using(2):
        assert torch.get_num_threads() == 2
        two = {q: rgb.decompress(coded) for q, coded in items.items()}
    assert np.array_equal(two[0], np.stack(images))
    for q in items:
        assert np.array_equal(one[q], two[q]), q


# -- files ------------------------------------------------------------------------------------------------


def forge(src: Path, dst: Path, edit=None, tensors: dict[str, torch.Tensor] | None = None, drop=()) -> Path:
    """A copy of ``src`` with its header edited or tensors replaced (or dropped), and a checksum that
    matches: a file anyone can write."""
    old, doc = tensorfile.load(src)
    if edit is not None:
        edit(doc)
    text = json.dumps(doc)
    both = {k: v for k, v in {**old, **(tensors or {})}.items() if k not in drop}
    save_file(both, str(dst), metadata={"aekit": text, "sha256": tensorfile._digest(both, text)})
    return dst


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(Exception) as err:  # noqa: B017 - the point is to see which type comes out
        ImageCodec.load(path)
    assert type(err.value) is ModelFileError, f"{type(err.value).__name__}: {err.value}"
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message
    return message


def test_save_load_keeps_the_fingerprint_and_decodes_archives(rgb, tmp_path):
    path = tmp_path / "hp.aek"
    rgb.save(path)
    _, doc = tensorfile.load(path)
    assert doc["format_version"] == 2
    assert doc["model_config"]["prior"] == "hyperprior" and doc["model_config"]["widths"] == [8]
    loaded = ImageCodec.load(path)
    assert loaded.fingerprint_ == rgb.fingerprint_ == fingerprint(loaded.net_)
    assert loaded.net_.config == rgb.net_.config
    images = [_picture(37, 53, 3, seed=k) for k in range(2)]
    for mode in (dict(quality=2), dict(lossless=True)):
        archive = tmp_path / "a.aez"
        rgb.compress_to(archive, images, **mode)
        assert np.array_equal(loaded.decompress(archive), rgb.decompress(archive))
    assert np.array_equal(loaded.decompress(archive), np.stack(images))


def test_float16_weights_keep_the_fingerprint_through_the_file(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        half = ImageCodec.from_network(CodecNet(_config(1)))
    half.save(tmp_path / "h.aek", weights="float16")
    again = ImageCodec.load(tmp_path / "h.aek")
    assert again.fingerprint_ == half.fingerprint_ == fingerprint(again.net_)
    image = _picture(9, 14, 1)
    assert np.array_equal(again.decode(half.compress(image, lossless=True)[0]), image)


FACTORIZED = dict(prior="factorized", widths=None, hyper_hidden=96, hyper_latent=64)


@pytest.mark.parametrize(
    "changes, version",
    [
        ({}, 1),
        (dict(prior="hyperprior"), 2),
        (dict(widths=(6,)), 2),
        (dict(default_quality=2), 2),
        (dict(hyper_latent=8), 2),
    ],
)
def test_save_writes_the_oldest_format_that_holds_the_codec(tmp_path, changes, version):
    """A codec with format 1's settings only stays a format-1 file, readable by older aekit."""
    net = CodecNet(_config(1, **{**FACTORIZED, **changes}))
    codec = ImageCodec.from_network(net)
    codec.save(tmp_path / "c.aek")
    _, doc = tensorfile.load(tmp_path / "c.aek")
    assert doc["format_version"] == version
    assert sorted(set(doc["model_config"]) & set(ADDED_SETTINGS)) == sorted(changes)
    assert ImageCodec.load(tmp_path / "c.aek").fingerprint_ == codec.fingerprint_


def test_a_file_must_declare_the_format_its_settings_need(rgb, tmp_path):
    good = tmp_path / "good.aek"
    rgb.save(good)
    old = forge(good, tmp_path / "old.aek", lambda d: d.update(format_version=1))
    _refused(old, "declares codec format 1", "widths, prior, hyper_hidden, hyper_latent", "added in format 2")
    # one format-2 setting is enough, even at its default value (format 1 has no such key at all)
    factorized = tmp_path / "f.aek"
    ImageCodec.from_network(CodecNet(_config(1, **FACTORIZED))).save(factorized)
    named = forge(factorized, tmp_path / "named.aek", lambda d: d["model_config"].update(prior="factorized"))
    _refused(named, "declares codec format 1 but its settings use prior, added in format 2")


@pytest.mark.parametrize(
    "version, words",
    [
        (3, ["uses codec format 3, newer than this aekit reads (up to 2)", "upgrade aekit"]),
        (0, ["declares codec format 0, which no aekit writes"]),
        ("2", ["declares codec format '2'"]),
        (True, ["declares codec format True"]),
        (None, ["declares codec format None"]),
    ],
)
def test_a_version_this_aekit_cannot_read_is_named(rgb, tmp_path, version, words):
    rgb.save(tmp_path / "good.aek")
    path = forge(tmp_path / "good.aek", tmp_path / "v.aek", lambda d: d.update(format_version=version))
    _refused(path, *words)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("hyper_analysis.0.weight", (5, 6)),
        ("hyper_synthesis.4.weight", (32, 24, 5, 5)),  # a 3x3 convolution
        ("hyper_synthesis.4.bias", (31,)),
        ("bottlenecks.1.pmfs", (16, 20)),  # one table row per channel of z (8), not of y (16)
        ("bottlenecks.0.offsets", (16,)),
    ],
)
def test_hyperprior_weights_of_the_wrong_shape_are_refused(rgb, tmp_path, name, shape):
    rgb.save(tmp_path / "good.aek")
    dtype = torch.int64 if name.endswith("offsets") else torch.float32
    path = forge(tmp_path / "good.aek", tmp_path / "bad.aek", tensors={name: torch.zeros(shape, dtype=dtype)})
    _refused(path, "damaged or mismatched", name)


def test_hyperprior_weights_missing_or_unexpected_are_refused(rgb, tmp_path):
    good = tmp_path / "good.aek"
    rgb.save(good)
    missing = forge(good, tmp_path / "m.aek", drop=("hyper_synthesis.2.weight",))
    _refused(missing, "damaged or mismatched", "hyper_synthesis.2.weight that the file lacks")
    # the settings say factorized: the side latent's networks have no place, the tables the wrong width
    flat = forge(good, tmp_path / "f.aek", lambda d: d["model_config"].update(prior="factorized"))
    _refused(flat, "damaged or mismatched", "bottlenecks.0.offsets is (16) by the settings, (8) in the file")
    narrow = forge(good, tmp_path / "n.aek", lambda d: d["model_config"].update(hyper_latent=4))
    _refused(narrow, "damaged or mismatched", "by the settings")


# -- archives made by format 1 ---------------------------------------------------------------------------

# A committed archive written by the format-1 built-in photo codec (factorized prior): two items of a
# 16 x 24 RGB gradient, quality 1 and lossless. It must decode forever: the lossless item exactly, the
# lossy one as it did when written (25.56 dB; its synthesis runs on every thread, so another processor
# may round a few pixels differently, which a hash of its pixels would take for a break).
FORMAT1_ARCHIVE = DATA / "photo-format1-16x24.aez"
FORMAT1_FINGERPRINT = "78fef9e90623103f40d451df156b3d27"
FORMAT1_LOSSY_PSNR = 25.56


def _gradient() -> np.ndarray:
    yy, xx = np.mgrid[:16, :24]
    return np.stack([xx * 10, yy * 15, (xx + yy) * 6], axis=-1).astype(np.uint8)  # (16, 24, 3)


def _format1_photo() -> ImageCodec:
    """The built-in whose fingerprint the archive records: kept as 'photo-2026-11' once 'photo' holds
    the hyperprior model ('photo' itself until then)."""
    for name in dict.fromkeys(["photo-2026-11", "photo", *builtin.builtin_names()]):
        try:
            path = builtin.builtin_path(name)
        except ModelFileError:  # listed, but its file is not there (yet)
            continue
        codec = ImageCodec.load(path, name=name)
        if codec.fingerprint_.hex() == FORMAT1_FINGERPRINT:
            return codec
    pytest.fail(f"no built-in codec has fingerprint {FORMAT1_FINGERPRINT}: keep the format-1 photo codec")


def _write_format1_archive(photo: ImageCodec) -> None:  # how the fixture was made (never rerun it)
    image = _gradient()
    items = photo.compress(image, quality=1, names=["gradient.png"])
    items += photo.compress(image, lossless=True, names=["gradient-lossless.png"])
    with ArchiveWriter(FORMAT1_ARCHIVE, "photo", photo.fingerprint_, {}) as writer:
        for item in items:
            writer.add(item)


def test_an_archive_of_the_format1_photo_codec_still_decodes():
    with ArchiveReader(FORMAT1_ARCHIVE) as reader:
        assert reader.codec_name == "photo" and reader.fingerprint.hex() == FORMAT1_FINGERPRINT
        assert [(item.quality, item.lossless) for item in reader] == [(1, False), (0, True)]
    photo = _format1_photo()
    out = photo.decompress(FORMAT1_ARCHIVE)
    assert out.shape == (2, 16, 24, 3)
    assert np.array_equal(out[1], _gradient())
    assert abs(psnr(out[0], _gradient()) - FORMAT1_LOSSY_PSNR) < 0.05


def test_aekit_decompress_finds_the_earlier_model_of_a_retrained_builtin(tmp_path):
    """The archive records "photo"; once "photo" holds a newer model, its fingerprint leads decompress to
    the dated built-in that made it (aekit.codec.builtin.EARLIER)."""
    from aekit.cli.main import main

    assert main(["decompress", str(FORMAT1_ARCHIVE), "-o", str(tmp_path / "out.npy"), "--quiet"]) == 0
    out = np.load(tmp_path / "out.npy")
    assert np.array_equal(out[1], _gradient())


# -- damaged and hostile payloads -------------------------------------------------------------------------


def _fuzz_items(codec: ImageCodec) -> list[Item]:
    image = _picture(13, 11, _channels(codec), seed=7)
    lossy = [codec.compress(image, quality=q)[0] for q in (1, 2, 3)]
    return lossy + codec.compress(image, lossless=True)


def test_damaged_hyperprior_payloads_give_an_image_or_one_data_error(rgb):
    """Random byte changes and cuts of real payloads (what a forger who fixes the archive's CRCs can
    send): a DataError of one line, or an image of the item's shape; never another exception or a hang."""
    items = _fuzz_items(rgb)
    t0 = time.perf_counter()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(data=st.data())
    def check(data):
        item = items[data.draw(st.integers(0, len(items) - 1))]
        payload = bytearray(item.payload)
        for _ in range(data.draw(st.integers(1, 4))):
            if payload and data.draw(st.booleans()):
                payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
            else:
                payload = payload[: data.draw(st.integers(0, len(payload)))]
        bad = Item(item.shape, item.dtype, item.padding, item.quality, item.lossless, bytes(payload))
        start = time.perf_counter()
        try:
            out = rgb.decode(bad)
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            assert out.shape == tuple(item.shape) and out.dtype == np.uint8
        assert time.perf_counter() - start < 2.0

    check()
    assert time.perf_counter() - t0 < 10.0


def test_damaged_hyperprior_archives_are_archive_errors_or_decode(rgb, tmp_path):
    """Flips and cuts of the archive file itself: the container's CRCs name the damaged item."""
    path = tmp_path / "a.aez"
    with ArchiveWriter(path, "hp", rgb.fingerprint_, {}) as writer:
        for item in _fuzz_items(rgb):
            writer.add(item)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for k in range(40):
        bad = bytearray(data)
        if k % 4 == 3:
            bad = bad[: rng.integers(0, len(bad))]
        else:
            bad[rng.integers(0, len(bad))] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(bad))
        try:
            out = rgb.decompress(path)
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert len(out) == 4
    assert time.perf_counter() - t0 < 10.0


def test_a_payload_shorter_than_the_side_latent_needs_is_refused_before_decoding(rgb, monkeypatch):
    net = rgb.net_
    level, bins = rgb._mode(1, False)
    least = rgb._least_payload(level, bins, 4096, 4096, 3)
    assert least == least_payload(net.prior.least_bits(level, 1024, 1024)) > 1000
    # a hyperprior item's least payload is its side latent's: 256 x 256 positions of z at this size
    assert net.prior.least_bits(level, 1024, 1024) == 256 * 256 * net.bottlenecks[level].least_bits()

    def never(*args, **kwargs):
        raise AssertionError("decoding started")

    monkeypatch.setattr(net.prior, "decode", never)
    for payload in (b"", b"\x01" * 8, bytes(least - 1)):
        item = Item((4096, 4096, 3), "uint8", (0, 0), 1, False, payload)
        with pytest.raises(
            DataError, match=f"holds {len(payload):,} bytes of coded data.*at least {least:,}"
        ):
            rgb.decode(item)


def test_what_the_hyperprior_encoder_writes_is_never_refused(rgb):
    for shape in SHAPES + [(64, 80)]:
        image = _picture(*shape, 3, seed=2)
        for quality, lossless in ((1, False), (2, False), (3, False), (0, True)):
            item = rgb.compress(image, quality=quality, lossless=lossless)[0]
            level, bins = rgb._mode(item.quality, item.lossless)
            assert len(item.payload) >= rgb._least_payload(level, bins, *shape, 3)


# -- built-in names: a grayscale twin, and the earlier models of a retrained name ---------------------------


@pytest.fixture
def builtins_folder(monkeypatch, tmp_path, rgb, gray):
    """Built-ins in a temporary folder: 'pic' (RGB, retrained: its first model kept as 'pic-old') and its
    grayscale twin 'pic-gray'."""
    old = _codec(3)
    old.net_.log_gain.data += 0.5  # another model: another fingerprint
    old = ImageCodec.from_network(old.net_)
    rgb.save(tmp_path / "pic.aek")
    gray.save(tmp_path / "pic-gray.aek")
    old.save(tmp_path / "pic-old.aek")
    models = {name: (f"{name}.aek", name) for name in ("pic", "pic-gray", "pic-old")}
    monkeypatch.setattr(builtin, "BUILTIN_MODELS", models)
    monkeypatch.setattr(builtin, "CODECS", builtin.Builtins(tmp_path, models, "a test"))
    monkeypatch.setattr(builtin, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(builtin, "GRAY_TWINS", {"pic": "pic-gray"})
    monkeypatch.setattr(builtin, "EARLIER", {"pic": ("pic-old",)})
    return old


def test_an_rgb_builtin_hands_grayscale_images_to_its_twin(builtins_folder, tmp_path):
    from aekit.cli.main import main

    stack = np.stack([_picture(20, 28, 1, seed) for seed in range(3)])  # (3, 20, 28): grayscale
    np.save(tmp_path / "gray.npy", stack)
    assert (
        main(["compress", "pic", str(tmp_path / "gray.npy"), "-o", str(tmp_path / "g.aez"), "--quiet"]) == 0
    )
    with ArchiveReader(tmp_path / "g.aez") as reader:
        assert reader.codec_name == "pic-gray"  # the archive names the model that coded it
    assert main(["decompress", str(tmp_path / "g.aez"), "-o", str(tmp_path / "g.npy"), "--quiet"]) == 0
    assert np.load(tmp_path / "g.npy").shape == stack.shape
    np.save(tmp_path / "rgb.npy", np.stack([_picture(20, 28, 3)]))
    assert main(["compress", "pic", str(tmp_path / "rgb.npy"), "-o", str(tmp_path / "c.aez"), "--quiet"]) == 0
    with ArchiveReader(tmp_path / "c.aez") as reader:
        assert reader.codec_name == "pic"


def test_an_archive_of_a_builtins_earlier_model_decodes_with_that_model(builtins_folder, tmp_path):
    from aekit.cli.main import main

    old = builtins_folder
    image = _picture(20, 28, 3)
    old.compress_to(tmp_path / "old.aez", [image], lossless=True, codec_name="pic")  # made before retraining
    assert main(["decompress", str(tmp_path / "old.aez"), "-o", str(tmp_path / "o.npy"), "--quiet"]) == 0
    assert np.array_equal(np.load(tmp_path / "o.npy")[0], image)
