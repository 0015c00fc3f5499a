"""``ImageCodec``: a learned image codec you fit on your own images, then compress and decompress with.

``fit`` trains a ``CodecNet`` for rate + lambda x distortion at every quality level and its pixel head
(``aekit.codec.training``) on the shared trainer (``aekit.codec.fitting``). ``compress`` turns each image
into one ``Item`` of the ``.aez`` container: the latent's integer symbols coded under the level's learned
prior and, for lossless and near-lossless qualities, the pixels coded under the pixel head's
distributions, all in one range-coder stream (``aekit.codec.coding``). Everything a decoder runs on (the
latent, then the pixel groups) is computed one item at a time by one code path, so the encoder and the
decoder see bit-identical probabilities: those passes, at both ends, are ``aekit.codec.passes``; this
module checks what goes in and comes out.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from aekit import threads
from aekit.codec import fitting, ladder, limits, targets
from aekit.codec import typicality as codec_typicality
from aekit.codec.coding import alphabet_bits, least_payload
from aekit.codec.container import ArchiveReader, ArchiveWriter, Item
from aekit.codec.data import CodecImages
from aekit.codec.defaults import PROFILES, Profile, is_auto, pixel_train_bins, profile_name, uses_ladder
from aekit.codec.network import ADDED_SETTINGS, CodecNet, CodecNetConfig
from aekit.codec.passes import decode_images, encode_payloads
from aekit.codec.pixels import bin_edges
from aekit.codec.targets import Target
from aekit.codec.targets import psnr as psnr  # re-exported: aekit.codec.codec.psnr predates targets
from aekit.codec.training import RateDistortion, estimate_bits
from aekit.device import resolve_device
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.training import Trainer
from aekit.typicality import HEADER_KEY
from aekit.validation import image_list, seed_of

if TYPE_CHECKING:
    from aekit.typicality import Typicality

FORMAT = "aekit-codec"
# The newest codec file format this aekit reads. save writes the oldest that holds the codec: 2 for a
# config with any setting format 2 added (ADDED_SETTINGS: the hyperprior, widths, default_quality), else
# 1, so a format-1 codec saved again stays readable by the aekit versions before format 2.
FORMAT_VERSION = 2
CHANNEL_NAMES = {1: "grayscale (H, W)", 3: "RGB (H, W, 3)"}
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16}
LOSSLESS_QUALITY = 0  # the quality an item coded losslessly records
# Items of one shape are coded CODING_BATCH at a time (fewer for large images: at most CODING_PIXELS pixels
# per pass), always in a batch of exactly that many places (unused places hold a fixed filler), at both
# ends: the network then runs on the same tensor shapes when encoding and decoding, so its kernels take
# the same code paths and the probabilities agree to the last bit. Part of the format: do not change.
CODING_BATCH = 16
CODING_PIXELS = 1 << 16
# What one item may cost to decode (its padded size, its least payload, its peak memory) is checked before
# anything is allocated, and compress checks the same, so every archive it writes can be read: see
# aekit.codec.limits. The largest image coded in one piece is MAX_PIXELS after padding (4096 x 4096).
MAX_PIXELS = limits.MAX_PIXELS


class ImageCodec(BaseEstimator):
    """Learned lossy and lossless image compression for 8-bit grayscale or RGB images of any size.

    ``hidden``, ``latent`` and ``stages`` size the transforms (the latent is 2**stages times smaller per
    side); ``lambdas`` gives one rate-distortion weight per latent level; ``qualities`` maps quality
    q = 1..len to (latent level, near-lossless bin width or 0) (None: quality q = level q - 1);
    ``pixel_width``/``pixel_layers``/``pixel_mixtures`` size the pixel head used by lossless mode;
    ``pixel_train_bins`` (e.g. (1, 4, 16)) also trains it for near-lossless qualities' coarse context.
    "auto" settings adapt to the images (``aekit.codec.defaults``): small images of one shape (no side
    above ``crop``: digits, thumbnails) get two stages, a narrow latent and a near-lossless quality ladder
    picked on held-out images (``aekit.codec.ladder``); photos get three stages and one quality per
    latent level. The default quality (``compress`` without one) is the middle of the ladder.

    Training runs on the shared trainer (``aekit.codec.fitting``): ``epochs`` ("auto": until the loss on
    the held-out images stops improving; or N passes over the images) or ``steps`` (optimizer steps,
    overrides epochs), ``batch_size``, ``lr``, ``crop`` (side of the random training crops; images that
    share a shape no larger than it train whole); ``validation_fraction`` of the images is held out for
    validation and early stopping (``patience`` epochs without a better loss; the best weights are kept);
    ``run_dir`` keeps a checkpoint after every epoch, which ``resume=True`` continues bit-identically.
    """

    def __init__(
        self,
        hidden: int = 64,
        latent: int | str = "auto",
        stages: int | str = "auto",
        lambdas: Sequence[float] | str = "auto",
        qualities: Sequence[tuple[int, int]] | str | None = "auto",
        pixel_width: int = 32,
        pixel_layers: int = 3,
        pixel_mixtures: int | str = "auto",
        pixel_train_bins: Sequence[int] | str = "auto",
        epochs: int | str = "auto",
        steps: int | None = None,
        batch_size: int = 32,
        lr: float = 1e-3,
        crop: int = 64,
        validation_fraction: float = 0.05,
        patience: int | None = 5,
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
    ):
        self.hidden = hidden
        self.latent = latent
        self.stages = stages
        self.lambdas = lambdas
        self.qualities = qualities
        self.pixel_width = pixel_width
        self.pixel_layers = pixel_layers
        self.pixel_mixtures = pixel_mixtures
        self.pixel_train_bins = pixel_train_bins
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.crop = crop
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.run_dir = run_dir
        self.resume = resume

    # -- training -------------------------------------------------------------------------------------------
    def fit(self, images: Any, y: Any = None) -> ImageCodec:
        """Train on 8-bit images: an array (N, H, W[, 3]) or a list of images of any sizes.

        Trains on the shared trainer (``aekit.codec.fitting``), validating on held-out images; then
        computes the coding tables from the kept weights, picks the lossless level and, for small images
        at the default settings, the near-lossless quality ladder, both on the held-out images.
        """
        pictures = [_as_uint8(im, f"image {i}") for i, im in enumerate(image_list(images))]
        counts = {p.shape[2] if p.ndim == 3 else 1 for p in pictures}
        if len(counts) > 1:
            raise DataError("the training images mix grayscale and RGB; convert them all to one kind")
        histogram = np.zeros(256)
        for p in pictures:
            histogram += np.bincount(p.reshape(-1), minlength=256)
        fitting.check_settings(self)
        profile = PROFILES[profile_name(pictures, self.crop)]
        config = self._config(counts.pop(), tuple(float(v) for v in histogram / histogram.sum()), profile)
        if self.crop % config.stride:
            raise ConfigError(
                f"crop={self.crop} must be a multiple of the stride 2**stages = {config.stride}; "
                f"try crop={max(config.stride, self.crop // config.stride * config.stride)}."
            )
        seed = seed_of(self.random_state)
        device = resolve_device(self.device)
        train, held = fitting.hold_out(pictures, self.validation_fraction, seed)
        per_epoch, epochs, schedule = fitting.budget(self.epochs, self.steps, len(train), self.batch_size)
        data = CodecImages(train, self.crop, config.stride, per_epoch)
        val = fitting.validation(held, self.crop, config.stride, seed)
        trainer = Trainer(fitting.train_config(self, epochs, schedule, seed, device))
        devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):  # the caller's global RNG is left as it was
            torch.manual_seed(seed)
            net = CodecNet(config)
            # threads from the transforms' work on a batch (the pixel head's is left out)
            side = data.whole.shape[-2:] if data.whole is not None else (self.crop, self.crop)

            def work() -> int:
                return self.batch_size * threads.macs_per_row(net, (config.channels, *side), 0)

            with threads.for_work(work, None, device):
                self.history_ = trainer.fit(RateDistortion(net), data, val)
        self._adopt(net, (val if val is not None else data.fixed(256, seed))[:256])  # tables, lossless level
        if uses_ladder(profile, self.lambdas, self.qualities):
            coded = held or [train[i] for i in np.random.default_rng(seed).permutation(len(train))]
            chosen = fitting.pick_ladder(type(self), net, coded[: ladder.IMAGES])
            net.config.qualities = tuple((int(r["level"]), int(r["bins"])) for r in chosen)
            net.config.extra["ladder"] = [{k: round(v, 3) for k, v in r.items()} for r in chosen]
        net.config.default_quality = (len(net.config.quality_table()) + 1) // 2  # the ladder's middle
        self._adopt(net, None)
        self._measure_typicality(pictures, seed)
        return self

    # -- typicality -----------------------------------------------------------------------------------------
    def typicality(self, images: Any) -> Typicality:
        """How typical each image (as ``compress`` takes them) is of the training images
        (``aekit.typicality``, ``aekit.codec.typicality``): its percentile among the training images' bits
        per pixel at the finest level ("rate"); ``.atypical`` marks those above 99.9. Never warns:
        ``aekit.typicality.check(result)`` does. A file that predates typicality raises NoTypicalityError
        (``fit_typicality`` adds it)."""
        self._typicality_reference()
        rates = [
            codec_typicality.rate(
                self.net_,
                codec_typicality.tensor(self._check_image(_as_uint8(im, f"image {i}"), f"image {i}")),
                self.typicality_level_,
            )
            for i, im in enumerate(self._batch(images))
        ]
        return self.typicality_.percentiles({"rate": np.asarray(rates)})

    def fit_typicality(self, images: Any) -> ImageCodec:
        """Measure the training distribution of typicality again on ``images`` (the 8-bit training images;
        up to 256 of them, chosen with random_state), leaving the network as it is: for a codec whose file
        predates typicality. Returns self; ``save`` then stores it."""
        check_is_fitted(self)
        pictures = [
            self._check_image(_as_uint8(im, f"image {i}"), f"image {i}")
            for i, im in enumerate(self._batch(images))
        ]
        self._measure_typicality(pictures, seed_of(self.random_state))
        return self

    def _measure_typicality(self, pictures: list[np.ndarray], seed: int) -> None:
        self.typicality_, self.typicality_level_ = codec_typicality.measure(self.net_, pictures, seed)

    def _typicality_reference(self):
        from aekit.typicality import not_stored

        check_is_fitted(self)
        if getattr(self, "typicality_", None) is None:
            raise not_stored(f"this {type(self).__name__}")
        return self.typicality_

    def _config(
        self, channels: int, histogram: tuple[float, ...] | None = None, profile: Profile = PROFILES["photo"]
    ) -> CodecNetConfig:
        """The network's settings, each "auto" one taken from ``profile`` (``aekit.codec.defaults``)."""

        def setting(name: str) -> Any:
            value = getattr(self, name)
            return getattr(profile, name) if is_auto(value) else value

        bins = self.pixel_train_bins
        if is_auto(bins):
            bins = pixel_train_bins(profile, self.lambdas, self.qualities)

        qualities = None if is_auto(self.qualities) else self.qualities  # "auto": a ladder is picked after
        config = CodecNetConfig(
            channels=channels,
            hidden=self.hidden,
            latent=setting("latent"),
            stages=setting("stages"),
            lambdas=tuple(float(v) for v in setting("lambdas")),
            qualities=None if qualities is None else tuple((int(a), int(b)) for a, b in qualities),
            pixel_width=self.pixel_width,
            pixel_layers=self.pixel_layers,
            pixel_mixtures=setting("pixel_mixtures"),
            pixel_train_bins=tuple(int(b) for b in bins),
            value_histogram=histogram,
        )
        config.validate()
        return config

    def _adopt(self, net: CodecNet, sample: Tensor | None) -> None:
        """Make ``net`` this codec's network: coding tables, the lossless level, the fingerprint."""
        net.to("cpu").eval()
        net.update_tables()
        if sample is not None and net.config.levels > 1:
            # lossless mode codes the latent too: pick the level where latent + pixel bits are fewest
            totals = [sum(estimate_bits(net, sample, level)[:2]) for level in range(net.config.levels)]
            net.config.lossless_level = int(np.argmin(totals))
        self.net_ = net
        self.channels_ = net.config.channels
        self.qualities_ = net.config.quality_table()
        self.fingerprint_ = fingerprint(net)

    @classmethod
    def from_network(cls, net: CodecNet, sample: Tensor | None = None, **params: Any) -> ImageCodec:
        """Wrap a ``CodecNet`` trained elsewhere (e.g. by ``aekit.training.Trainer`` on its
        ``RateDistortion``) as a fitted codec.

        ``sample`` (B, C, H, W) on [0, 1], if given, picks the lossless level (as ``fit`` does); ``params``
        are recorded as the estimator's parameters.
        """
        c = net.config
        est = cls(
            hidden=c.hidden,
            latent=c.latent,
            stages=c.stages,
            lambdas=c.lambdas,
            qualities=c.qualities,
            pixel_width=c.pixel_width,
            pixel_layers=c.pixel_layers,
            pixel_mixtures=c.pixel_mixtures,
            pixel_train_bins=c.pixel_train_bins,
            **params,
        )
        est.history_ = []
        est._adopt(net, sample)
        return est

    # -- compressing ----------------------------------------------------------------------------------------
    @property
    def n_qualities(self) -> int:
        check_is_fitted(self)
        return len(self.qualities_)

    @property
    def default_quality(self) -> int:
        """The quality ``compress`` uses when given none: the network's ``default_quality``, else the best."""
        check_is_fitted(self)
        return self.net_.config.default_quality or len(self.qualities_)

    def compress(
        self,
        images: Any,
        quality: int | None = None,
        lossless: bool = False,
        names: Sequence[str] | None = None,
        refine: int = 0,
        target_bpp: float | None = None,
        target_psnr: float | None = None,
    ) -> list[Item]:
        """One ``Item`` per image: an array (N, H, W[, 3]), one image (H, W) / (H, W, 3), or a list.

        ``quality`` 1..n_qualities (higher = better and bigger; None: ``default_quality``);
        ``lossless=True`` ignores it and codes every pixel exactly. Images must be uint8 (or integers in
        0..255) with this codec's channels. ``refine`` > 0 spends that many gradient steps per image
        improving its latent for the decoder (``aekit.codec.refine``): slower encoding, same decoder and
        format; lossy qualities only. ``target_bpp`` (the highest quality whose payload is at most that
        many bits per pixel) or ``target_psnr`` (the lowest whose decoded image reaches that many dB)
        picks each image's quality instead (``aekit.codec.targets``); the items record it as usual.
        """
        check_is_fitted(self)
        q, refine, target = self._plan(quality, lossless, refine, target_bpp, target_psnr)
        batch = self._batch(images)
        if names is not None and len(names) != len(batch):
            raise ConfigError(f"got {len(names)} names for {len(batch)} images")
        labelled = ((im, "" if names is None else names[i], f"image {i}") for i, im in enumerate(batch))
        return list(self._encode_stream(labelled, q, lossless, refine, target))

    def _plan(
        self, quality: Any, lossless: bool, refine: Any, target_bpp: Any, target_psnr: Any
    ) -> tuple[int, int, Target | None]:
        """(quality, refinement steps, target) checked; with a target the quality is the search's."""
        target = targets.check(target_bpp, target_psnr, quality, lossless)
        q = self._check_quality(quality, lossless)
        return q, self._check_refine(refine, None if target else q, lossless), target

    def encode(
        self,
        image: Any,
        quality: int,
        lossless: bool = False,
        name: str = "",
        what: str = "image",
        refine: int = 0,
    ) -> Item:
        """One image (H, W[, 3]) -> one ``Item`` (see ``compress``)."""
        check_is_fitted(self)
        q = self._check_quality(quality, lossless)
        refine = self._check_refine(refine, q, lossless)
        arr = self._check_image(_as_uint8(image, what), what)
        return self._encode_group([arr], q, lossless, [name], refine, what)[0]

    def _encode_stream(
        self,
        labelled: Iterable[tuple[Any, str, str]],
        q: int,
        lossless: bool,
        refine: int = 0,
        target: Target | None = None,
    ) -> Iterator[Item]:
        """Encode (image, name, label) in order, consecutive images of one shape a coding batch at a time
        (with a ``target``, each image alone at the quality the search picks for it)."""
        if target is not None:
            for image, name, what in labelled:
                arr = self._check_image(_as_uint8(image, what), what)
                yield self._encode_to_target(target, arr, name, refine, what)
            return
        group: list[np.ndarray] = []
        names: list[str] = []
        first = ""  # the label of the group's first image
        for image, name, what in labelled:
            arr = self._check_image(_as_uint8(image, what), what)
            if group and (arr.shape != group[0].shape or len(group) == self._coding_batch(arr.shape)):
                yield from self._encode_group(group, q, lossless, names, refine, first)
                group, names = [], []
            if not group:
                first = what
            group.append(arr)
            names.append(name)
        if group:
            yield from self._encode_group(group, q, lossless, names, refine, first)

    def _encode_to_target(self, target: Target, arr: np.ndarray, name: str, refine: int, what: str) -> Item:
        """One image's item at the quality ``target`` picks: every quality tried is really encoded (and
        for a PSNR target decoded); ``refine`` applies to the lossy ones."""

        def encode(q: int) -> Item:
            steps = 0 if self._mode(q, False)[1] else refine
            return self._encode_group([arr], q, False, [name], steps, what)[0]

        return targets.search(target, arr, len(self.qualities_), encode, lambda item: self.decode(item, what))

    def _coding_batch(self, shape: tuple[int, ...]) -> int:
        """How many items of this shape share one network pass: a function of the shape alone."""
        if len(shape) < 2 or min(shape[:2]) < 1:
            return 1  # not an image: decoding refuses it with a proper message
        hp, wp = limits.padded_size(shape[0], shape[1], self.net_.stride)
        return max(1, min(CODING_BATCH, CODING_PIXELS // (hp * wp)))

    def _encode_group(
        self,
        arrs: list[np.ndarray],
        q: int,
        lossless: bool,
        names: list[str],
        refine: int = 0,
        what: str = "image",
    ) -> list[Item]:
        """Images of one shape (at most one coding batch) -> their items; ``what`` names the first."""
        level, bins = self._mode(q, lossless)
        net = self.net_
        size = self._coding_batch(arrs[0].shape)
        if bins:  # the pixel passes are the decoder's own, on the same shapes: so is their memory
            h, w = arrs[0].shape[:2]
            hp, wp = limits.padded_size(h, w, net.stride)
            need = limits.decode_memory(net.config, hp, wp, size, len(arrs), bins)
            limits.check_memory(need, f"{what} is a {_image(h, w, self.channels_, q, lossless)}: coding it")
        x, padding = self._padded(np.stack(arrs))  # (n, C, Hp, Wp)
        payloads = encode_payloads(net, x, arrs, level, bins, size, refine)
        return [
            Item(a.shape, "uint8", padding, q, lossless, payload, name)
            for a, payload, name in zip(arrs, payloads, names, strict=True)
        ]

    def decompress(self, source: Any) -> Any:
        """Images back from ``compress``'s items, an ``ArchiveReader`` or an ``.aez`` path.

        Returns an array (N, H, W[, 3]) when all items share a shape, else a list of arrays. An archive
        made by another model is refused with both fingerprints named.
        """
        check_is_fitted(self)
        if isinstance(source, str | os.PathLike):
            with ArchiveReader(source) as reader:
                self.check_archive(reader)
                _check_in_memory(reader.total_values, str(source))
                out = list(self.decode_stream(reader, f" of {source}"))
        else:
            if isinstance(source, ArchiveReader):
                self.check_archive(source)
                _check_in_memory(source.total_values, str(source.path))
            out = list(self.decode_stream(source))
        if out and all(o.shape == out[0].shape for o in out):
            return np.stack(out)
        return out

    def decode(self, item: Item, what: str = "item") -> np.ndarray:
        """One ``Item`` -> the uint8 image (H, W) or (H, W, 3)."""
        check_is_fitted(self)
        return self._decode_group([item], [what])[0]

    def decode_stream(self, items: Iterable[Item], where: str = "") -> Iterator[np.ndarray]:
        """Decode items in order, consecutive items of one kind a coding batch at a time."""
        group: list[Item] = []
        labels: list[str] = []
        for k, item in enumerate(items):
            key = (tuple(item.shape), tuple(item.padding), item.quality, item.lossless)
            if group and (key != _key(group[0]) or len(group) == self._coding_batch(group[0].shape)):
                yield from self._decode_group(group, labels)
                group, labels = [], []
            group.append(item)
            labels.append(f"item {k}{where}")
        if group:
            yield from self._decode_group(group, labels)

    def _decode_group(self, items: list[Item], labels: list[str]) -> list[np.ndarray]:
        """Items of one shape, padding and quality (at most one coding batch) -> their images."""
        check_is_fitted(self)
        first, what = items[0], labels[0]
        h, w, c = _item_geometry(first, what, self.net_.stride)
        if c != self.channels_:
            raise DataError(
                f"{what} is a {CHANNEL_NAMES.get(c, f'{c}-channel')} image but this codec handles "
                f"{CHANNEL_NAMES[self.channels_]} images; decompress it with the codec that made it"
            )
        stride = self.net_.stride
        if tuple(first.padding) != (-h % stride, -w % stride):
            raise DataError(
                f"{what} records padding {first.padding}, which this codec (stride {stride}) never makes"
            )
        if not first.lossless and not 1 <= first.quality <= len(self.qualities_):
            raise DataError(f"{what} has quality {first.quality}; this codec has 1..{len(self.qualities_)}")
        level, bins = self._mode(first.quality, first.lossless)
        hp, wp = h + first.padding[0], w + first.padding[1]
        net = self.net_
        size = self._coding_batch((h, w))
        # Nothing is allocated for a file that asks for more than it can honestly hold (aekit.codec.limits)
        image = _image(h, w, c, first.quality, first.lossless)
        least = self._least_payload(level, bins, h, w, c)
        for item, label in zip(items, labels, strict=True):
            if len(item.payload) < least:
                raise DataError(
                    f"{label} holds {len(item.payload):,} bytes of coded data, but a {image} takes at least "
                    f"{least:,} under this codec: the file is damaged, or was not made by this codec"
                )
        need = limits.decode_memory(net.config, hp, wp, size, len(items), bins)
        limits.check_memory(need, f"{what} is a {image}: decoding it")
        payloads = [item.payload for item in items]
        out = decode_images(net, payloads, labels, level, bins, (h, w), size, self.channels_)  # (n, h, w, C)
        return [o[..., 0] if len(item.shape) == 2 else o for o, item in zip(out, items, strict=True)]

    def _least_payload(self, level: int, bins: int, h: int, w: int, c: int) -> int:
        """The fewest coded bytes an item of this size and mode can have: no symbol is free to the coder
        (``aekit.codec.coding.least_payload``), whatever the image."""
        hp, wp = limits.padded_size(h, w, self.net_.stride)
        bits = self.net_.prior.least_bits(level, hp // self.net_.stride, wp // self.net_.stride)
        if bins:  # every pixel of the image (not of the padding), in bins of this width
            bits += h * w * c * alphabet_bits(len(bin_edges(bins)) - 1)
        return least_payload(bits)

    def _mode(self, quality: int, lossless: bool) -> tuple[int, int]:
        """(latent level, pixel bin width: 0 none, 1 exact) of a quality or of lossless mode."""
        if lossless:
            return self.net_.config.lossless_level, 1
        return self.qualities_[quality - 1]

    def _check_refine(self, refine: Any, quality: int | None, lossless: bool) -> int:
        """Refinement steps, checked: a non-negative integer, and only where the latent alone is coded
        (``quality`` None: a target's search, which refines the lossy qualities it tries)."""
        if isinstance(refine, bool) or not isinstance(refine, int | np.integer) or refine < 0:
            raise ConfigError(f"refine must be a whole number of steps, 0 (off) or more; got {refine!r}.")
        if refine and quality is not None and self._mode(quality, lossless)[1]:
            what = "lossless mode" if lossless else f"quality {quality} (near-lossless: its pixels are coded)"
            raise ConfigError(
                f"refine improves the latent of lossy qualities; {what} codes the pixels themselves, so it "
                "would only slow encoding down. Leave refine at 0 there."
            )
        return int(refine)

    def _check_quality(self, quality: Any, lossless: bool) -> int:
        if lossless:
            return LOSSLESS_QUALITY
        if quality is None:
            return self.default_quality
        n = len(self.qualities_)
        if isinstance(quality, bool) or not isinstance(quality, int | np.integer) or not 1 <= quality <= n:
            raise ConfigError(
                f"quality must be an integer from 1 (smallest files) to {n} (best); got {quality!r}."
            )
        return int(quality)

    def _batch(self, images: Any) -> list:
        if isinstance(images, list | tuple):
            if not images:
                raise DataError("got no images to compress; give at least one")
            return list(images)
        arr = np.asarray(images)
        if arr.ndim == 2 or (arr.ndim == 3 and self.channels_ == 3 and arr.shape[-1] == 3):
            return [arr]
        if arr.ndim not in (3, 4) or arr.size == 0:
            raise DataError(
                f"expected images as (N, H, W) or (N, H, W, 3), one image, or a list; got shape {arr.shape}"
            )
        return list(arr)

    def _check_image(self, arr: np.ndarray, what: str) -> np.ndarray:
        limits.check_size(arr.shape[0], arr.shape[1], self.net_.stride, what)
        c = arr.shape[-1] if arr.ndim == 3 else 1
        if c != self.channels_:
            raise DataError(
                f"{what} is {CHANNEL_NAMES.get(c, f'{c}-channel')} but this codec handles "
                f"{CHANNEL_NAMES[self.channels_]} images; convert it (e.g. PIL's "
                f"image.convert({'RGB' if self.channels_ == 3 else 'L'!r})) or use a codec trained on such "
                "images"
            )
        return arr

    def _padded(self, arrs: np.ndarray) -> tuple[Tensor, tuple[int, int]]:
        """uint8 (n, H, W[, C]) -> (n, C, Hp, Wp) on [0, 1], replicate-padded at the bottom and right."""
        n, h, w = arrs.shape[:3]
        x = torch.from_numpy(np.ascontiguousarray(arrs.reshape(n, h, w, -1).transpose(0, 3, 1, 2)))
        x = x.float() / 255
        stride = self.net_.stride
        ph, pw = -h % stride, -w % stride
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, (ph, pw)

    # -- archives -------------------------------------------------------------------------------------------
    def compress_to(
        self,
        path: str | os.PathLike,
        images: Iterable[Any],
        quality: int | None = None,
        lossless: bool = False,
        names: Sequence[str] | None = None,
        codec_name: str | None = None,
        meta: dict[str, Any] | None = None,
        refine: int = 0,
        target_bpp: float | None = None,
        target_psnr: float | None = None,
    ) -> int:
        """Compress ``images`` (any iterable, read one at a time) into an ``.aez`` archive; returns its size.

        The archive appears atomically at ``path`` when every image is in. ``codec_name`` (default: the
        file this codec was loaded from) is recorded so ``aekit decompress`` can find the model.
        ``quality``, ``refine``, ``target_bpp``, ``target_psnr``: see ``compress``.
        """
        check_is_fitted(self)
        q, refine, target = self._plan(quality, lossless, refine, target_bpp, target_psnr)
        name = self.name_ if codec_name is None else codec_name
        labelled = ((im, "" if names is None else names[i], f"image {i}") for i, im in enumerate(images))
        with ArchiveWriter(path, name, self.fingerprint_, meta or {}) as writer:
            for item in self._encode_stream(labelled, q, lossless, refine, target):
                writer.add(item)
        return Path(path).stat().st_size

    def check_archive(self, reader: ArchiveReader) -> None:
        """Refuse an archive made by another model, naming both."""
        check_is_fitted(self)
        if reader.fingerprint != self.fingerprint_:
            raise DataError(
                f"{reader.path} was made by codec {reader.codec_name or '(unnamed)'!r} with fingerprint "
                f"{reader.fingerprint.hex()}, but the given model {self.name_ or '(unsaved)'!r} has "
                f"fingerprint {self.fingerprint_.hex()}; decompress it with the model that made it (--model)"
            )

    @property
    def name_(self) -> str:
        return getattr(self, "_name", "")

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, weights: str = "float32") -> None:
        """Write the codec to one ``.aek`` file (safetensors + JSON), atomically.

        ``weights="float16"`` halves the file: the network's weights are rounded to float16 (here too, so
        the fingerprint is the same before and after loading); the coding tables stay float64.
        """
        from aekit import tensorfile
        from aekit._version import __version__

        check_is_fitted(self)
        if weights not in WEIGHT_DTYPES:
            raise ConfigError(f"weights={weights!r} must be one of {', '.join(WEIGHT_DTYPES)}.")
        state = self.net_.state_dict()
        if weights == "float16":
            with torch.no_grad():
                for t in state.values():
                    if t.dtype == torch.float32:
                        t.copy_(t.half().float())
            self.fingerprint_ = fingerprint(self.net_)
        tensors = {
            k: (t.to(WEIGHT_DTYPES[weights]) if t.dtype == torch.float32 else t) for k, t in state.items()
        }
        params = {k: v for k, v in self.get_params().items()}
        config = self.net_.config.to_dict()
        if not is_auto(params["lambdas"]):
            params["lambdas"] = [float(v) for v in params["lambdas"]]
        if not is_auto(params["pixel_train_bins"]):
            params["pixel_train_bins"] = [int(b) for b in params["pixel_train_bins"]]
        if params["qualities"] is not None and not is_auto(params["qualities"]):
            params["qualities"] = [[int(a), int(b)] for a, b in params["qualities"]]
        if params["run_dir"] is not None:
            params["run_dir"] = str(params["run_dir"])
        doc = {
            "format": FORMAT,
            "format_version": 2 if format2_settings(config) else 1,
            "library_version": __version__,
            "estimator": type(self).__name__,
            "params": params,
            "model_config": config,
            "weights": weights,
            "history": getattr(self, "history_", []),
        }
        if getattr(self, "typicality_", None) is not None:  # None: loaded from a file that predates it
            doc[HEADER_KEY] = codec_typicality.header(self.typicality_, self.typicality_level_)
        tensorfile.save(path, tensors, doc)

    @classmethod
    def pretrained(cls, name: str = "photo") -> ImageCodec:
        """A built-in codec by name (``aekit.codec.builtin``): "photo" for RGB photographs, "photo-gray"
        for grayscale ones; archives it makes record the name, so they decode wherever aekit is installed."""
        from aekit.codec import builtin

        return cls.load(builtin.builtin_path(name), name=name)

    @classmethod
    def load(cls, path: str | os.PathLike, name: str | None = None) -> ImageCodec:
        """Read a codec saved by ``save``; nothing in the file can run code, and its header is checked
        (the network's shapes against the weights included) before the network is built.

        ``name`` is what archives made with it record as the codec (default: the file's absolute path).
        A file that predates typicality loads with ``typicality_`` None.
        """
        from aekit import tensorfile, typicality

        networks, _, doc = tensorfile.load_networks(
            path, "codec file", lambda doc, declared: {"": _check_header(path, doc, declared)}
        )
        net = networks[""]
        config = net.config
        try:
            known = cls().get_params()
            est = cls(**{k: v for k, v in doc["params"].items() if k in known})
            est.history_ = list(doc.get("history", []))
            _check_tables(net)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelFileError(f"{path} is damaged or mismatched: {detail}.") from None
        net.eval()
        est.net_ = net
        est.channels_ = config.channels
        est.qualities_ = config.quality_table()
        est.fingerprint_ = fingerprint(net)
        est._name = str(Path(path).resolve()) if name is None else name
        est.typicality_, est.typicality_level_ = typicality.from_header(
            doc, path, lambda entry: codec_typicality.read(entry, config.levels)
        ) or (None, None)
        return est


def _check_header(path, doc: dict[str, Any], declared: dict) -> Callable[[], CodecNet]:
    """Refuse a codec header that cannot be used; return the builder of its network.

    The coding tables' widths come from the file (one row per latent channel, as long as its widest
    distribution), so the builder sizes them from the declared shapes.
    """
    if doc.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is not an aekit codec file (it holds {doc.get('format')!r}); make one with "
            "'aekit train --task compress' or ImageCodec.fit"
        )
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(
            f"{path} declares codec format {version!r}, which no aekit writes: it is damaged."
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses codec format {version}, newer than this aekit reads (up to {FORMAT_VERSION}); "
            "upgrade aekit: pip install -U aekit."
        )
    config = CodecNetConfig.from_dict(doc["model_config"])
    added = format2_settings(doc["model_config"])
    if version < 2 and added:
        raise ModelFileError(
            f"{path} declares codec format {version} but its settings use {', '.join(added)}, added in "
            "format 2: the file is damaged or was edited by hand. Save the codec again with ImageCodec.save."
        )
    config.validate()
    if not isinstance(doc["params"], dict):
        raise TypeError("params is not a JSON object")
    widths = [declared[f"bottlenecks.{level}.pmfs"].shape[-1] for level in range(config.levels)]

    def build() -> CodecNet:
        net = CodecNet(config)
        for bottleneck, width in zip(net.bottlenecks, widths, strict=True):
            bottleneck.offsets = torch.zeros(bottleneck.channels, dtype=torch.int64)
            bottleneck.lengths = torch.ones(bottleneck.channels, dtype=torch.int64)
            bottleneck.pmfs = torch.zeros(bottleneck.channels, width, dtype=torch.float64)
        return net

    return build


def format2_settings(model_config: dict[str, Any]) -> list[str]:
    """The settings of a model config (``CodecNetConfig.to_dict``, which leaves them out while they hold
    their defaults) that format 2 added: a file that holds any of them is format 2."""
    return [name for name in ADDED_SETTINGS if name in model_config]


def _check_tables(net: CodecNet) -> None:
    """Coding tables the decoder can index: each length within its row, each row a distribution."""
    for level, b in enumerate(net.bottlenecks):
        width = b.pmfs.shape[1]
        if not ((b.lengths >= 1) & (b.lengths <= width)).all() or not torch.isfinite(b.pmfs).all():
            raise ValueError(f"the coding tables of level {level} are damaged")
        if (b.pmfs < 0).any():
            raise ValueError(f"the coding tables of level {level} hold negative probabilities")


def _key(item: Item) -> tuple:
    return (tuple(item.shape), tuple(item.padding), item.quality, item.lossless)


def fingerprint(net: CodecNet) -> bytes:
    """First 16 bytes of sha256 over the config JSON (sorted keys) and the weights in sorted name order."""
    h = hashlib.sha256(json.dumps(net.config.to_dict(), sort_keys=True).encode())
    state = net.state_dict()
    for key in sorted(state):
        h.update(state[key].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()[:16]


# -- helpers ------------------------------------------------------------------------------------------------


def _item_geometry(item: Item, what: str, stride: int) -> tuple[int, int, int]:
    shape = tuple(item.shape)
    if item.dtype != "uint8" or len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise DataError(f"{what} is a {item.dtype} array of shape {shape}, not an image this codec makes")
    if len(item.padding) != 2 or min(shape[:2]) < 1:
        raise DataError(f"{what} has shape {shape} and padding {item.padding}; not an image this codec makes")
    limits.check_size(shape[0], shape[1], stride, what)
    return shape[0], shape[1], shape[2] if len(shape) == 3 else 1


def _image(h: int, w: int, c: int, quality: int, lossless: bool) -> str:
    """'4096 x 4096 RGB image coded lossless': what an item is, for messages."""
    mode = "lossless" if lossless else f"at quality {quality}"
    return f"{h} x {w} {'RGB' if c == 3 else 'grayscale'} image coded {mode}"


def _check_in_memory(values: int, source: str) -> None:
    """``decompress`` returns every image at once (and stacks them): refuse what cannot fit."""
    limits.check_memory(
        2 * values,
        f"decompressing all of {source} at once ({values:,} pixel values, then their stack)",
        "; decode_stream(reader) gives the images one at a time",
    )


def _as_uint8(image: Any, what: str) -> np.ndarray:
    """An 8-bit image (H, W) or (H, W, C): uint8, or integers that all lie in 0..255."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[-1] not in (1, 3)):
        raise DataError(f"{what} has shape {arr.shape}; expected a grayscale (H, W) or RGB (H, W, 3) image")
    if arr.dtype == np.uint8:
        return arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255:
        kind = "float" if np.issubdtype(arr.dtype, np.floating) else str(arr.dtype)
        raise DataError(
            f"{what} is {kind} data{'' if kind != 'float' else ''}; the codec takes 8-bit images: uint8, or "
            "integers in 0..255 (for floats in [0, 1] use np.round(x * 255).astype(np.uint8))"
        )
    out = arr.astype(np.uint8)
    return out[..., 0] if out.ndim == 3 and out.shape[-1] == 1 else out
