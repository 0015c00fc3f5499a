"""Each sample's typicality for the page (``aekit.typicality``): its percentile among the training data and
whether it is less typical than 99.9% of it, so a user sees when a model is applied to data unlike what it
learned. Autoencoders (``report``), and restorers and codecs on an uploaded image (``image_report``); a
detector's anomaly score is its own measure of the same thing."""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.typicality import LIMIT, NOT_STORED


def report(ws: Any, model: str, x: np.ndarray) -> dict[str, Any] | None:
    """{"limit", "stored", "note", "samples": [{"percentile", "atypical", "by": {statistic: percentile}}],
    "atypical": count} for the samples ``x`` given to autoencoder ``model``; None for other models. A model
    that stores no typicality (its file predates it) has no samples and a note saying so."""
    if ws.type_of(ws.entry(model)) != "autoencoder":
        return None
    est = ws.autoencoder(model)
    if getattr(est, "typicality_", None) is None:
        return {"limit": LIMIT, "stored": False, "note": NOT_STORED, "samples": None, "atypical": None}
    result = est.typicality(x)
    by = {name: p.round(2).tolist() for name, p in result.percentiles.items()}
    samples = [
        {"percentile": round(float(p), 2), "atypical": bool(a), "by": {k: v[i] for k, v in by.items()}}
        for i, (p, a) in enumerate(zip(result.percentile, result.atypical, strict=True))
    ]
    return {
        "limit": LIMIT,
        "stored": True,
        "note": None,
        "samples": samples,
        "atypical": int(result.atypical.sum()),
    }


def image_report(model: Any, image: np.ndarray) -> dict[str, Any]:
    """{"limit", "stored", "note", "sample": {"percentile", "atypical"}} for one uploaded image given to a
    restorer or codec; a model whose file stores no typicality has no sample and a note saying so."""
    if getattr(model, "typicality_", None) is None:
        return {"limit": LIMIT, "stored": False, "note": NOT_STORED, "sample": None}
    result = model.typicality([image])  # a list: an RGB image is never taken for a stack of rows
    sample = {"percentile": round(float(result.percentile[0]), 2), "atypical": bool(result.atypical[0])}
    return {"limit": LIMIT, "stored": True, "note": None, "sample": sample}
