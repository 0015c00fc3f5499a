"""Model files: one safetensors file (``.aek``) with the weights and a JSON header.

The header holds the family, its settings, the data scaling, the library and format versions, and
whatever the estimator adds (its parameters, the training history). Loading never unpickles; a
damaged, truncated, mismatched or hostile file raises one ModelFileError, before the network is built
(``aekit.tensorfile.load_networks`` checks the weights' shapes and the memory; ``_check_header`` the rest).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, get_args

from torch import nn

from aekit import tensorfile
from aekit._version import __version__
from aekit.data.scaling import SCALINGS, DataSpec
from aekit.errors import ConfigError, DataError, ModelFileError, NetworksNeededError
from aekit.models import AutoEncoderModel, build_model, custom, family_of
from aekit.models.config import Activation, Loss
from aekit.models.registry import FAMILIES, NETWORKS
from aekit.noise import NOISES
from aekit.training.config import Schedule

FORMAT = "aekit-model"
FORMAT_VERSION = 1

# What each kind of model file holds and what opens it: a file given to the wrong loader says where to go.
KINDS = {
    "autoencoder": (
        FAMILIES,
        "an autoencoder",
        "AutoEncoder.load or the aekit commands info/eval/encode/decode",
    ),
    "restorer": (NETWORKS, "an image restoration model", "ImageRestorer.load or 'aekit restore'"),
}


def save_model(path: str | os.PathLike, model: AutoEncoderModel, extra: dict[str, Any]) -> None:
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "family": family_of(model),
        "model_config": model.config.to_dict(),
        **extra,
    }
    tensorfile.save(path, dict(model.state_dict()), doc)


def load_model(
    path: str | os.PathLike, kind: str = "autoencoder", modules: Sequence[type[nn.Module]] = ()
) -> tuple[AutoEncoderModel, dict[str, Any]]:
    """Rebuild the model stored at ``path``; returns it (in eval mode, on the CPU) and the header.

    ``kind`` ("autoencoder" or "restorer") is what the caller can use; a file of the other kind is refused.
    The header is checked in full, and the network's shapes against the weights, before it is built.
    ``modules``: the classes of the user's own networks (``models/custom.py``), matched by the import path
    the file names; a file that names others is refused (NetworksNeededError), and nothing is imported.
    """
    modules = custom.check_classes(modules)  # a caller's mistake, not the file's: checked before opening it
    networks, _, doc = tensorfile.load_networks(
        path,
        "model file",
        lambda doc, declared: {"": _check_header(path, doc, kind, modules)},
        mismatch=lambda doc: _custom_mismatch(path, doc),
    )
    model = networks[""]
    model.eval()
    return model, doc


def _check_header(
    path: str | os.PathLike, doc: dict[str, Any], kind: str, modules: Sequence[type[nn.Module]] = ()
) -> Callable[[], nn.Module]:
    """Refuse a header this loader cannot use; return the builder of the network it describes."""
    _import_applications()
    if doc.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is not an aekit model file (it holds {doc.get('format') or doc.get('kind')!r})."
        )
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model format {version}, newer than this aekit ({__version__}) reads "
            f"(format {FORMAT_VERSION}); upgrade aekit: pip install -U aekit."
        )
    registry, _, _ = KINDS[kind]
    for other, (members, what, opener) in KINDS.items():
        if other != kind and doc.get("family") in members:
            raise ModelFileError(
                f"{path} holds {what} ({doc['family']}), not {KINDS[kind][1]}; open it with {opener}."
            )
    if kind == "autoencoder":
        return check_autoencoder(doc, modules, path)
    return _builder(doc["family"], doc["model_config"], registry)


def _import_applications() -> None:
    """Applications put their networks in NETWORKS when imported. Every loader imports them all before it
    checks a header, so a file of any kind is recognised (and sent to its own loader) whatever opens it."""
    from aekit.restore import network  # noqa: F401  (registers "restore-unet")


def check_autoencoder(
    entry: dict[str, Any], modules: Sequence[type[nn.Module]] = (), path: str | os.PathLike = "the model file"
) -> Callable[[], nn.Module]:
    """Check the header entry of one autoencoder (a model file, or a detector's member): its family and
    settings, its data scaling and every estimator parameter that names a registry entry. Returns its
    builder; raises ConfigError/DataError (or KeyError/TypeError for missing or mistyped fields), and last,
    for the user's own networks that none of ``modules`` match, NetworksNeededError."""
    build = _builder(entry["family"], entry["model_config"], FAMILIES)
    spec = DataSpec.from_dict(entry["data"])
    model_input = tuple(entry["model_config"]["input_shape"])
    if spec.input_shape != model_input:
        raise DataError(
            f"its data scaling is for samples of shape {spec.sample_shape} (model input "
            f"{spec.input_shape}), but the model takes inputs of shape {model_input}."
        )
    params = entry["params"]
    if not isinstance(params, dict):
        raise TypeError(f"params is a JSON {type(params).__name__}, not an object")
    for name, allowed in _param_choices().items():
        if name in params and params[name] not in allowed:
            raise ConfigError(f"{name}={params[name]!r} is not one of {', '.join(map(repr, allowed))}.")
    history = entry.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise TypeError("its training history is not a list of JSON objects")
    networks = entry["model_config"].get("networks")
    if networks is not None:
        classes = _network_classes(path, networks, modules)
        return lambda: build_model(entry["family"], entry["model_config"], FAMILIES, modules=classes)
    return build


def _network_classes(
    path: str | os.PathLike, networks: Any, modules: Sequence[type[nn.Module]]
) -> tuple[type[nn.Module], ...]:
    """The classes of ``modules`` that the file's networks name; NetworksNeededError if some are not there."""
    custom.check_entry(networks)  # ConfigError: a damaged header
    found, missing = custom.match(networks, modules)
    if not missing:
        return tuple(found.values())
    needs = " and ".join(f"{role} {custom.signature(networks[role])}" for role in custom.ROLES)
    call = custom.load_call(networks, str(path))
    wrong = [networks[role]["class"] for role in missing]
    held = ", ".join(custom.class_path(m) for m in modules)
    given = f" (modules= holds {held}, not {' or '.join(dict.fromkeys(wrong))})" if modules else ""
    raise NetworksNeededError(
        f"{path} was built with your own networks: {needs}. Loading imports nothing a file names, so pass "
        f"their classes{given}: {call}",
        needs=needs,
        call=call,
    )


def _custom_mismatch(path: str | os.PathLike, doc: dict[str, Any]) -> str | None:
    """How a file of the user's own networks whose weights do not fit them is refused: their classes
    build other shapes now than when it was saved. None for the built-in networks (the default message)."""
    networks = doc["model_config"].get("networks")
    if networks is None:
        return None
    needs = " and ".join(f"{role} {custom.signature(networks[role])}" for role in custom.ROLES)
    return (
        f"{path} does not fit the classes given: its weights are not those that {needs} build now (has a "
        "class changed since the file was saved?)"
    )


def _builder(family: Any, settings: Any, registry: dict[str, type[nn.Module]]) -> Callable[[], nn.Module]:
    if not isinstance(family, str) or family not in registry:
        raise ConfigError(f"unknown model kind {family!r}; choose one of {', '.join(registry)}.")
    if not isinstance(settings, dict):
        raise TypeError(f"model_config is a JSON {type(settings).__name__}, not an object")
    return lambda: build_model(family, settings, registry)


def _param_choices() -> dict[str, tuple[Any, ...]]:
    """The AutoEncoder parameters that name a registry entry, and the names each allows."""
    return {
        "kind": tuple(FAMILIES),
        "activation": get_args(Activation),
        "loss": ("auto", *get_args(Loss)),
        "noise": (None, *NOISES),
        "scaling": SCALINGS,
        "schedule": get_args(Schedule),
    }
