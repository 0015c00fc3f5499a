"""``AutoEncoder``: every family behind scikit-learn's estimator contract.

``fit`` learns the data scaling and trains; ``transform`` encodes, ``inverse_transform`` decodes,
``score_samples`` is the negative reconstruction error (higher = more normal).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aekit import threads
from aekit.data.scaling import DataSpec, check_array, check_like, fit_spec
from aekit.device import resolve_device
from aekit.errors import ConfigError, DataError, PosteriorCollapseWarning
from aekit.typicality import MAX_ROWS as MAX_TYPICAL_ROWS

if TYPE_CHECKING:
    from aekit.typicality import Typicality

PREDICT_BATCH = 1024
# Batches shorter than this are padded up to it: the CPU's BLAS and convolution kernels take another path
# (matrix-vector) for one to three rows, whose sums round differently, so a row would score differently
# alone than in a batch. From four rows on (measured, 1 and 2 threads) a row gets the same bits whatever
# its batch or position; eight leaves a margin and costs nothing.
MIN_PREDICT_ROWS = 8
# transform and friends read a path or Source at most this many bytes of scaled rows at a time (whole
# batches), and less under a small memory budget (aekit.data.lazy.working_bytes)
SOURCE_CHUNK_BYTES = 16 << 20
# Default importance samples for log_likelihood: a tenth of the time of k=1000, and on the MNIST benchmark
# model only 0.6 nats looser (test NLL 88.21 vs 87.58 nats; docs/generate.md).
IW_SAMPLES = 100
# A VAE whose codes hold less than this KL from the prior (nats per sample, summed over the code) has
# collapsed: its decoder ignores the code. Dense VAEs on 8x8 digits start at about 1.5 nats and keep 0.3
# and more after a few epochs; collapsed ones (beta 20) fall to about 0.02.
COLLAPSE_KL_NATS = 0.1
COLLAPSE_ROWS = 2048  # samples the KL is measured on, before and after training


class AutoEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """An autoencoder of any family (``kind``: dense, conv, sparse, vae, conv1d), trained by one trainer.

    Parameters that belong to some families only (``sparsity``, ``rho``, ``beta``, ``backbone``,
    ``downsample``) are rejected for the others when set to a non-default value. Denoising (``noise``) works
    with every family. ``kind="conv1d"`` takes series (N, T) or channels last (N, T, C) and gives them back
    in that layout; ``downsample="pool"`` makes a convolutional model (conv, conv1d, or backbone="conv")
    halve by max-pooling and double by up-sampling instead of by strided convolutions.
    ``epochs="auto"`` trains for about 4000 optimizer steps (10 to 200 epochs), stopping early when the
    validation loss has not improved for ``patience`` epochs.

    ``loss="auto"`` is binary cross-entropy for data the model sees in [0, 1] (images, and tables already in
    that range) and mean squared error otherwise; ``loss_`` says which after fit.
    ``binarize=True`` (loss="bce", data in [0, 1]) trains on dynamically binarised data: every batch sees
    each pixel as a fresh Bernoulli sample of its intensity (validation batches under a fixed seed).
    ``kl_warmup`` (kind="vae") raises the KL weight linearly from 0 to ``beta`` over that many epochs.
    VAEs also generate: ``sample``, ``traverse`` and ``log_likelihood``; ``interpolate`` works for every kind.
    ``n_jobs`` sets torch's CPU threads while it fits and applies the model: None picks them from the work
    per batch (one for small models, which more threads slow down), -1 uses every usable core, N uses N.

    ``ordered=True`` trains with nested dropout (Rippel et al., ICML 2014) so that every prefix of the code
    is a usable smaller code; ``reconstruction_curve_`` then holds the error (MSE in the scaled space) at
    every prefix length on the validation rows, and ``inverse_transform`` takes any prefix. ``code_size=
    "auto"`` trains such a model with min(64, n_features // 2) units and keeps the shortest prefix whose
    error is within ``code_tolerance`` (0.05: 5%) of the full code's: ``code_size_`` columns.

    ``encoder`` and ``decoder`` replace the built-in networks with your own ``nn.Module``s (docs/
    custom_networks.md): the encoder maps a batch (N, *sample shape) (channels first for images) to features
    that a linear head maps to the code (for kind="vae" to its mean and log-variance), the decoder maps codes
    (N, code_size) to logits of the sample shape. Training starts from their weights and leaves them as they
    are; load such a model with ``AutoEncoder.load(path, modules=[MyEncoder, MyDecoder])``.

    ``init_from`` (a fitted AutoEncoder or its .aek file) starts training from that model's weights: its
    network (kind, code_size, hidden, decoder_hidden, activation, backbone, downsample, sparsity) is taken
    from it, and giving one of these another value than its default and the starting model's is a
    ConfigError; loss, beta, the other weights and the training settings are this estimator's own. With
    ``scaling="auto"`` and samples of the starting model's shape, its data scaling is kept too.
    ``freeze="encoder"``, ``"decoder"`` or a list of layer names (those of ``layer_outputs``) holds those
    weights fixed (bit-identical after training). ``layer_outputs`` gives every layer's outputs and
    ``transform(X, layer=name)`` one layer's (docs/transfer_and_layers.md).
    """

    def __init__(
        self,
        kind: str = "dense",
        code_size: int = 32,
        hidden: tuple[int, ...] | None = None,
        decoder_hidden: tuple[int, ...] | None = None,
        activation: str = "relu",
        loss: str = "auto",
        noise: str | None = None,
        noise_level: float = 0.2,
        sparsity: str = "l1",
        sparsity_weight: float = 1e-3,
        rho: float = 0.05,
        beta: float = 1.0,
        backbone: str | None = None,
        downsample: str = "stride",
        epochs: int | str = "auto",
        batch_size: int = 128,
        lr: float = 6e-3,
        weight_decay: float = 0.0,
        schedule: str = "onecycle",
        validation_fraction: float = 0.1,
        patience: int | None = 5,
        scaling: str = "auto",
        device: str = "auto",
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        binarize: bool = False,
        kl_warmup: int = 0,
        ordered: bool = False,
        code_tolerance: float = 0.05,
        encoder: Any = None,
        decoder: Any = None,
        init_from: str | os.PathLike | AutoEncoder | None = None,
        freeze: str | list[str] | None = None,
    ):
        self.kind = kind
        self.code_size = code_size
        self.hidden = hidden
        self.decoder_hidden = decoder_hidden
        self.activation = activation
        self.loss = loss
        self.noise = noise
        self.noise_level = noise_level
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.rho = rho
        self.beta = beta
        self.backbone = backbone
        self.downsample = downsample
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scaling = scaling
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.run_dir = run_dir
        self.resume = resume
        self.binarize = binarize
        self.kl_warmup = kl_warmup
        self.ordered = ordered
        self.code_tolerance = code_tolerance
        self.encoder = encoder
        self.decoder = decoder
        self.init_from = init_from
        self.freeze = freeze

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> AutoEncoder:
        """Learn the scaling and train the model on ``X``; ``y`` is ignored (present for pipelines).

        ``X`` is an array, or data too large for memory: a path (.npy, .npz, .csv, .parquet, a folder of
        images) or an ``aekit.data.sources.Source``. Those are read into memory when they fit the memory
        budget (``aekit.data.lazy.memory_budget``), and else read, shuffled by blocks and scaled batch by
        batch (``LazyData``), with the scaling fitted in one streaming pass.
        """
        import torch

        from aekit.data.lazy import LazyData, fits_in_memory, streaming_spec, working_bytes
        from aekit.estimators import ordered, transfer
        from aekit.models import build_model
        from aekit.training import TrainConfig, Trainer

        start = transfer.starting_model(self)  # init_from: a copy with its network trains (transfer.py)
        if start is not None:
            return transfer.fit_from(self, start, X)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must lie in [0, 1); got {self.validation_fraction!r}.")
        threads.resolve(self.n_jobs)  # a bad n_jobs is refused before the data is read
        is_ordered = ordered.check_settings(self.ordered, self.code_size, self.code_tolerance)
        source = _source_of(X)
        if source is not None and fits_in_memory(source):
            X, source = source.read_all(), None  # small enough: the in-memory fast path, same results
        seed = self._seed()
        device = resolve_device(self.device)
        if source is None:
            x = check_array(X)
            spec = transfer.starting_scaling(self, x)  # fitting from init_from: maybe its scaling
            spec = spec or fit_spec(x, self.scaling, self.loss, series=self._takes_series())
            data = torch.from_numpy(spec.to_model(x))
            train, val = _split(data, self.validation_fraction, seed)
        else:
            spec = transfer.starting_scaling(self, source)
            spec = spec or streaming_spec(source, self.scaling, self.loss, series=self._takes_series())
            data = LazyData(source, spec, window_bytes=working_bytes())
            train, val = data.split(self.validation_fraction, seed)
        epochs = _resolve_epochs(self.epochs, len(train), self.batch_size)
        self.loss_ = self._resolved_loss(spec)
        settings = self._model_settings(spec)
        settings.update(self._warmup_settings(len(train)))
        settings["code_size"] = ordered.code_units(self.code_size, spec.n_features)  # "auto": a maximum
        settings.update(self._networks(spec, settings["code_size"]))
        train_config = TrainConfig(
            epochs=epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            patience=self.patience,
            noise=self.noise,
            noise_level=self.noise_level,
            value_range=spec.value_range,
            pairs=self._pairs(spec),
            seed=seed,
            device=device,
            verbose=self.verbose,
            run_dir=Path(self.run_dir) if self.run_dir is not None else None,
            resume=self.resume,
            run_info={
                "task": "reconstruct",
                "kind": self.kind,
                "code_size": self.code_size,
                "noise": self.noise,
            },
        )
        trainer = Trainer(train_config)
        # All randomness comes from seed; fork_rng restores the caller's global RNG state afterwards.
        devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
        self._check_fits(settings, (min(int(self.batch_size), len(train)), *spec.input_shape), device)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = build_model(self.kind, settings, **self._modules())
            self._start_from_networks(model)
            transfer.load_start(self, model, spec)  # init_from's weights, and freeze
            self._check_copying(model, spec)
            kl_start = _code_kl(model, train, val)
            rows = min(int(self.batch_size), len(train))

            def step() -> int:  # multiply-adds of one training batch's forward pass
                return rows * threads.macs_per_row(model, spec.input_shape)

            with threads.for_work(step, self.n_jobs, device):
                with ordered.nested_dropout(model, enabled=is_ordered):
                    history = trainer.fit(model, train, val)
                if is_ordered:  # the error at every prefix length, on validation rows
                    curve = ordered.reconstruction_curve(model, ordered.curve_rows(train, val, seed))
        self.model_ = model  # stays on the training device for transform and friends
        self.spec_ = spec
        self.history_ = history
        self._check_collapse(kl_start, _code_kl(model, train, val))
        self.n_features_in_ = spec.n_features
        self.__dict__.pop("reconstruction_curve_", None)  # a refit without ordered=True has no curve
        self.code_size_ = model.config.code_size  # the width transform returns
        if is_ordered:
            self.reconstruction_curve_ = curve
            if self.code_size == "auto":
                self.code_size_ = ordered.smallest_within(curve, self.code_tolerance)
        self._n_features_out = self.code_size_
        self.device_ = device
        self._measure_typicality(_typicality_rows(train, val, seed))
        return self

    # -- typicality -----------------------------------------------------------------------------------------
    def typicality(self, X: Any) -> Typicality:
        """How typical each sample of ``X`` is of the training data (``aekit.typicality``): its percentile
        among the training samples' reconstruction errors ("reconstruction") and Mahalanobis code distances
        from the training codes ("code"). ``.percentile`` is the higher of the two per sample, ``.atypical``
        marks those above 99.9 and ``.rows`` lists them. It never warns: ``aekit.typicality.check(result)``
        warns (TypicalityWarning) or, with strict=True, raises. A model loaded from a file that predates
        typicality raises NoTypicalityError (``fit_typicality`` adds it)."""
        self._typicality_reference()
        errors, codes = self._map(self._statistics, X)
        return self._typical(errors, codes)

    def fit_typicality(self, X: Any) -> AutoEncoder:
        """Measure the training distribution of typicality again on ``X`` (the training data; up to
        MAX_ROWS of it, chosen with random_state), leaving the weights as they are: for a model whose file
        predates typicality. Returns self; ``save`` then stores it."""
        check_is_fitted(self)
        x = self._scaled(X)
        if len(x) > MAX_TYPICAL_ROWS:
            pick = np.random.default_rng(self._seed()).choice(len(x), MAX_TYPICAL_ROWS, replace=False)
            x = x[np.sort(pick)]
        self._measure_typicality(x)
        return self

    def _measure_typicality(self, rows: np.ndarray) -> None:
        """Set typicality_ (the statistics' quantiles) and code_gaussian_ from scaled training rows."""
        from aekit.typicality import CodeGaussian, Reference

        errors, codes = self._apply(self._statistics, rows)
        self.code_gaussian_ = CodeGaussian.fit(codes)
        self.typicality_ = Reference.of(
            {"reconstruction": errors, "code": self.code_gaussian_.distance(codes)}
        )

    def _statistics(self, batch):
        """The two statistics' raw inputs for a scaled batch: per-sample error (B,) and codes (B, width)."""
        return self._statistics_and_recon(batch)[1:]

    def _statistics_and_recon(self, batch):
        from aekit import losses

        out = self._forward(batch)
        error = losses.per_sample_error(self.model_.config.loss, out, batch)  # (B,)
        return out.recon, error, out.code[:, : self._width()]  # (B, *input_shape), (B,), (B, width)

    def _typicality_reference(self):
        from aekit.typicality import not_stored

        check_is_fitted(self)
        if getattr(self, "typicality_", None) is None:
            raise not_stored(f"this {type(self).__name__}")
        return self.typicality_

    def _typical(self, errors: np.ndarray, codes: np.ndarray) -> Typicality:
        distances = self.code_gaussian_.distance(codes)
        return self.typicality_.percentiles({"reconstruction": errors, "code": distances})

    def _check_collapse(self, kl_start: float | None, kl: float | None) -> None:
        """Warn (PosteriorCollapseWarning) when training has pulled a VAE's codes onto the prior: their KL
        fell below COLLAPSE_KL_NATS, and to under half of what the untrained model had (some small conv
        VAEs start below it, and a few steps do not make that a collapse)."""
        import warnings

        from aekit.training.distributed import is_main

        if kl is None or kl_start is None or not self.beta > 0 or not is_main():
            return  # not a VAE; or nothing pulls its codes to the prior; or another process warns
        if kl >= COLLAPSE_KL_NATS or kl >= kl_start / 2:
            return
        warm = max(len(self.history_) // 3, 2 * int(self.kl_warmup), 1)
        smaller = f"{self.beta / 4:.3g}"
        warnings.warn(
            f"posterior collapse: the VAE's codes hold {kl:.3g} nats per sample (KL from the prior; "
            f"below {COLLAPSE_KL_NATS} they say almost nothing about the input), so the decoder ignores "
            "them and every sample and reconstruction is the same blurry average. Train again with a KL "
            f"warm-up (kl_warmup={warm}; --kl-warmup {warm} on the command line) or a smaller beta (now "
            f"{self.beta:g}; e.g. beta={smaller}, --beta {smaller}).",
            PosteriorCollapseWarning,
            stacklevel=3,
        )

    def _check_copying(self, model: Any, spec: DataSpec) -> None:
        """Warn (CopyWarning) when nothing stops the model from learning the identity: a code as wide as
        the input, no noise to remove and no penalty on the code (sparse and variational models have one)."""
        import warnings

        from aekit.errors import CopyWarning
        from aekit.training.distributed import is_main

        code, n = model.config.code_size, spec.n_features
        if code < n or self.noise is not None or model.restrains_code or not is_main():
            return
        warnings.warn(
            f"code_size={code} is as wide as the input ({n} features) and nothing stops the model from "
            "learning to copy it: its codes will say nothing the data did not, and its reconstruction "
            "error will be near 0 for any input. Use a smaller code (e.g. "
            f"code_size={max(1, n // 4)}), a denoising autoencoder (noise='gaussian', --noise gaussian) "
            "or a penalty on the code (kind='sparse' or kind='vae').",
            CopyWarning,
            stacklevel=4,
        )

    def _check_fits(self, settings: dict[str, Any], batch: tuple[int, ...], device: str) -> None:
        """Refuse, before allocating anything, a model whose training would not fit in memory."""
        import torch

        from aekit import memory
        from aekit.models.footprint import meta_model, parameter_bytes, training_bytes

        model = meta_model(self.kind, settings, **self._modules())
        need = training_bytes(model, batch)
        if device.startswith("cuda"):
            have, where = torch.cuda.mem_get_info(torch.device(device))[0], f"free on {device}"
        else:
            have, where = memory.memory_left(), "of memory left to this process"
        if have is None or need <= have:
            return
        weights = parameter_bytes(model) // 4
        images = self.kind != "conv" and len(settings["input_shape"]) == 3
        hint = "Images train far smaller with kind='conv'. " if images else ""
        raise ConfigError(
            f"kind={self.kind!r} (code_size={model.config.code_size}, hidden={self.hidden!r}) on inputs of "
            f"shape {tuple(settings['input_shape'])} has {weights:,} weights and needs about "
            f"{memory.size_text(need)} to train at batch_size {batch[0]}, more than the "
            f"{memory.size_text(have)} {where}. "
            f"{hint}Make code_size, hidden or batch_size smaller."
        )

    def _takes_series(self) -> bool:
        """Whether the model takes series (kind="conv1d"): the data spec keeps time and channels apart."""
        from aekit.models import FAMILIES
        from aekit.models.registry import input_layout

        return self.kind in FAMILIES and input_layout(self.kind, self.backbone) == "series"

    def _networks(self, spec: DataSpec, code_size: int) -> dict[str, Any]:
        """{"networks": ...} for encoder= and decoder= (``models/custom.py``), checked now, so that neither
        save nor load can fail on them later; {} for the built-in networks."""
        from aekit.models import custom

        if self.encoder is None and self.decoder is None:
            return {}
        if self.encoder is None or self.decoder is None:
            given, absent = ("encoder", "decoder") if self.decoder is None else ("decoder", "encoder")
            raise ConfigError(
                f"{given}= is given but {absent}= is not; your own networks come as a pair: the encoder maps "
                "a batch (N, *sample shape) to features, the decoder maps codes (N, code_size) back."
            )
        defaults = type(self)().get_params()
        for name in ("hidden", "decoder_hidden", "activation", "backbone", "downsample"):
            if name in defaults and getattr(self, name) != defaults[name]:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} shapes aekit's built-in networks, which encoder= and "
                    f"decoder= replace; leave it at {defaults[name]!r}."
                )
        return {"networks": custom.describe_networks(self.encoder, self.decoder, spec.input_shape, code_size)}

    def _modules(self) -> dict[str, Any]:
        """build_model's options for encoder= and decoder=: their classes; none for the built-in networks."""
        return {} if self.encoder is None else {"modules": (type(self.encoder), type(self.decoder))}

    def _start_from_networks(self, model: Any) -> None:
        """A model of encoder= and decoder= starts from their weights (pretrained ones stay so)."""
        from aekit.models import custom

        if self.encoder is not None:
            custom.start_from(model, self.encoder, self.decoder)

    def _seed(self) -> int:
        from aekit.validation import seed_of

        return seed_of(self.random_state)

    def _model_settings(self, spec: DataSpec) -> dict[str, Any]:
        """The family's config fields, taken from this estimator's parameters of the same names."""
        from aekit.models import FAMILIES

        if self.kind not in FAMILIES:
            raise ConfigError(
                f"kind={self.kind!r} is not a model family; choose one of {', '.join(FAMILIES)}."
            )

        def fields(config_class) -> set[str]:
            return {f.name for f in dataclasses.fields(config_class)}

        own = fields(FAMILIES[self.kind].config_class)
        defaults = type(self)().get_params()
        settings: dict[str, Any] = {}
        for name, value in self.get_params().items():
            if name in own and value is not None:
                settings[name] = tuple(value) if name in ("hidden", "decoder_hidden") else value
                continue
            owners = [k for k, cls in FAMILIES.items() if name in fields(cls.config_class)]
            if owners and value != defaults[name]:  # a setting of other families, given a value
                raise ConfigError(
                    f"{name}={value!r} applies to kind={' or '.join(map(repr, owners))}, "
                    f"not kind={self.kind!r}."
                )
        settings["input_shape"] = spec.input_shape
        settings["output"] = "sigmoid" if spec.value_range == (0.0, 1.0) else "identity"
        settings["loss"] = self._resolved_loss(spec)
        if settings["loss"] == "bce" and settings["output"] != "sigmoid":
            raise DataError("loss='bce' needs data in [0, 1]; rescale the data or use scaling='minmax'.")
        return settings

    def _resolved_loss(self, spec: DataSpec) -> str:
        """``loss``, with "auto" made concrete: the usual advice, cross-entropy for data in [0, 1] (each
        value a probability the sigmoid output can match) and squared error for everything else."""
        if self.loss != "auto":
            return self.loss
        return "bce" if spec.value_range == (0.0, 1.0) else "mse"

    def _pairs(self, spec: DataSpec):
        if not self.binarize:
            return None
        if self._resolved_loss(spec) != "bce" or spec.value_range != (0.0, 1.0):
            raise ConfigError(
                f"binarize=True samples binary pixels from intensities in [0, 1] and trains a Bernoulli "
                f"likelihood; it needs loss='bce' and data in [0, 1] (uint8 images, or floats in [0, 1]); "
                f"got loss={self.loss!r} and data scaled to {spec.value_range}. "
                "Set loss='bce' or binarize=False."
            )
        return bernoulli_pairs

    def _warmup_settings(self, n_train: int) -> dict[str, Any]:
        """The model's KL warm-up in optimizer steps, from ``kl_warmup`` in epochs."""
        from aekit.models import FAMILIES

        warmup = self.kl_warmup
        if not isinstance(warmup, int | np.integer) or isinstance(warmup, bool) or warmup < 0:
            raise ConfigError(f"kl_warmup is a number of epochs, a whole number >= 0; got {warmup!r}.")
        if not warmup:
            return {}
        fields = {f.name for f in dataclasses.fields(FAMILIES[self.kind].config_class)}
        if "kl_warmup_steps" not in fields:
            raise ConfigError(
                f"kl_warmup={warmup!r} warms up a KL term, which only kind='vae' has (this is "
                f"kind={self.kind!r}); set kl_warmup=0 or kind='vae'."
            )
        steps_per_epoch = -(-n_train // max(1, int(self.batch_size)))
        return {"kl_warmup_steps": int(warmup) * steps_per_epoch}

    # -- applying -------------------------------------------------------------------------------------------
    def _apply(self, fn, arrays: np.ndarray, passes: int = 1) -> np.ndarray:
        """Run ``fn`` over ``arrays`` in batches with gradients off; concatenate the numpy results.

        ``passes``: forward passes ``fn`` makes per row, for the thread count. That count follows from the
        model and a full batch, never from len(arrays): a row then gets the same bits whether it comes in
        an array or in chunks of a file (MIN_PREDICT_ROWS).
        """
        import torch

        model, shape = self.model_, self.spec_.input_shape
        self.model_.eval()
        device = torch.device(self.device_)
        chunks, several = [], False

        def work() -> int:
            return passes * PREDICT_BATCH * threads.macs_per_row(model, shape)

        with torch.no_grad(), threads.for_work(work, self.n_jobs, device):
            for start in range(0, len(arrays), PREDICT_BATCH):
                batch = torch.from_numpy(arrays[start : start + PREDICT_BATCH]).to(device)
                n = len(batch)
                if n < MIN_PREDICT_ROWS:  # (MIN_PREDICT_ROWS, ...): the same kernels as a full batch
                    batch = torch.cat([batch, batch.new_zeros((MIN_PREDICT_ROWS - n, *batch.shape[1:]))])
                out = fn(batch)
                several = isinstance(out, tuple)  # fn may give several results per row
                chunks.append(tuple(part[:n].cpu().numpy() for part in (out if several else (out,))))
        if not several:
            return np.concatenate([chunk[0] for chunk in chunks])
        return tuple(np.concatenate(part) for part in zip(*chunks, strict=True))

    def _scaled(self, X: Any, outliers_expected: bool = False) -> np.ndarray:
        check_is_fitted(self)
        source = _source_of(X)
        if source is not None:  # a path or Source where only an array will do: read it whole
            X = source.read_all()
        checked = check_like(X, self.spec_, type(self).__name__, outliers_expected=outliers_expected)
        return self.spec_.to_model(checked)

    def _map(self, fn, X: Any, finish=lambda y: y) -> np.ndarray:
        """``finish(_apply(fn, scaled X))``; a path or Source goes chunk by chunk, so only the results are
        held in memory, never all of the data or its scaled copy. Chunks are whole multiples of the
        batch, so the model sees exactly the batches it would see for the array."""
        source = _source_of(X)
        if source is None:
            return finish(self._apply(fn, self._scaled(X)))
        from aekit.data.lazy import working_bytes

        chunk = min(SOURCE_CHUNK_BYTES, working_bytes() // 4)
        rows = max(1, chunk // (4 * self.spec_.n_features) // PREDICT_BATCH) * PREDICT_BATCH
        parts = [finish(self._apply(fn, self._scaled(chunk))) for chunk in source.iter_chunks(rows)]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(part) for part in zip(*parts, strict=True))
        return np.concatenate(parts)

    def transform(self, X: Any, layer: str | None = None, return_typicality: bool = False) -> Any:
        """Codes of ``X`` (an array, a path or a Source): (N, code_size_) float32. For a VAE, the posterior
        mean. ``layer`` (a name from ``layer_outputs``) gives that layer's outputs instead, (N, features).
        ``return_typicality=True`` returns (codes, ``typicality(X)``) from one pass through the model."""
        check_is_fitted(self)  # before self.model_ is read below: NotFittedError, not AttributeError
        if return_typicality:
            if layer is not None:
                raise ConfigError("return_typicality=True gives the codes' typicality; leave layer=None.")
            self._typicality_reference()
            errors, codes = self._map(self._statistics, X)
            return codes.astype(np.float32, copy=False), self._typical(errors, codes)
        if layer is not None:
            from aekit.estimators.layer_outputs import layer_transform

            return layer_transform(self, X, layer)
        width = self._width()
        return self._map(lambda b: self.model_.encode(b)[:, :width], X).astype(np.float32, copy=False)

    def layer_outputs(self, X: Any) -> dict[str, np.ndarray]:
        """Every layer's outputs for ``X``: {"encoder.1": (N, ...), ..., "code": ..., "decoder.1": ...,
        "output": ...} in the order data flows, each after its activation (estimators/layer_outputs.py)."""
        from aekit.estimators.layer_outputs import layer_outputs

        return layer_outputs(self, X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Decode codes back to data in the training data's layout, range and dtype. An ordered model
        takes any prefix of its codes, (N, w) for w up to the full code size: the units after it are 0."""
        from aekit.estimators import ordered

        check_is_fitted(self)
        z = np.asarray(Z, dtype=np.float32)
        # The fitted model's code size, not the code_size parameter: set_params after fit must not
        # change what an already fitted model accepts (scikit-learn's contract: params act in fit).
        code_size = self.model_.config.code_size
        prefixes = hasattr(self, "reconstruction_curve_")  # trained ordered
        if prefixes and z.ndim == 2 and 1 <= z.shape[1] < code_size:
            z = ordered.pad_codes(z, code_size)
        if z.ndim != 2 or z.shape[1] != code_size:
            raise DataError(
                f"codes must have shape {ordered.code_shape(code_size, prefixes)}; got {z.shape}. "
                "Pass the output of transform()."
            )
        if not np.isfinite(z).all():
            raise DataError("codes contain NaN or inf; pass finite values.")
        return self.spec_.from_model(self._apply(self.model_.decode, np.ascontiguousarray(z)))

    def reconstruct(self, X: Any, return_typicality: bool = False) -> Any:
        """inverse_transform(transform(X)) in one pass. ``return_typicality=True`` returns
        (reconstructions, ``typicality(X)``), still from one pass through the model."""
        check_is_fitted(self)  # before self.spec_ is read below: NotFittedError, not AttributeError
        if not return_typicality:
            return self._map(lambda b: self._forward(b).recon, X, self.spec_.from_model)
        self._typicality_reference()
        recon, errors, codes = self._map(
            self._statistics_and_recon, X, lambda out: (self.spec_.from_model(out[0]), *out[1:])
        )
        return recon, self._typical(errors, codes)

    def score_samples(self, X: Any) -> np.ndarray:
        """Negative mean reconstruction error per sample (in the scaled space): higher = more normal."""
        from aekit import losses

        check_is_fitted(self)  # before self.model_ is read: NotFittedError, not AttributeError
        loss = self.model_.config.loss  # the loss it was trained with, even if set_params changed self.loss
        errors = self._map(lambda b: losses.per_sample_error(loss, self._forward(b), b), X)
        return -errors.astype(np.float64)

    def _width(self) -> int:
        """The code units transform returns: code_size_ (code_size="auto": the chosen prefix), else all."""
        return getattr(self, "code_size_", self.model_.config.code_size)

    def _forward(self, batch):
        """The model's output for ``batch`` from the code transform returns (its first code_size_ units)."""
        from aekit.estimators import ordered

        return ordered.prefix_forward(self.model_, batch, self._width())

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of score_samples: higher is better, so model selection tools can compare settings."""
        return float(np.mean(self.score_samples(X)))

    # -- generating -----------------------------------------------------------------------------------------
    def _variational(self, what: str):
        """The fitted model if it is variational (has a prior and a likelihood); else one ConfigError."""
        from aekit.models.registry import family_of

        check_is_fitted(self)
        if not hasattr(self.model_, "posterior"):
            raise ConfigError(
                f"{what} needs a variational autoencoder (a prior to draw codes from); this model is "
                f"kind={family_of(self.model_)!r}. Train one with kind='vae' (aekit train --kind vae)."
            )
        return self.model_

    def sample(self, n: int = 16, random_state: int | None = None) -> np.ndarray:
        """``n`` new samples from a VAE: codes drawn from the prior N(0, I), decoded to the data's layout.

        What is decoded is the likelihood's mean (for loss='bce' the pixel probabilities), as is usual for
        looking at samples. ``random_state`` seeds the draw; None draws fresh codes each call.
        """
        from aekit import generate

        model = self._variational("sample()")
        z = generate.prior_codes(_count(n, "n"), model.config.code_size, _generator(random_state))
        return self.inverse_transform(z.numpy())

    def interpolate(self, a: Any, b: Any, steps: int = 8, method: str = "linear") -> np.ndarray:
        """Decoded codes on the path from the code of sample ``a`` to that of ``b``: (steps, *sample shape).

        ``a`` and ``b`` are single samples shaped like one training sample (or batches of one).
        ``method`` is "linear" or "slerp" (spherical, which keeps a VAE's codes at typical norms). Works
        for every kind; for a VAE the codes are the posterior means.
        """
        import torch

        from aekit import generate

        check_is_fitted(self)
        pair = np.concatenate([self._one_sample(a, "a"), self._one_sample(b, "b")])
        codes = torch.from_numpy(self.transform(pair))  # (2, K)
        return self.inverse_transform(generate.path(codes[0], codes[1], steps, method).numpy())

    def traverse(
        self,
        X: Any = None,
        dim: int = 0,
        values: Any = None,
        n: int = 8,
        random_state: int | None = None,
    ) -> np.ndarray:
        """A latent traversal: one row per code, one column per value of code dimension ``dim``.

        Rows are the codes of ``X`` or, when X is None, ``n`` codes drawn from the prior. ``values``
        defaults to -3..3 in 7 steps: in units of the prior's standard deviation.
        Returns (rows, len(values), *sample shape).
        """
        import torch

        from aekit import generate

        model = self._variational("traverse()")
        values = np.linspace(-3.0, 3.0, 7) if values is None else np.asarray(values, dtype=np.float64).ravel()
        if not len(values) or not np.isfinite(values).all():
            raise ConfigError(f"values must be one or more finite numbers; got {values.tolist()!r}.")
        if X is None:
            base = generate.prior_codes(_count(n, "n"), model.config.code_size, _generator(random_state))
        else:
            base = torch.from_numpy(self.transform(X))  # (R, K)
        dim = int(dim) if isinstance(dim, np.integer) else dim
        grid = generate.traversal(base, dim, values.tolist())  # (R, V, K)
        out = self.inverse_transform(grid.reshape(-1, grid.shape[2]).numpy())
        return out.reshape(grid.shape[0], grid.shape[1], *out.shape[1:])

    def log_likelihood(
        self, X: Any, k: int = IW_SAMPLES, random_state: int | None = 0, binarize_seed: int | None = None
    ) -> np.ndarray:
        """Per-sample estimate of log p(x) in nats (float64), by importance weighting with ``k`` samples.

        Burda et al.'s IWAE bound: a lower bound on log p(x) that tightens as k grows (k=1: the ELBO), so
        -log_likelihood is a conservative (upper) estimate of the negative log-likelihood. For loss='bce'
        it is a Bernoulli likelihood, a probability only for binary data: ``binarize_seed`` scores a binary
        copy of X instead (each scaled value in [0, 1] is 1 with that probability, drawn from numpy's
        default_rng(binarize_seed)), the usual protocol for grey images. For 'mse'/'l1' it is a
        Gaussian/Laplace density of the scaled values the model sees (see ``spec_``), not of X's own units.
        """
        from aekit import generate

        model = self._variational("log_likelihood()")
        k = _count(k, "k")
        scaled = self._scaled(X)
        if binarize_seed is not None:
            if model.config.loss != "bce" or self.spec_.value_range != (0.0, 1.0):
                raise ConfigError(
                    f"binarize_seed draws binary data for a Bernoulli likelihood (loss='bce' on data in "
                    f"[0, 1]); this model has loss={model.config.loss!r}. Leave binarize_seed=None."
                )
            scaled = generate.binarize(scaled, seed=int(binarize_seed))
        generator = _generator(random_state)
        log_px = self._apply(lambda b: generate.iw_log_likelihood(model, b, k, generator), scaled, k)
        return log_px.astype(np.float64)

    def _one_sample(self, x: Any, name: str) -> np.ndarray:
        arr = np.asarray(x)
        shape = tuple(self.spec_.sample_shape)
        if arr.shape == shape:
            arr = arr[None]
        if arr.shape != (1, *shape):
            raise DataError(
                f"{name} must be one sample of shape {shape} (as the model was trained on), or a batch "
                f"of one; got shape {arr.shape}."
            )
        return arr

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one ``.aek`` file (safetensors + JSON header), atomically."""
        from aekit.estimators import ordered, transfer
        from aekit.io import save_model

        check_is_fitted(self)
        params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()}
        if not isinstance(self.random_state, int | type(None)):
            params["random_state"] = None  # a RandomState object cannot go into JSON
        params = transfer.saved_params(self, params)  # after init_from: the network as built
        networks = self.model_.config.networks or {}
        for name in ("encoder", "decoder"):  # the user's networks: import path and arguments, never code
            params[name] = networks.get(name)
        save_model(
            path,
            self.model_,
            {
                "estimator": type(self).__name__,
                "params": params,
                "data": self.spec_.to_dict(),
                "history": self.history_,
                **ordered.header(getattr(self, "reconstruction_curve_", None), self._width()),
                **self._typicality_header(),
            },
        )

    def _typicality_header(self) -> dict[str, Any]:
        from aekit.typicality import HEADER_KEY

        if getattr(self, "typicality_", None) is None:  # loaded from a file that predates it
            return {}
        return {HEADER_KEY: {**self.typicality_.to_dict(), "code_gaussian": self.code_gaussian_.to_dict()}}

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", modules: Sequence[type] = ()) -> AutoEncoder:
        """Read a model saved by ``save``; nothing in the file can run code.

        ``modules``: for a model trained with encoder= and decoder=, their classes (``[MyEncoder,
        MyDecoder]``), matched by the import path the file names; nothing a file names is imported. The
        loaded estimator's encoder and decoder are then the trained networks (fit again starts from them).
        """
        from aekit import typicality
        from aekit.errors import ModelFileError
        from aekit.estimators import ordered
        from aekit.io import load_model
        from aekit.models import custom

        model, doc = load_model(path, modules=modules)
        known = set(cls().get_params()) - {"encoder", "decoder"}  # those are set from the model, below
        try:
            params = {k: v for k, v in doc["params"].items() if k in known}
            for key in ("hidden", "decoder_hidden"):
                if params.get(key) is not None:
                    params[key] = tuple(params[key])
            est = cls(**params)
            est.spec_ = DataSpec.from_dict(doc["data"])
            est.history_ = list(doc.get("history", []))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # Attribute: e.g. "params": null
            raise ModelFileError(f"{path} has a damaged header ({type(exc).__name__}: {exc}).") from None
        est.device_ = resolve_device(device)
        est.model_ = model.to(est.device_)
        est.encoder, est.decoder = custom.user_networks(model)
        est.n_features_in_ = est.spec_.n_features
        curve, est.code_size_ = ordered.from_header(doc, model.config.code_size, path)
        if curve is not None:
            est.reconstruction_curve_ = curve
        est._n_features_out = est.code_size_
        est.loss_ = model.config.loss
        est.typicality_, est.code_gaussian_ = typicality.from_header(
            doc, path, lambda entry: _read_typicality(entry, est.code_size_)
        ) or (None, None)
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever the input dtype
        tags.non_deterministic = self.random_state is None
        return tags


# epochs="auto" aims at about this many optimizer steps: enough for small tables to converge, and about
# ten epochs (three minutes on two CPU cores for the default conv model) on a data set the size of MNIST.
AUTO_STEPS = 4000
AUTO_EPOCHS = (10, 200)


def _typicality_rows(train: Any, val: Any, seed: int) -> np.ndarray:
    """Up to MAX_TYPICAL_ROWS of the rows fit saw, scaled: a seeded random subset of the training and
    validation rows in memory; for data read from files, the first shuffled batch of its training rows,
    at most a read window's worth (one read, in the memory the streaming path already bounds)."""
    import torch

    if not isinstance(train, torch.Tensor):  # data too large for memory: as many rows as a read window
        from aekit.data.lazy import working_bytes

        row_bytes = 4 * int(np.prod(train.spec.input_shape))
        rows = max(1, min(MAX_TYPICAL_ROWS, working_bytes() // row_bytes))
        return next(iter(train.batches(rows, seed))).numpy()
    parts = [train] if val is None else [train, val]
    n = sum(len(part) for part in parts)
    if n <= MAX_TYPICAL_ROWS:
        return torch.cat(parts).cpu().numpy()
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:MAX_TYPICAL_ROWS].sort().values
    n_train = len(train)  # gathered from each part: never a copy of all the data
    chosen = [train[pick[pick < n_train]]]
    if val is not None:
        chosen.append(val[pick[pick >= n_train] - n_train])
    return torch.cat(chosen).cpu().numpy()


def _read_typicality(entry: Any, code_size: int):
    """(Reference, CodeGaussian) from a model file's typicality entry, each field checked."""
    from aekit.typicality import CodeGaussian, Reference

    reference = Reference.from_dict(entry, ("reconstruction", "code"))
    return reference, CodeGaussian.from_dict(entry["code_gaussian"], code_size)


def _code_kl(model: Any, train: Any, val: Any) -> float | None:
    """Mean KL(q(z|x) || N(0, I)) per sample, in nats, of a VAE's codes of up to COLLAPSE_ROWS samples
    (validation ones, else training ones); None for a model without a posterior."""
    import torch

    if not hasattr(model, "posterior"):
        return None
    data = val if val is not None and len(val) else train
    if isinstance(data, torch.Tensor):
        batch = data[:COLLAPSE_ROWS]
    else:
        batch = next(iter(data.batches(COLLAPSE_ROWS, None)))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        kl = float(model.posterior(batch.to(next(model.parameters()).device)).kl().mean())
    model.train(was_training)
    return kl


def _resolve_epochs(epochs: int | str, n_train: int, batch_size: int) -> int:
    if epochs != "auto":
        return epochs
    steps_per_epoch = -(-n_train // max(1, int(batch_size)))
    low, high = AUTO_EPOCHS
    return int(min(high, max(low, round(AUTO_STEPS / steps_per_epoch))))


def _source_of(X: Any):
    """A Source for a path or Source (``aekit.data.sources``); None for arrays and everything else."""
    from aekit.data.sources import as_source

    return as_source(X)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1; got {value!r}.")
    return int(value)


def _generator(random_state: int | None):
    """A local torch generator from ``random_state`` (None: fresh entropy); global RNGs stay untouched."""
    import torch

    seed = int(np.random.default_rng().integers(2**31 - 1)) if random_state is None else int(random_state)
    return torch.Generator().manual_seed(seed)


def bernoulli_pairs(batch):
    """Dynamic binarisation: each pixel becomes 1 with probability equal to its intensity (input = target)."""
    import torch

    binary = torch.bernoulli(batch)  # (B, *shape) in {0, 1}, drawn from the trainer's seeded generator
    return binary, binary


def _split(data, fraction: float, seed: int):
    """Random train/validation split; no validation set when there are too few samples to spare."""
    import torch

    n_val = int(round(len(data) * fraction))
    if n_val < 1 or len(data) - n_val < 1:
        return data, None
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data[order[n_val:]], data[order[:n_val]]
