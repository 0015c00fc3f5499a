"""Starting an ``AutoEncoder`` from a trained one: ``init_from`` and ``freeze`` (fine-tuning, transfer).

The starting model sets the network: its family and every setting that shapes or wires the layers
(``STRUCTURE``) are taken from it, and a value set to anything but its default that differs from the
starting model's is a ConfigError. ``fit`` then trains a copy of the estimator with those settings
(``fit_from``), which copies the starting weights in right after building its model, each checked for
shape, and turns off gradients for what ``freeze`` names (``aekit.models.named_layers``); those weights stay
bit-identical. The data scaling is the starting model's when ``scaling="auto"`` and the samples have its
shape and dtype kind (8-bit or float), so a frozen encoder sees inputs scaled as it learned them;
otherwise it is fitted on the data as usual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aekit.data.scaling import DataSpec, spec_dtype
from aekit.errors import ConfigError

# The settings that make the network: taken from the starting model (each where the family has it). The
# objective and training settings (loss, beta, sparsity_weight, rho, noise, lr, epochs, ...) stay this
# estimator's own.
STRUCTURE = ("kind", "code_size", "hidden", "decoder_hidden", "activation")
STRUCTURE += ("backbone", "downsample", "sparsity")


@dataclass(frozen=True)
class Start:
    """What the copy that ``fit_from`` trains needs from the original: the starting estimator, the names
    to freeze, and how to refer to the starting model in messages."""

    estimator: Any
    freeze: tuple[str, ...]
    where: str


def freeze_names(freeze: Any) -> tuple[str, ...]:
    """``freeze`` as a tuple of names: None -> (), "encoder" -> ("encoder",), a list -> its names."""
    if freeze is None:
        return ()
    if isinstance(freeze, str):
        return (freeze,)
    if isinstance(freeze, list | tuple) and all(isinstance(name, str) for name in freeze):
        return tuple(freeze)
    raise ConfigError(
        f"freeze must be 'encoder', 'decoder', or a list of layer names such as ['encoder.1', 'code']; "
        f"got {freeze!r}."
    )


def starting_model(est: Any) -> Any:
    """``est.init_from`` as a fitted AutoEncoder (read from its file when it is a path), with ``freeze``
    checked against it; None without ``init_from``. Runs before the data is read: mistakes cost nothing."""
    from aekit.models.named_layers import parts

    names = freeze_names(est.freeze)
    init = est.init_from
    if init is None:
        if names:
            raise ConfigError(
                "freeze holds a starting model's weights fixed; it needs init_from (a fitted AutoEncoder "
                "or its .aek file; --init on the command line)."
            )
        return None
    if isinstance(init, str | os.PathLike):
        start = type(est).load(init, device="cpu")
    elif isinstance(init, type(est)):
        if not hasattr(init, "model_"):
            raise ConfigError(
                "init_from is an AutoEncoder that has not been fitted (scikit-learn's clone() makes such "
                "copies of estimator parameters); fit it first, or pass the path of its saved .aek file."
            )
        start = init
    else:
        raise ConfigError(
            f"init_from must be a fitted AutoEncoder or the path of its .aek file; got {type(init).__name__}."
        )
    if getattr(start.model_.config, "networks", None) is not None:
        raise ConfigError(
            "init_from is a model with networks of your own (encoder= and decoder=); start from those "
            "instead: pass the trained modules as encoder= and decoder= (training starts from their weights)."
        )
    if est.encoder is not None or est.decoder is not None:
        raise ConfigError(
            "init_from and encoder=/decoder= both give the networks to start from; give one of them."
        )
    parts(start.model_, names)  # an unknown name: a ConfigError listing the known ones
    return start


def where(init: Any) -> str:
    """The starting model as messages name it."""
    return f"init_from={str(init)!r}" if isinstance(init, str | os.PathLike) else "init_from (an AutoEncoder)"


def structure_of(model: Any) -> dict[str, Any]:
    """The ``STRUCTURE`` settings a fitted model was built with."""
    from aekit.models import family_of

    config = model.config
    found = {"kind": family_of(model)}
    for name in STRUCTURE[1:]:
        if hasattr(config, name):
            found[name] = getattr(config, name)
    return found


def architecture(est: Any, start: Any) -> Any:
    """A copy of ``est`` whose network settings are the starting model's, without ``init_from`` and
    ``freeze``. A setting given another value than its default and than the starting model's is a
    ConfigError; ``hidden`` and ``decoder_hidden`` are compared with the sizes as built."""
    from aekit.models.named_layers import widths

    theirs = structure_of(start.model_)
    built = dict(theirs)
    built["hidden"], built["decoder_hidden"] = widths(start.model_)
    defaults = type(est)().get_params()
    for name in STRUCTURE:
        mine = getattr(est, name)
        if name in ("hidden", "decoder_hidden") and mine is not None:
            mine = tuple(int(w) for w in mine)
        if mine == defaults[name] or name not in built or mine == built[name]:
            continue  # a setting of another family is refused when the copy is fitted, as without init_from
        raise ConfigError(
            f"{name}={mine!r} conflicts with the starting model ({where(est.init_from)}), which has "
            f"{name}={built[name]!r}; a fine-tuned model keeps the starting model's network. Leave {name} "
            f"at its default ({defaults[name]!r}) to take the starting model's, or train without init_from."
        )
    return type(est)(**{**est.get_params(deep=False), **theirs, "init_from": None, "freeze": None})


def fit_from(est: Any, start: Any, X: Any) -> Any:
    """``est.fit(X)`` from a starting model: fit the copy ``architecture`` makes, then take its fitted
    state (every attribute ending in "_"), as a fit of ``est`` itself would have left it."""
    copy = architecture(est, start)
    copy._fine_tune = Start(start, freeze_names(est.freeze), where(est.init_from))
    copy.fit(X)
    for name in [n for n in vars(est) if _fitted(n)]:
        delattr(est, name)  # what an earlier fit left: the copy's state replaces all of it
    for name, value in vars(copy).items():
        if _fitted(name):
            setattr(est, name, value)
    return est


def _fitted(name: str) -> bool:
    return (name.endswith("_") and not name.startswith("_")) or name == "_n_features_out"


def starting_scaling(est: Any, data: Any) -> DataSpec | None:
    """The starting model's scaling for ``data`` (an array or a Source) when ``est`` is fitting from one,
    ``scaling="auto"``, and the samples have its shape and dtype kind; else None (``fit`` fits one)."""
    start = getattr(est, "_fine_tune", None)
    if start is None or est.scaling != "auto":
        return None
    spec = start.estimator.spec_
    shape = getattr(data, "sample_shape", None) or data.shape[1:]
    if tuple(int(s) for s in shape) != tuple(spec.sample_shape) or spec_dtype(data.dtype) != spec.dtype:
        return None
    return DataSpec.from_dict(spec.to_dict())  # a copy: the starting estimator keeps its own


def load_start(est: Any, model: Any, spec: DataSpec) -> None:
    """Copy the starting model's weights into ``model`` (built with its settings, for this data) and
    freeze what ``freeze`` names; nothing when ``est`` is not fitting from a starting model. Buffers are
    not copied: a VAE's KL warm-up counts this training's own steps."""
    import torch

    from aekit.models.named_layers import parts
    from aekit.training.freeze import freeze

    start = getattr(est, "_fine_tune", None)
    if start is None:
        return
    theirs = dict(start.estimator.model_.named_parameters())
    mine = dict(model.named_parameters())
    bad = [
        f"{name}: the starting model has {tuple(theirs[name].shape)}, this one needs {tuple(p.shape)}"
        for name, p in mine.items()
        if name in theirs and theirs[name].shape != p.shape
    ]
    bad += [f"{name}: the starting model has none" for name in mine if name not in theirs]
    if bad:
        raise ConfigError(
            f"the starting model ({start.where}) does not fit this data: {'; '.join(bad)}. It was trained "
            f"on samples of shape {tuple(start.estimator.spec_.sample_shape)}, these have shape "
            f"{tuple(spec.sample_shape)}; fine-tune on data of its shape, or train without init_from."
        )
    with torch.no_grad():
        for name, p in mine.items():
            p.copy_(theirs[name])
    freeze(model, parts(model, start.freeze))
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            f"freeze={list(start.freeze)!r} holds every weight of the model fixed, so training would change "
            "nothing; leave a part free to train, e.g. freeze='encoder'."
        )


def saved_params(est: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``save`` stores: ``params`` as they are without ``init_from``. After a fit from a
    starting model, the network settings as built (so ``load`` describes the model, and a refit agrees
    with it), ``init_from`` as a path, and an AutoEncoder given as ``init_from`` as None (an object cannot
    go into JSON), with ``freeze`` (which needs it)."""
    if est.init_from is None:
        return params
    params = {k: v for k, v in params.items() if "__" not in k}  # get_params(deep=True) of an estimator
    params.update(structure_of(est.model_))
    if isinstance(est.init_from, str | os.PathLike):
        params["init_from"] = str(est.init_from)
    else:
        params["init_from"] = params["freeze"] = None
    return params
