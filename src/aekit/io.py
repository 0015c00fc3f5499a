"""Model files: one safetensors file (``.aek``) with the weights and a JSON header.

The header holds the family, its settings, the data scaling, the library and format versions, and
whatever the estimator adds (its parameters, the training history). Loading never unpickles; a
damaged, truncated or mismatched file raises one ModelFileError.
"""

from __future__ import annotations

import os
from typing import Any

from aekit import tensorfile
from aekit._version import __version__
from aekit.errors import AekitError, ModelFileError
from aekit.models import AutoEncoderModel, build_model, family_of
from aekit.models.registry import FAMILIES, NETWORKS

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


def load_model(path: str | os.PathLike, kind: str = "autoencoder") -> tuple[AutoEncoderModel, dict[str, Any]]:
    """Rebuild the model stored at ``path``; returns it (in eval mode, on the CPU) and the header.

    ``kind`` ("autoencoder" or "restorer") is what the caller can use; a file of the other kind is refused.
    """
    tensors, doc = tensorfile.load(path)
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
    try:
        model = build_model(doc["family"], doc["model_config"], registry)
        model.load_state_dict(tensors)
    except (AekitError, KeyError, TypeError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{path} is damaged or mismatched: its weights do not fit its settings ({detail})."
        ) from None
    model.eval()
    return model, doc
