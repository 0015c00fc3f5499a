"""Encoder-side latent refinement: same decoder and format, never worse by the codec's own objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.cli.main import main
from aekit.codec.codec import ImageCodec
from aekit.codec.container import ArchiveReader
from aekit.codec.refine import refine_latent
from aekit.errors import ConfigError
from cli_helpers import one_line_error

TINY = dict(hidden=8, latent=4, stages=2, pixel_width=8, pixel_layers=2, pixel_mixtures=2, batch_size=8)
# quality 1-2: the latent alone; 3: near-lossless (latent + pixels in bins of 5)
QUALITIES = [(0, 0), (1, 0), (1, 5)]


def _blobs(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w, 3))
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 6)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            out[i] += blob[..., None] * rng.uniform(0.3, 1.0, 3)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec(**TINY, lambdas=(0.01, 0.1), qualities=QUALITIES, steps=60, random_state=0).fit(
        _blobs(32, 16, 16)
    )


def _objective(codec: ImageCodec, x: torch.Tensor, y: torch.Tensor, level: int, hw: tuple[int, int]) -> float:
    """The rounded rate + lambda * distortion, computed here independently of refine.py."""
    net = codec.net_
    with torch.no_grad():
        rounded = torch.round(y)
        rate = -torch.log2(net.bottlenecks[level].likelihood(rounded)).sum() / (hw[0] * hw[1])
        x_hat = net.synthesis(rounded, level)[0][:, :, : hw[0], : hw[1]]
        mse = ((x_hat - x[:, :, : hw[0], : hw[1]]) ** 2).mean()
    return float(rate + net.config.lambdas[level] * 255**2 * mse)


def test_refinement_lowers_the_objective_and_keeps_the_parameters_frozen_flags(codec):
    image = _blobs(1, 22, 30, seed=3)[0]  # padded on both axes
    x, _ = codec._padded(image[None])
    net = codec.net_
    flags = [p.requires_grad for p in net.parameters()]
    for level in (0, 1):
        with torch.no_grad():
            y = net.analysis(x) * net.gain(level)
        refined = refine_latent(net, x, y, level, 40, image.shape[:2])
        assert refined.shape == y.shape and not refined.requires_grad
        before, after = (
            _objective(codec, x, y, level, image.shape[:2]),
            _objective(codec, x, refined, level, (22, 30)),
        )
        assert after <= before
    assert [p.requires_grad for p in net.parameters()] == flags
    assert refine_latent(net, x, y, 1, 0, image.shape[:2]) is y


def test_refined_files_decode_with_the_unchanged_decoder_and_are_reproducible(codec):
    images = list(_blobs(3, 20, 24, seed=7))
    plain = codec.compress(images, quality=2)
    refined = codec.compress(images, quality=2, refine=30)
    again = codec.compress(images, quality=2, refine=30)
    assert [i.payload for i in refined] == [i.payload for i in again]  # one input, one file
    assert [i.payload for i in refined] != [i.payload for i in plain]  # it did something
    decoded = codec.decompress(refined)
    assert [d.shape for d in decoded] == [im.shape for im in images]
    assert all(d.dtype == np.uint8 for d in decoded)
    # the encoder's choice is rate + lambda * distortion: summed over the images it is no worse
    level = codec._mode(2, False)[0]
    lam = codec.net_.config.lambdas[level] * 255**2

    def cost(items):
        out = codec.decompress(items)
        bits = sum(8 * len(i.payload) for i in items) / sum(im.shape[0] * im.shape[1] for im in images)
        mse = np.mean([((o.astype(float) - im) / 255) ** 2 for o, im in zip(out, images, strict=True)])
        return bits / len(images) + lam * mse

    # payload bytes round up to whole words, so allow the coder's slack on these tiny images
    assert cost(refined) <= cost(plain) + 0.05


def test_refine_checks_its_argument_and_the_mode(codec):
    image = _blobs(1, 16, 16)[0]
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ConfigError, match="refine must be a whole number"):
            codec.compress(image, quality=1, refine=bad)
    with pytest.raises(ConfigError, match="lossless mode"):
        codec.compress(image, lossless=True, refine=5)
    with pytest.raises(ConfigError, match="quality 3"):
        codec.encode(image, quality=3, refine=5)
    assert codec.encode(image, quality=3, refine=0).quality == 3


def test_cli_refine_round_trip_and_errors(codec, tmp_path, capsys):
    model = tmp_path / "codec.aek"
    codec.save(model)
    png = tmp_path / "a.png"
    Image.fromarray(_blobs(1, 18, 26, seed=9)[0]).save(png)
    out = tmp_path / "a.aez"
    assert main(["compress", str(model), str(png), "-o", str(out), "--quality", "2", "--refine", "10"]) == 0
    assert "10 refinement steps" in capsys.readouterr().out
    with ArchiveReader(out) as reader:
        assert len(reader) == 1
    assert main(["decompress", str(out), "-o", str(tmp_path / "back"), "--quiet"]) == 0
    assert np.asarray(Image.open(tmp_path / "back" / "a.png")).shape == (18, 26, 3)
    one_line_error(
        capsys,
        ["compress", str(model), str(png), "-o", str(tmp_path / "b.aez"), "--lossless", "--refine", "5"],
        "lossless mode",
    )
    one_line_error(
        capsys,
        ["compress", str(model), str(png), "-o", str(tmp_path / "b.aez"), "--refine", "-3"],
        "--refine",
    )
    assert not (tmp_path / "b.aez").exists()
