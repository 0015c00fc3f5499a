"""``ImageRestorer``: train a restoration network from clean images only, then restore images of any size.

``fit`` cuts random crops from the images up front and trains with the shared Trainer, whose ``pairs``
hook degrades every clean batch on the fly (``aekit.restore.tasks``). ``restore`` pads an image to the
network's stride and, when it is larger than ``tile``, runs overlapping tiles blended with smooth weights,
so memory stays bounded and no seams show.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from aekit import threads
from aekit.device import resolve_device
from aekit.errors import ConfigError, DataError, ModelFileError
from aekit.restore import typicality as restore_typicality
from aekit.restore.builtin import RESTORERS, builtin_for, builtin_names, is_builtin
from aekit.restore.network import RestorationNetConfig, RestorationUNet, luma
from aekit.restore.tasks import (
    MASKS,
    SCALES,
    TASKS,
    Observed,
    Settings,
    Task,
    augment,
    quantize,
    training_input,
)
from aekit.validation import image_list, seed_of

if TYPE_CHECKING:
    from aekit.typicality import Typicality

LOSSES = ("mse", "l1")
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# epochs="auto" aims at about this many optimizer steps: enough for a small network to get well past the
# classical baselines, and a few minutes on a CPU at the default sizes.
AUTO_STEPS = 2000
CHANNEL_NAMES = {1: "grayscale (H, W)", 3: "RGB (H, W, 3)"}
PSNR_CROPS = 256  # training crops scored for psnr_ when no validation crops are held out
# lr="auto": a fresh network's step, and a smaller one for fine-tuning (a large step first undoes what the
# starting model knew).
LR_FRESH, LR_FINE_TUNE = 5e-4, 1e-4
FREEZE = ("encoder", "decoder")  # the halves of the U-Net that fine-tuning can hold fixed


class ImageRestorer(BaseEstimator):
    """Denoise, colorize, upscale or inpaint images with a network trained on clean images only.

    ``task`` picks the degradation (see ``aekit.restore.tasks.TASKS``); ``scale`` (upscale),
    ``noise_sigma`` (denoise, on the [0, 1] scale) and ``mask`` (inpaint: the hole shapes trained on)
    set it up. ``width``, ``depth`` and ``blocks`` size the U-Net; ``crop`` is the side of the square
    training crops, ``crops_per_image`` how many are cut from each training image.

    ``init`` fine-tunes instead of training from scratch: a built-in name (``"denoise"``, ``"upscale-x2"``,
    ...; see ``ImageRestorer.pretrained``) or a restorer's ``.aek`` file of the same task, whose network,
    weights and degradation settings are the starting point (``width``, ``depth``, ``blocks``, ``scale``,
    ``noise_sigma`` and ``mask`` are then the starting model's). ``freeze="encoder"`` (or ``"decoder"``)
    keeps that half's weights as they were.
    """

    def __init__(
        self,
        task: str = "denoise",
        scale: int = 2,
        noise_sigma: float = 25 / 255,
        mask: str = "boxes",
        width: int = 32,
        depth: int = 2,
        blocks: int = 2,
        loss: str = "mse",
        crop: int = 48,
        crops_per_image: int = 1,
        epochs: int | str = "auto",
        batch_size: int = 32,
        lr: float | str = "auto",
        validation_fraction: float = 0.05,
        patience: int | None = 5,
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        init: str | os.PathLike | None = None,
        freeze: str | None = None,
    ):
        self.task = task
        self.scale = scale
        self.noise_sigma = noise_sigma
        self.mask = mask
        self.width = width
        self.depth = depth
        self.blocks = blocks
        self.loss = loss
        self.crop = crop
        self.crops_per_image = crops_per_image
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.run_dir = run_dir
        self.resume = resume
        self.init = init
        self.freeze = freeze

    # -- training -------------------------------------------------------------------------------------------
    def fit(self, images: Any, y: Any = None) -> ImageRestorer:
        """Train on clean images: an array (N, H, W[, 3]) or a list of differently sized images."""
        from aekit.training import TrainConfig, Trainer

        task, settings = self._check_params()
        start = self._starting_model()
        if start is not None:
            settings = start.settings_
        pictures = [_to_float(im, f"image {i}") for i, im in enumerate(image_list(images))]
        channels = _common_channels(pictures)
        if start is not None:
            pictures, channels = _as_start_takes(pictures, channels, start)
        if task.needs_colour and channels != 3:
            raise DataError(
                f"task={self.task!r} learns colour from colour images; got grayscale images. "
                "Train it on RGB images (H, W, 3)."
            )
        seed = seed_of(self.random_state)
        rng = np.random.default_rng(seed)
        multiple = self._crop_multiple(task, settings, start)
        data = torch.from_numpy(self._crops(pictures, rng, multiple))  # (N, C, crop, crop)
        n_val = int(round(len(data) * self.validation_fraction))
        order = torch.from_numpy(rng.permutation(len(data)))
        train, val = data[order[n_val:]], data[order[:n_val]]
        if len(train) == 0:
            raise DataError(
                f"no training crops left after holding out validation_fraction={self.validation_fraction}; "
                "give more images, more crops_per_image (--crops-per-image), or a smaller "
                "validation_fraction (--validation-fraction)"
            )
        config = RestorationNetConfig(
            in_channels=task.observed_channels(channels) + task.extra_inputs(settings),
            out_channels=channels,
            width=self.width,
            depth=self.depth,
            blocks=self.blocks,
            base=task.base,
            keep_luma=task.keep_luma,
            keep_known=task.keep_known,
            loss=self.loss,
        )
        if start is not None:
            config = start.model_.config
        device = resolve_device(self.device)
        self.task_, self.settings_ = task, settings  # the pairs hook reads them
        epochs = self.epochs
        if epochs == "auto":
            epochs = int(np.clip(round(AUTO_STEPS / math.ceil(len(train) / self.batch_size)), 1, 200))
        trainer = Trainer(
            TrainConfig(
                epochs=epochs,
                batch_size=self.batch_size,
                lr=self._lr(),
                patience=self.patience,
                pairs=self.training_pair,
                seed=seed,
                device=device,
                verbose=self.verbose,
                run_dir=Path(self.run_dir) if self.run_dir is not None else None,
                resume=self.resume,
                run_info={"task": self.task},
            )
        )
        devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):  # the caller's global RNG is left as it was
            torch.manual_seed(seed)
            model = RestorationUNet(config)
            if start is not None:
                model.load_state_dict(start.model_.state_dict())
                _freeze(model, self.freeze)
            rows = min(self.batch_size, len(train))
            with threads.for_work(lambda: rows * self.crop**2 * _macs_per_pixel(model), None, device):
                self.history_ = trainer.fit(model, train, val if n_val else None)
        self.model_, self.device_, self.channels_ = model, device, channels
        self.fine_tuned_from_ = None if start is None else str(self.init)
        self.psnr_ = self._psnr_gain(val if n_val else train[:PSNR_CROPS], seed)
        self.psnr_["split"] = "validation" if n_val else "training"
        self._measure_typicality(pictures, seed)
        return self

    @torch.no_grad()
    def _psnr_gain(self, clean: Tensor, seed: int) -> dict[str, Any]:
        """PSNR (dB) of the restored crops and of the task's input (the noisy image, the bicubic
        enlargement, ...) against the clean crops (N, C, h, w), degraded under a fixed seed: what the
        training bought. A few epochs can leave the model no better than its input."""
        gen = torch.Generator().manual_seed(seed)
        x = training_input(self.task_, clean, self.settings_, gen)  # (N, C_in, H, W)
        self.model_.eval()
        restored = torch.cat(
            [self.model_(b.to(self.device_)).recon.clamp(0, 1).cpu() for b in x.split(self.batch_size)]
        )  # (N, C, H, W)
        given = x[:, : self.channels_].expand_as(clean)  # the input's image channels (gray x 3: colorize)
        restored_db, given_db = _psnr_db(restored, clean), _psnr_db(given, clean)
        return {
            "restored": restored_db,
            "input": given_db,
            "gain": restored_db - given_db,
            "input_is": self.task_.baseline,
            "crops": len(clean),
        }

    # -- typicality -----------------------------------------------------------------------------------------
    def typicality(
        self, images: Any, mask: Any = None, sigma: float | None = None, tile: int = 256
    ) -> Typicality:
        """How typical each image (as ``restore`` takes them, with their ``mask`` and ``sigma``) is of the
        training images (``aekit.typicality``, ``aekit.restore.typicality``): its percentile among the
        training images' feature distances ("features"); ``.atypical`` marks those above 99.9. Never
        warns: ``aekit.typicality.check(result)`` does. A file that predates typicality raises
        NoTypicalityError (``fit_typicality`` adds it)."""
        self._typicality_reference()
        features = [
            restore_typicality.pooled(self.model_, self._model_input(im, m, i, level)[2], tile)
            for i, (im, m, level) in enumerate(self._each(images, mask, sigma)[0])
        ]
        return self._typical(features)

    def fit_typicality(self, images: Any) -> ImageRestorer:
        """Measure the training distribution of typicality again on ``images`` (the clean training images;
        up to 256 of them, chosen with random_state), leaving the weights as they are: for a restorer whose
        file predates typicality. Returns self; ``save`` then stores it."""
        check_is_fitted(self)
        pictures = [_to_float(im, f"image {i}") for i, im in enumerate(image_list(images))]
        pictures, _ = _as_start_takes(pictures, _common_channels(pictures), self)
        self._measure_typicality(pictures, seed_of(self.random_state))
        return self

    def _measure_typicality(self, pictures: list[np.ndarray], seed: int) -> None:
        self.typicality_, self.feature_gaussian_ = restore_typicality.measure(
            self.model_, self.task_, self.settings_, pictures, seed
        )

    def _typicality_reference(self):
        from aekit.typicality import not_stored

        check_is_fitted(self)
        if getattr(self, "typicality_", None) is None:
            raise not_stored(f"this {type(self).__name__}")
        return self.typicality_

    def _typical(self, features: list[np.ndarray]) -> Typicality:
        distances = self.feature_gaussian_.distance(np.stack(features))  # (N,)
        return self.typicality_.percentiles({"features": distances})

    def training_pair(self, clean: Tensor) -> tuple[Tensor, Tensor]:
        """(network input, target) from a clean batch (B, C, H, W): the task's degradation, on the fly."""
        clean = augment(clean)
        return training_input(self.task_, clean, self.settings_), clean

    def _check_params(self) -> tuple[Task, Settings]:
        if self.task not in TASKS:
            raise ConfigError(
                f"task={self.task!r} is not a restoration task; choose one of {', '.join(TASKS)}."
            )
        if self.scale not in SCALES:
            raise ConfigError(
                f"scale={self.scale!r} is not supported; choose one of {', '.join(map(str, SCALES))}."
            )
        if not 0 < self.noise_sigma <= 1:
            raise ConfigError(
                f"noise_sigma={self.noise_sigma!r} is on the [0, 1] scale and must lie in (0, 1]; "
                "for sigma 25 on the 0-255 scale give 25/255."
            )
        if self.mask not in MASKS:
            raise ConfigError(f"mask={self.mask!r} is not a mask shape; choose one of {', '.join(MASKS)}.")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r} is not one of {', '.join(LOSSES)}.")
        if self.freeze is not None and self.freeze not in FREEZE:
            raise ConfigError(
                f"freeze={self.freeze!r} is not a half of the network; choose "
                f"{' or '.join(map(repr, FREEZE))}."
            )
        if self.freeze is not None and self.init is None:
            raise ConfigError(
                "freeze holds a starting model's weights fixed; it needs init (a built-in name or a .aek "
                "file; --init on the command line)."
            )
        if not (self.lr == "auto" or (isinstance(self.lr, float | int) and self.lr > 0)):
            raise ConfigError(f"lr must be a positive number or 'auto'; got {self.lr!r}.")
        for name in ("width", "blocks", "crop", "crops_per_image", "epochs", "batch_size"):
            value = getattr(self, name)
            if name == "epochs" and value == "auto":
                continue
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}.")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must lie in [0, 1); got {self.validation_fraction!r}.")
        task = TASKS[self.task]
        settings = Settings(
            scale=int(self.scale), noise_sigma=float(self.noise_sigma), mask=self.mask, fill="smooth"
        )
        multiple = self._crop_multiple(task, settings, None)
        if self.init is None and self.crop % multiple:
            crop = max(multiple, self.crop // multiple * multiple)
            raise ConfigError(
                f"crop={self.crop} must be a multiple of {multiple} (the network's stride 2**depth"
                f"{' and the scale' if task.output_scale(settings) > 1 else ''}); try {_crop_setting(crop)}."
            )
        return task, settings

    def _crop_multiple(self, task: Task, settings: Settings, start: ImageRestorer | None) -> int:
        """What the crop side must be a multiple of: the network's stride, and the upscale factor."""
        stride = 2 ** int(self.depth) if start is None else start.model_.stride
        return math.lcm(stride, task.output_scale(settings))

    def _lr(self) -> float:
        if self.lr != "auto":
            return float(self.lr)
        return LR_FRESH if self.init is None else LR_FINE_TUNE

    def _starting_model(self) -> ImageRestorer | None:
        """init's restorer (a built-in name or a file), checked against this one's task and crop."""
        if self.init is None:
            return None
        start = (
            ImageRestorer.pretrained(self.init) if is_builtin(self.init) else ImageRestorer.load(self.init)
        )
        if start.task != self.task:
            raise ConfigError(
                f"init={str(self.init)!r} is a {start.task} model but task={self.task!r}; fine-tune from a "
                f"{self.task} model (built-in: "
                f"{', '.join(n for n in builtin_names() if n.startswith(self.task))})."
            )
        multiple = math.lcm(start.model_.stride, start.task_.output_scale(start.settings_))
        if self.crop % multiple:
            crop = max(multiple, self.crop // multiple * multiple)
            raise ConfigError(
                f"crop={self.crop} must be a multiple of {multiple} for the starting model "
                f"{str(self.init)!r} (its stride{' and scale' if multiple != start.model_.stride else ''}); "
                f"try {_crop_setting(crop)}."
            )
        return start

    def _crops(self, pictures: list[np.ndarray], rng: np.random.Generator, multiple: int) -> np.ndarray:
        """Random square crops, cut once up front: (N * crops_per_image, C, crop, crop) float32."""
        c = self.crop
        out = np.empty((len(pictures) * self.crops_per_image, pictures[0].shape[-1], c, c), np.float32)
        k = 0
        for i, im in enumerate(pictures):
            h, w = im.shape[:2]
            if h < c or w < c:
                fits = min(h, w) // multiple * multiple  # the largest crop this image and network allow
                fix = f"use {_crop_setting(fits)}, or " if fits else ""
                raise DataError(
                    f"image {i} is {w}x{h}, smaller than the training crop {c}x{c}; {fix}leave the image out"
                )
            for _ in range(self.crops_per_image):
                top, left = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
                out[k] = im[top : top + c, left : left + c].transpose(2, 0, 1)
                k += 1
        return out

    # -- restoring ------------------------------------------------------------------------------------------
    def restore(
        self,
        images: Any,
        mask: Any = None,
        tile: int = 256,
        sigma: float | None = None,
        return_typicality: bool = False,
    ) -> Any:
        """Restore one image (H, W[, 3]), a batch (N, H, W[, 3]) or a list of images of any sizes.

        Returns the same layout and dtype: uint8 in, uint8 out; float in [0, 1] in, float32 out. An
        upscale model takes the small image and returns the large one. ``mask`` (inpaint only): an
        (H, W) array, nonzero where pixels are missing, one per image or one for all. ``tile`` bounds
        memory: larger images run as overlapping tiles of about this side, blended without seams.
        ``sigma`` (blind denoise models only): the noise level when it is known, on the [0, 1] scale
        (25/255 for sigma 25); left out, each image's level is estimated from the image itself.
        ``return_typicality=True`` returns (restored, ``typicality(images)``), each image prepared once.
        """
        if return_typicality:
            self._typicality_reference()
        jobs, single = self._each(images, mask, sigma)
        features: list[np.ndarray] = []
        out = [
            self._restore_one(im, m, tile, i, level, features if return_typicality else None)
            for i, (im, m, level) in enumerate(jobs)
        ]
        if single:
            result = out[0]
        elif isinstance(images, np.ndarray):
            result = np.stack(out)
        else:
            result = out
        return (result, self._typical(features)) if return_typicality else result

    def _each(self, images: Any, mask: Any, sigma: float | None) -> tuple[list[tuple], bool]:
        """[(image, its mask, the noise level)] of what ``restore`` takes, checked; and whether it was one
        image rather than a batch."""
        check_is_fitted(self)
        if self.task_ is not TASKS[self.task]:  # set_params after fit would make restore lie
            raise ConfigError("the task changed after fitting; fit again or load the model file anew.")
        level = self._check_sigma(sigma)
        single = _is_single(images, self.channels_, self.task)
        batch = [images] if single else image_list(images)
        masks = _masks_for(mask, len(batch), self.task)
        return [(im, m, level) for im, m in zip(batch, masks, strict=True)], single

    def _check_sigma(self, sigma: float | None) -> Tensor | None:
        if sigma is None:
            return None
        if not self.settings_.blind:
            raise ConfigError(
                f"sigma is for blind denoise models (such as the built-in 'denoise'); this {self.task} model "
                + ("was trained on one noise level." if self.task == "denoise" else "has no noise level.")
            )
        if not isinstance(sigma, float | int) or not 0 <= sigma <= 1:
            raise ConfigError(
                f"sigma={sigma!r} is on the [0, 1] scale: give 25/255 for sigma 25 on the 0-255 scale."
            )
        return torch.tensor([float(sigma)])

    def _model_input(
        self, image: Any, mask: Any, index: int, sigma: Tensor | None
    ) -> tuple[np.ndarray, bool, Tensor]:
        """(the image as an array, whether it is a gray photo for an RGB model, the network's input)."""
        arr = np.asarray(image)
        x = _to_float(arr, f"image {index}")  # (H, W, C)
        x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(self.device_)  # (1, C, H, W)
        gray_in = x.shape[1] == 1 and self.channels_ == 3 and self.settings_.grayscale
        if gray_in:  # a gray photo for a model trained on gray ones too, as three equal channels
            x = x.expand(-1, 3, -1, -1)
        x = self._check_channels(x, index)
        obs = Observed(x, self._mask_tensor(mask, x, index), sigma)
        return arr, gray_in, self.task_.prepare(obs, self.settings_)  # (1, C_in, H', W')

    def _restore_one(
        self,
        image: Any,
        mask: Any,
        tile: int,
        index: int,
        sigma: Tensor | None,
        features: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """One image restored; with ``features``, the image's typicality features are appended to it."""
        arr, gray_in, model_input = self._model_input(image, mask, index, sigma)
        if features is not None:
            features.append(restore_typicality.pooled(self.model_, model_input, tile))
        pixels = min(model_input.shape[-2], tile) * min(model_input.shape[-1], tile)  # run_tiled's pieces
        with threads.for_work(lambda: pixels * _macs_per_pixel(self.model_), None, self.device_):
            y = run_tiled(self.model_, model_input, tile)[0].clamp(0, 1)  # (C, H', W')
        if gray_in:
            y = y.mean(dim=0, keepdim=True)  # (1, H', W'): the channels agree up to the network's error
        y = y.permute(1, 2, 0).cpu().numpy()  # (H', W', C)
        if y.shape[-1] == 1 and arr.ndim == 2:
            y = y[..., 0]
        if arr.dtype == np.uint8:
            return np.round(y * 255).astype(np.uint8)
        return y.astype(np.float32)

    def _check_channels(self, x: Tensor, index: int) -> Tensor:
        want = self.task_.observed_channels(self.channels_)
        have = x.shape[1]
        if have == want:
            return x
        if (
            self.task == "colorize" and have == 3
        ):  # a colour photo to recolour: its 8-bit luminance is the input
            return quantize(luma(x))
        raise DataError(
            f"image {index} is {CHANNEL_NAMES.get(have, f'{have}-channel')} but this {self.task} model "
            f"takes {CHANNEL_NAMES.get(want, f'{want}-channel')} images; convert the image "
            f"(e.g. PIL's image.convert({'RGB' if want == 3 else 'L'!r})) or use a model trained on "
            "such images"
        )

    def _mask_tensor(self, mask: Any, x: Tensor, index: int) -> Tensor | None:
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[-1] in (3, 4):  # a mask drawn in colour: any non-black pixel is a hole
            m = m[..., :3].max(axis=-1)
        if m.shape != tuple(x.shape[-2:]):
            raise DataError(
                f"the mask for image {index} is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]} but the "
                "image "
                f"is {x.shape[-1]}x{x.shape[-2]}; give a mask of the image's size (nonzero = missing)"
            )
        return torch.from_numpy((m > 0).astype(np.float32))[None, None].to(x.device)  # (1, 1, H, W)

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, weights: str = "float32") -> None:
        """Write the fitted restorer to one ``.aek`` file (safetensors + JSON header), atomically.

        ``weights="float16"`` halves the file (how the built-ins ship); loading turns them back to float32.
        """
        from aekit.io import save_model

        check_is_fitted(self)
        if weights not in WEIGHT_DTYPES:
            raise ConfigError(f"weights={weights!r} is not one of {', '.join(map(repr, WEIGHT_DTYPES))}.")
        params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()}
        save_model(
            path,
            _stored(self.model_, WEIGHT_DTYPES[weights]),
            {
                "estimator": type(self).__name__,
                "params": params,
                "restore": {"task": self.task, "settings": dataclasses.asdict(self.settings_)},
                "channels": self.channels_,
                "history": self.history_,
                **self._typicality_header(),
            },
        )

    def _typicality_header(self) -> dict[str, Any]:
        from aekit.typicality import HEADER_KEY

        if getattr(self, "typicality_", None) is None:  # loaded from a file that predates it
            return {}
        return {HEADER_KEY: restore_typicality.header(self.typicality_, self.feature_gaussian_)}

    @classmethod
    def pretrained(cls, name: str, scale: int | None = None, device: str = "auto") -> ImageRestorer:
        """A built-in model, shipped with aekit: no training. ``name``: ``"denoise"`` (blind, grayscale or
        RGB), ``"upscale"`` (with ``scale`` 2 or 4; or ``"upscale-x2"``, ``"upscale-x4"``), ``"inpaint"``
        or ``"colorize"``. How each was trained and what it scores: bench/results/train_restore_*.md."""
        return cls.load(RESTORERS.path(builtin_for(name, scale)), device=device)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> ImageRestorer:
        """Read a restorer saved by ``save``; nothing in the file can run code. A file that predates
        typicality loads with ``typicality_`` None; a damaged typicality entry is one ModelFileError."""
        from aekit import typicality
        from aekit.io import load_model

        model, doc = load_model(path, kind="restorer")
        try:
            known = cls().get_params()
            est = cls(**{k: v for k, v in doc["params"].items() if k in known})
            est.task_ = TASKS[doc["restore"]["task"]]
            est.settings_ = Settings(**doc["restore"]["settings"])
            est.channels_ = int(doc["channels"])
            est.history_ = list(doc.get("history", []))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path} has a damaged header ({type(exc).__name__}: {exc}).") from None
        est.device_ = resolve_device(device)
        est.model_ = model.to(est.device_)
        est.typicality_, est.feature_gaussian_ = typicality.from_header(
            doc, path, lambda entry: restore_typicality.read(entry, restore_typicality.size(model))
        ) or (None, None)
        return est


# -- running the network on images of any size --------------------------------------------------------------


def _macs_per_pixel(model: RestorationUNet) -> float:
    """Multiply-adds per input pixel, for the thread count: counted on the smallest input the network
    takes, since a convolutional network's arithmetic grows with the pixels and no more."""
    side = 4 * model.stride
    return threads.macs_per_row(model, (model.config.in_channels, side, side)) / side**2


@torch.no_grad()
def run_tiled(model: RestorationUNet, x: Tensor, tile: int = 256) -> Tensor:
    """model(x) for one input (1, C_in, H, W) of any size; tiles of ``tile`` pixels with overlap when larger.

    Each tile's output is weighted by a window that falls off linearly over the overlap, and the weighted
    sum is divided by the summed weights, so tiles blend smoothly instead of meeting at a seam.
    """
    stride = model.stride
    if tile < 4 * stride:
        raise ConfigError(
            f"tile={tile} is too small for this model; use at least {4 * stride} (256 is a good size)."
        )
    tile = tile // stride * stride
    model.eval()
    h, w = x.shape[-2:]
    padded = _pad_to(x, stride)  # (1, C_in, Hp, Wp)
    hp, wp = padded.shape[-2:]
    th, tw = min(tile, hp), min(tile, wp)
    if (th, tw) == (hp, wp):
        return model(padded).recon[..., :h, :w]
    overlap = tile // 4
    out = None
    weight = torch.zeros(1, 1, hp, wp, device=x.device)
    window = _window(th, overlap, x.device).view(-1, 1) * _window(tw, overlap, x.device).view(
        1, -1
    )  # (th, tw)
    for top in _starts(hp, th, overlap):
        for left in _starts(wp, tw, overlap):
            y = model(padded[..., top : top + th, left : left + tw]).recon  # (1, C, th, tw)
            if out is None:
                out = torch.zeros(1, y.shape[1], hp, wp, device=x.device)
            out[..., top : top + th, left : left + tw] += y * window
            weight[..., top : top + th, left : left + tw] += window
    return (out / weight)[..., :h, :w]


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    # reflect continues the image's texture; it needs the image to be larger than the pad
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _starts(size: int, length: int, overlap: int) -> list[int]:
    if length >= size:
        return [0]
    step = length - overlap
    starts = list(range(0, size - length, step))
    return [*starts, size - length]


def _window(length: int, overlap: int, device) -> Tensor:
    """1 in the middle, falling linearly to a small positive value over ``overlap`` at both ends."""
    i = torch.arange(length, device=device, dtype=torch.float32)
    ramp = torch.minimum(i + 1, length - i) / (overlap + 1)
    return ramp.clamp(max=1.0)


def _stored(model: RestorationUNet, dtype: torch.dtype) -> RestorationUNet:
    """The model as it is written: a float16 copy for ``weights="float16"``."""
    return model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)


def _freeze(model: RestorationUNet, half: str | None) -> None:
    """Hold the encoder (input layer and the levels down) or the decoder (levels up, output) fixed."""
    from aekit.training.freeze import freeze

    if half is not None:
        freeze(model, ("head", "enc", "down") if half == "encoder" else ("up", "dec", "tail"))


def _as_start_takes(pictures: list[np.ndarray], channels: int, start: ImageRestorer) -> tuple[list, int]:
    """Training images in the starting model's channels: gray ones as three equal channels for an RGB
    model trained on gray photos too; anything else must match."""
    if channels == start.channels_:
        return pictures, channels
    if channels == 1 and start.channels_ == 3 and start.settings_.grayscale:
        return [np.repeat(p, 3, axis=-1) for p in pictures], 3
    raise DataError(
        f"the training images are {CHANNEL_NAMES[channels]} but the starting model takes "
        f"{CHANNEL_NAMES[start.channels_]} images; convert them (e.g. PIL's convert("
        f"{'RGB' if start.channels_ == 3 else 'L'!r}))"
    )


def _psnr_db(image: Tensor, reference: Tensor) -> float:
    mse = float(torch.mean((image.double() - reference.double()) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _crop_setting(crop: int) -> str:
    """A crop side as the user sets it: the parameter here, the option on the command line."""
    return f"crop={crop} (--crop {crop} on the command line)"


# -- input checks --------------------------------------------------------------------------------------------


def _is_single(images: Any, channels: int, task: str) -> bool:
    """One image (H, W) or (H, W, C) rather than a batch; (H, W, 3) counts as one RGB image."""
    if isinstance(images, list | tuple):
        return False
    arr = np.asarray(images)
    return arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4))  # 4: RGBA, refused with a reason


def _to_float(image: Any, name: str) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 or float in [0, 1] -> (H, W, C) float32 in [0, 1]."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or min(arr.shape[:2]) < 1:
        alpha = (
            " without an alpha channel (image[..., :3] drops it)"
            if arr.ndim == 3 and arr.shape[-1] == 4
            else ""
        )
        raise DataError(
            f"{name} has shape {arr.shape}; expected a grayscale (H, W) or RGB (H, W, 3) image{alpha}"
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{name} is {arr.dtype}; give uint8 (0-255) or float images in [0, 1]")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise DataError(
            f"{name} has values outside [0, 1] (or NaN); float images must lie in [0, 1]: "
            "divide 0-255 data by 255"
        )
    return arr.astype(np.float32)


def _common_channels(pictures: list[np.ndarray]) -> int:
    counts = {p.shape[-1] for p in pictures}
    if len(counts) > 1:
        raise DataError(
            "the training images mix grayscale and RGB; convert them all to one (e.g. PIL's convert('RGB'))"
        )
    return counts.pop()


def _masks_for(mask: Any, n: int, task: str) -> list:
    if task != "inpaint":
        if mask is not None:
            raise ConfigError(f"mask is for inpaint models only; this is a {task} model.")
        return [None] * n
    if mask is None:
        raise DataError(
            "an inpaint model needs a mask: an (H, W) array or image, nonzero where pixels are missing "
            "(aekit restore: --mask FILE)"
        )
    if isinstance(mask, list | tuple):
        if len(mask) != n:
            raise DataError(f"got {len(mask)} masks for {n} images; give one mask per image, or one for all")
        return list(mask)
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] not in (3, 4):  # a stack of masks, one per image
        if len(m) != n:
            raise DataError(f"got {len(m)} masks for {n} images; give one mask per image, or one for all")
        return list(m)
    return [m] * n
