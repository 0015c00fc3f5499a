"""The detector's file: what ``AnomalyDetector.save`` writes and ``load`` reads, and the header's checks.

One file holds every member's weights and settings, each member's score statistics and reference codes
(and the codes of known anomalies, for a detector fitted with them), the training scores, the threshold
and the per-element baseline that explanations use. Everything is JSON plus tensors (``aekit.tensorfile``):
nothing in it can run code, and the header is checked whole before anything is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from aekit.data.scaling import DataSpec
from aekit.device import resolve_device
from aekit.errors import ConfigError, ModelFileError
from aekit.estimators.anomaly import SCORES
from aekit.estimators.autoencoder import AutoEncoder

FORMAT = "aekit-detector"
# 2: each member keeps reference codes for the neighbour distance; 3: and the codes of known anomalies
FORMAT_VERSION = 3


def write(det, path: str | os.PathLike) -> None:
    """Write the fitted detector ``det`` (every member, its score statistics and the threshold) to one
    file: a header of JSON and the tensors, through ``aekit.tensorfile``."""
    import torch

    from aekit import tensorfile
    from aekit._version import __version__
    from aekit.models import family_of

    tensors: dict[str, torch.Tensor] = {"decision_scores": torch.from_numpy(det.decision_scores_)}
    if getattr(det, "element_baseline_", None) is not None:
        tensors["element_baseline"] = torch.from_numpy(np.ascontiguousarray(det.element_baseline_))
    members = []
    for k, (member, stats) in enumerate(zip(det.estimators_, det.stats_, strict=True)):
        tensors.update({f"member{k}.{name}": t for name, t in member.model_.state_dict().items()})
        tensors[f"reference{k}"] = torch.from_numpy(np.ascontiguousarray(det.references_[k], np.float32))
        if getattr(det, "anomaly_codes_", []):
            tensors[f"anomalies{k}"] = torch.from_numpy(np.ascontiguousarray(det.anomaly_codes_[k]))
        members.append(
            {
                "family": family_of(member.model_),
                "model_config": member.model_.config.to_dict(),
                "params": {k: v for k, v in member.get_params().items() if k != "run_dir"},
                "data": member.spec_.to_dict(),
                "history": member.history_,
                "stats": stats,
            }
        )
    params = det.get_params()
    if not isinstance(det.random_state, int | type(None)):
        params["random_state"] = None  # a RandomState object cannot go into JSON
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": type(det).__name__,
        "params": params,
        "scoring": det.scoring_,
        "sample_shape": list(det.sample_shape_),
        "threshold": det.threshold_,
        "members": members,
    }
    tensorfile.save(path, tensors, doc)


def read(cls, path: str | os.PathLike, device: str = "auto"):
    """A ``cls`` detector read from a file ``write`` made; nothing in the file can run code, and its whole
    header is checked (``_check_header``, each member's shapes against its weights) before a member is
    built."""
    from aekit import tensorfile

    networks, tensors, doc = tensorfile.load_networks(
        path, "detector file", lambda doc, declared: _check_header(path, doc, declared)
    )
    try:
        known = cls().get_params()
        params = {k: v for k, v in doc["params"].items() if k in known}
        if isinstance(params.get("hidden"), list):
            params["hidden"] = tuple(params["hidden"])
        det = cls(**params)
        det.device_ = resolve_device(device)
        det.scoring_ = doc["scoring"]
        det.sample_shape_ = tuple(doc["sample_shape"])
        det.n_features_in_ = int(np.prod(det.sample_shape_))
        det.threshold_ = float(doc["threshold"])
        det.decision_scores_ = tensors["decision_scores"].numpy()
        # Files from before explanations have none: explain() then takes its baseline from the data.
        baseline = tensors.get("element_baseline")
        det.element_baseline_ = None if baseline is None else baseline.numpy()
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(np.int64)
        det.estimators_, det.stats_, det._neighbor_index = [], [], []
        # Version 1 files have no reference codes: their members score without the neighbour part.
        det.references_ = [
            tensors[f"reference{k}"].numpy() if f"reference{k}" in tensors else None
            for k in range(len(doc["members"]))
        ]
        # Only detectors fitted with known anomalies (fit(X, y)) keep their codes.
        det.anomaly_codes_ = [
            tensors[f"anomalies{k}"].numpy() for k in range(len(doc["members"])) if f"anomalies{k}" in tensors
        ]
        for k, entry in enumerate(doc["members"]):
            model = networks[f"member{k}."]
            det.estimators_.append(_member(model.eval(), entry, det.device_))
            det.stats_.append(entry["stats"])
        det.history_ = det.estimators_[0].history_
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path} is a damaged detector file ({type(exc).__name__}: {detail}).") from None
    return det


def _check_header(path, doc: dict[str, Any], declared: dict) -> dict[str, Callable]:
    """Refuse a detector header that cannot be used; return each member's builder, by tensor prefix.

    A KeyError, TypeError or ValueError here says the header is damaged (``tensorfile.load_networks``).
    """
    from aekit.data.scaling import SCALINGS
    from aekit.io import check_autoencoder
    from aekit.models import FAMILIES

    if doc.get("format") != FORMAT:
        held = doc.get("format") or doc.get("kind")
        hint = (
            " It is an autoencoder: train a detector with 'aekit train --task detect' or AnomalyDetector.fit."
            if held == "aekit-model"
            else ""
        )
        raise ModelFileError(f"{path} is not an aekit anomaly detector (it holds {held!r}).{hint}")
    if not isinstance(doc.get("format_version"), int) or doc["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses detector format {doc.get('format_version')}, newer than this aekit reads "
            f"({FORMAT_VERSION}); upgrade aekit: pip install -U aekit."
        )
    choices = {
        "kind": ("auto", *FAMILIES),
        "scoring": ("auto", *SCORES),
        "scaling": SCALINGS,
    }
    for name, allowed in choices.items():
        if doc["params"].get(name, "auto") not in allowed:
            raise ConfigError(
                f"{name}={doc['params'][name]!r} is not one of {', '.join(map(repr, allowed))}."
            )
    if doc["scoring"] not in SCORES:
        raise ConfigError(f"scoring={doc['scoring']!r} is not one of {', '.join(map(repr, SCORES))}.")
    if not np.isfinite(float(doc["threshold"])) or len(declared["decision_scores"].shape) != 1:
        raise ValueError("its threshold or training scores are damaged")
    baseline = declared.get("element_baseline")
    if baseline is not None and list(baseline.shape) != list(doc["sample_shape"]):
        raise ValueError("its per-element baseline does not have the shape of its samples")
    members = doc["members"]
    if not isinstance(members, list) or not members:
        raise ValueError("it lists no members")
    builders = {}
    for k, entry in enumerate(members):
        builders[f"member{k}."] = check_autoencoder(entry)
        if list(entry["data"]["sample_shape"]) != list(doc["sample_shape"]):
            raise ValueError(f"member {k} was trained on samples of another shape than the detector's")
        reference = declared.get(f"reference{k}")
        code = entry["model_config"]["code_size"]
        if reference is not None and (len(reference.shape) != 2 or reference.shape[1] != code):
            raise ValueError(f"reference{k} is not a list of codes of size {code}")
        _check_stats(entry["stats"], code, None if reference is None else reference.shape[0])
        anomalies = declared.get(f"anomalies{k}")
        if ("anomalies" in entry["stats"]) != (anomalies is not None):
            raise ValueError(f"member {k}'s known anomalies and their statistics do not come together")
        if anomalies is not None and (len(anomalies.shape) != 2 or anomalies.shape[1] != code):
            raise ValueError(f"anomalies{k} is not a list of codes of size {code}")
    return builders


def _check_stats(stats: dict[str, Any], code: int, n_reference: int | None) -> None:
    """A member's score statistics must have the shapes scoring reads from them."""
    mean = np.asarray(stats["mean"], dtype=np.float64)
    precision = np.asarray(stats["precision"], dtype=np.float64)
    if mean.shape != (code,) or precision.shape != (code, code):
        raise ValueError(f"its score statistics do not fit codes of size {code}")
    parts = ["score", "distance", *(p for p in ("neighbors", "anomalies") if p in stats)]
    if not all(np.isfinite([float(stats[p]["median"]), float(stats[p]["spread"])]).all() for p in parts):
        raise ValueError("its score statistics are not finite numbers")
    if "neighbors" in stats:
        k = stats["neighbors"]["k"]
        if n_reference is None or type(k) is not int or not 1 <= k < n_reference:
            raise ValueError(f"its neighbour count {k!r} does not fit its reference codes")


def _member(model, entry: dict[str, Any], device: str) -> AutoEncoder:
    """A fitted AutoEncoder around a loaded member model (what AutoEncoder.load sets, from our header)."""
    params = {k: v for k, v in entry["params"].items() if k in AutoEncoder().get_params()}
    for key in ("hidden", "decoder_hidden"):
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    member = AutoEncoder(**params)
    member.spec_ = DataSpec.from_dict(entry["data"])
    member.history_ = list(entry.get("history", []))
    member.device_ = device
    member.model_ = model.to(device)
    member.n_features_in_ = member.spec_.n_features
    member._n_features_out = model.config.code_size
    return member
