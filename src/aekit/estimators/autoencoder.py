"""``AutoEncoder``: every family behind scikit-learn's estimator contract.

``fit`` learns the data scaling and trains; ``transform`` encodes, ``inverse_transform`` decodes,
``score_samples`` is the negative reconstruction error (higher = more normal).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aekit.errors import ConfigError, DataError
from aekit.estimators.scaling import DataSpec, check_array, check_like, fit_spec

PREDICT_BATCH = 1024


def resolve_device(device: str) -> str:
    """'auto' picks cuda, then Apple's mps, then the CPU."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class AutoEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """An autoencoder of any family (``kind``: dense, conv, sparse, vae), trained by one shared trainer.

    Parameters that belong to one family only (``sparsity``, ``rho``, ``beta``, ``backbone``) are
    rejected for the others when set to a non-default value. Denoising (``noise``) works with every family.
    ``epochs="auto"`` trains for about 4000 optimizer steps (10 to 200 epochs), stopping early when the
    validation loss has not improved for ``patience`` epochs.
    """

    def __init__(
        self,
        kind: str = "dense",
        code_size: int = 32,
        hidden: tuple[int, ...] | None = None,
        decoder_hidden: tuple[int, ...] | None = None,
        activation: str = "relu",
        loss: str = "mse",
        noise: str | None = None,
        noise_level: float = 0.2,
        sparsity: str = "l1",
        sparsity_weight: float = 1e-3,
        rho: float = 0.05,
        beta: float = 1.0,
        backbone: str | None = None,
        epochs: int | str = "auto",
        batch_size: int = 128,
        lr: float = 6e-3,
        weight_decay: float = 0.0,
        schedule: str = "onecycle",
        validation_fraction: float = 0.1,
        patience: int | None = 5,
        scaling: str = "auto",
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
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
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scaling = scaling
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.run_dir = run_dir
        self.resume = resume

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> AutoEncoder:
        """Learn the scaling and train the model on ``X``; ``y`` is ignored (present for pipelines)."""
        import torch

        from aekit.models import build_model
        from aekit.training import TrainConfig, Trainer

        x = check_array(X)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must lie in [0, 1); got {self.validation_fraction!r}.")
        spec = fit_spec(x, self.scaling, self.loss)
        seed = self._seed()
        device = resolve_device(self.device)
        data = torch.from_numpy(spec.to_model(x))
        train, val = _split(data, self.validation_fraction, seed)
        train_config = TrainConfig(
            epochs=_resolve_epochs(self.epochs, len(train), self.batch_size),
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            patience=self.patience,
            noise=self.noise,
            noise_level=self.noise_level,
            value_range=spec.value_range,
            seed=seed,
            device=device,
            verbose=self.verbose,
            run_dir=Path(self.run_dir) if self.run_dir is not None else None,
            resume=self.resume,
        )
        trainer = Trainer(train_config)
        # All randomness comes from seed; fork_rng restores the caller's global RNG state afterwards.
        devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = build_model(self.kind, self._model_settings(spec))
            history = trainer.fit(model, train, val)
        self.model_ = model  # stays on the training device for transform and friends
        self.spec_ = spec
        self.history_ = history
        self.n_features_in_ = spec.n_features
        self._n_features_out = self.code_size
        self.device_ = device
        return self

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))  # fresh entropy; global RNG untouched
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(2**31 - 1))
        return int(self.random_state)

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
        if self.loss == "bce" and settings["output"] != "sigmoid":
            raise DataError("loss='bce' needs data in [0, 1]; rescale the data or use scaling='minmax'.")
        return settings

    # -- applying -------------------------------------------------------------------------------------------
    def _apply(self, fn, arrays: np.ndarray) -> np.ndarray:
        """Run ``fn`` over ``arrays`` in batches with gradients off; concatenate the numpy results."""
        import torch

        self.model_.eval()
        device = torch.device(self.device_)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(arrays), PREDICT_BATCH):
                batch = torch.from_numpy(arrays[start : start + PREDICT_BATCH]).to(device)
                chunks.append(fn(batch).cpu().numpy())
        return np.concatenate(chunks)

    def _scaled(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.spec_.to_model(check_like(X, self.spec_, type(self).__name__))

    def transform(self, X: Any) -> np.ndarray:
        """Codes of ``X``: (N, code_size) float32. For a VAE, the posterior mean."""
        check_is_fitted(self)  # before self.model_ is read below: NotFittedError, not AttributeError
        return self._apply(self.model_.encode, self._scaled(X)).astype(np.float32, copy=False)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Decode codes back to data in the training data's layout, range and dtype."""
        check_is_fitted(self)
        z = np.asarray(Z, dtype=np.float32)
        # The fitted model's code size, not the code_size parameter: set_params after fit must not
        # change what an already fitted model accepts (scikit-learn's contract: params act in fit).
        code_size = self.model_.config.code_size
        if z.ndim != 2 or z.shape[1] != code_size:
            raise DataError(
                f"codes must have shape (N, {code_size}); got {z.shape}. Pass the output of transform()."
            )
        if not np.isfinite(z).all():
            raise DataError("codes contain NaN or inf; pass finite values.")
        return self.spec_.from_model(self._apply(self.model_.decode, np.ascontiguousarray(z)))

    def reconstruct(self, X: Any) -> np.ndarray:
        """inverse_transform(transform(X)) in one pass."""
        check_is_fitted(self)  # before self.spec_ is read below: NotFittedError, not AttributeError
        return self.spec_.from_model(self._apply(lambda b: self.model_(b).recon, self._scaled(X)))

    def score_samples(self, X: Any) -> np.ndarray:
        """Negative mean reconstruction error per sample (in the scaled space): higher = more normal."""
        from aekit import losses

        check_is_fitted(self)  # before self.model_ is read: NotFittedError, not AttributeError
        model = self.model_
        loss = model.config.loss  # the loss it was trained with, even if set_params changed self.loss since
        errors = self._apply(lambda b: losses.per_sample_error(loss, model(b), b), self._scaled(X))
        return -errors.astype(np.float64)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of score_samples: higher is better, so model selection tools can compare settings."""
        return float(np.mean(self.score_samples(X)))

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one ``.aek`` file (safetensors + JSON header), atomically."""
        from aekit.io import save_model

        check_is_fitted(self)
        params = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.get_params().items()}
        if not isinstance(self.random_state, int | type(None)):
            params["random_state"] = None  # a RandomState object cannot go into JSON
        save_model(
            path,
            self.model_,
            {
                "estimator": type(self).__name__,
                "params": params,
                "data": self.spec_.to_dict(),
                "history": self.history_,
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> AutoEncoder:
        """Read a model saved by ``save``; nothing in the file can run code."""
        from aekit.errors import ModelFileError
        from aekit.io import load_model

        model, doc = load_model(path)
        known = cls().get_params()
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
        est.n_features_in_ = est.spec_.n_features
        est._n_features_out = model.config.code_size
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


def _resolve_epochs(epochs: int | str, n_train: int, batch_size: int) -> int:
    if epochs != "auto":
        return epochs
    steps_per_epoch = -(-n_train // max(1, int(batch_size)))
    low, high = AUTO_EPOCHS
    return int(min(high, max(low, round(AUTO_STEPS / steps_per_epoch))))


def _split(data, fraction: float, seed: int):
    """Random train/validation split; no validation set when there are too few samples to spare."""
    import torch

    n_val = int(round(len(data) * fraction))
    if n_val < 1 or len(data) - n_val < 1:
        return data, None
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data[order[n_val:]], data[order[:n_val]]
