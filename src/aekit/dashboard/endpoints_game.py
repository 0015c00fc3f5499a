"""POST /api/models/{model}/game: the autoencoder game. The user's drawing goes through the bottleneck.

The drawing (any size) is converted to the model's channels, shrunk to its sample size by area
averaging, and inverted when its brightness is the opposite of the data's (dark strokes on white, where
the digits are white on black). The answer shows what the model saw, its code, its reconstruction, the
error with the percentile it reaches among the examples' errors, how typical the drawing is of the
training data (``aekit.typicality``), and optionally the denoising mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from aekit.dashboard import images, typicality
from aekit.dashboard.deps import WorkspaceDep
from aekit.dashboard.workspace import Examples, Workspace, mse_per_sample
from aekit.errors import DataError

router = APIRouter(prefix="/api")

NOISE_SEED = 0  # the same drawing gets the same noise, so the denoised picture only changes as it does


class GameBody(BaseModel):
    image: str
    noise: float = Field(0.0, ge=0.0, le=1.0)


@router.post("/models/{model}/game")
def game(model: str, body: GameBody, ws: WorkspaceDep) -> dict[str, Any]:
    ae = ws.autoencoder(model)
    ex = ws.examples(model)
    spec = ae.spec_
    if not spec.is_image:
        raise DataError(
            f"model {model!r} takes table rows of shape {tuple(spec.sample_shape)}, not images; the game "
            "needs a model trained on images (e.g. aekit train --data digits)."
        )
    x = _drawing(body.image, spec.sample_shape, ex)  # (1, *sample_shape)
    code = ae.transform(x)[0]
    out = ae.reconstruct(x)
    error = float(mse_per_sample(spec, x, out)[0])
    answer = {
        "input": _url(x[0], ex),
        "code": code.tolist(),
        "output": _url(out[0], ex),
        "error": error,
        "anomaly": _anomaly(ws, model, x, error, ex),
        "typicality": _typicality(ws, model, x),
        "noisy": None,
        "denoised": None,
    }
    if body.noise > 0:
        scaled = spec.to_model(x)  # noise is added to what the model sees, as denoising training does
        noisy_scaled = scaled + np.random.default_rng(NOISE_SEED).normal(0.0, body.noise, scaled.shape)
        low, high = spec.value_range
        if low is not None:
            noisy_scaled = np.clip(noisy_scaled, low, high)
        noisy = spec.from_model(noisy_scaled.astype(np.float32))
        answer["noisy"] = _url(noisy[0], ex)
        answer["denoised"] = _url(ae.reconstruct(noisy)[0], ex)
    return answer


def _typicality(ws: Workspace, model: str, x: np.ndarray) -> dict[str, Any] | None:
    """The drawing's typicality: the report's fields with its one sample as "sample"."""
    report = typicality.report(ws, model, x)
    if report is None:
        return None
    samples = report.pop("samples")
    return {**report, "sample": None if samples is None else samples[0]}


def _url(sample: np.ndarray, ex: Examples) -> str:
    return images.data_url(images.to_uint8(sample, ex.value_range))


def _drawing(url: str, sample_shape: tuple[int, ...], ex: Examples) -> np.ndarray:
    """The drawing as one sample in the data's layout, range and dtype: (1, *sample_shape)."""
    h, w = sample_shape[:2]
    channels = sample_shape[2] if len(sample_shape) == 3 else 1
    if channels not in images.MODES:
        raise DataError(f"the game draws grayscale or RGB images; this model takes {channels} channels.")
    picture = images.resize(images.decode_data_url(url, "the drawing", channels), h, w) / 255.0
    data_mean = float(np.mean(images.to_uint8(ex.x, ex.value_range))) / 255.0
    if (picture.mean() - 0.5) * (data_mean - 0.5) < 0:  # light on dark where the data is dark on light
        picture = 1.0 - picture
    picture = picture.reshape(sample_shape)
    return images.from_unit(picture, ex.value_range, ex.x.dtype.name)[None]


def _anomaly(ws: Workspace, model: str, x: np.ndarray, error: float, ex: Examples) -> dict[str, float]:
    """The anomaly score and the share (in %) of the examples that score at most as high. A detector
    scores with its own decision_function; an autoencoder with its reconstruction error."""
    entry = ws.entry(model)
    if ws.type_of(entry) == "detector":
        detector = ws.estimator(entry)
        if "detector_scores" not in ex.extra:
            ex.extra["detector_scores"] = detector.decision_function(ex.x)
        reference, score = ex.extra["detector_scores"], float(detector.decision_function(x)[0])
    else:
        reference, score = ex.errors, error
    return {"score": score, "percentile": float(100.0 * np.mean(reference <= score))}
