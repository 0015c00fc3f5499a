"""The model panels: the model list, reconstructions, the latent map, hover thumbnails, interpolation and
decoding a code (the VAE sliders)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from aekit.dashboard import images, typicality
from aekit.dashboard.deps import WorkspaceDep
from aekit.dashboard.workspace import listing
from aekit.errors import DataError

router = APIRouter(prefix="/api")

MAX_STEPS = 64
# the API's names for interpolation paths -> aekit.generate's
PATHS = {"linear": "linear", "spherical": "slerp"}


@router.get("/models")
def models(ws: WorkspaceDep) -> dict[str, Any]:
    return listing(ws)


@router.get("/models/{model}/reconstructions")
def reconstructions(
    model: str, ws: WorkspaceDep, n: Annotated[int, Query(ge=1, le=512)] = 16
) -> dict[str, Any]:
    """The first ``n`` examples beside their reconstructions, with per-image error; ``mean_error`` is over
    all the examples (up to 512), as a steadier figure than the mean of the few shown. Each item's
    ``typicality`` is its percentile among the training data; the answer's ``typicality`` says how many of
    the examples are atypical (aekit.dashboard.typicality; None for detectors)."""
    ex = ws.examples(model)
    shown = range(min(n, len(ex.x)))
    if "typicality" not in ex.extra:
        ex.extra["typicality"] = typicality.report(ws, model, ex.x)
    typical = ex.extra["typicality"]
    samples = (typical or {}).get("samples")
    return {
        "items": [
            {
                "index": i,
                "input": images.data_url(images.to_uint8(ex.x[i], ex.value_range)),
                "output": images.data_url(images.to_uint8(ex.recon[i], ex.value_range)),
                "error": float(ex.errors[i]),
                "typicality": None if samples is None else samples[i],
            }
            for i in shown
        ],
        "typicality": None if typical is None else {k: v for k, v in typical.items() if k != "samples"},
        "mean_error": float(ex.errors.mean()),
        "n_examples": len(ex.x),
    }


@router.get("/models/{model}/latent")
def latent(model: str, ws: WorkspaceDep, n: Annotated[int, Query(ge=1, le=512)] = 500) -> dict[str, Any]:
    """The examples' codes in 2-D: the code itself when it has two dimensions (one: against zero), else
    their first two principal components (fitted on all the examples' codes)."""
    ex = ws.examples(model)
    codes = ex.codes.astype(np.float64)  # (N, K)
    k = codes.shape[1]
    shown = min(n, len(codes))
    if k <= 2:
        points = codes if k == 2 else np.column_stack([codes[:, 0], np.zeros(len(codes))])
        method = "code"
    else:
        if "pca" not in ex.extra:
            from sklearn.decomposition import PCA

            ex.extra["pca"] = PCA(n_components=2, random_state=0).fit_transform(codes)
        points, method = ex.extra["pca"], "pca"
    lo, hi = np.percentile(codes, [1, 99], axis=0)
    return {
        "points": points[:shown].tolist(),
        "labels": None if ex.y is None else [_label(v) for v in ex.y[:shown]],
        "indices": list(range(shown)),
        "method": method,
        "code_size": k,
        "code_ranges": np.column_stack([lo, hi]).tolist(),
        "codes_mean": codes.mean(axis=0).tolist(),
    }


def _label(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@router.get("/models/{model}/items/{index}.png")
def item_png(model: str, index: str, ws: WorkspaceDep) -> Response:
    ex = ws.examples(model)
    i = ws.item(ex, index)
    return Response(images.png_bytes(images.to_uint8(ex.x[i], ex.value_range)), media_type="image/png")


class InterpolateBody(BaseModel):
    a: int
    b: int
    steps: int = Field(8, ge=2, le=MAX_STEPS)
    method: Literal["linear", "spherical"] = "linear"


@router.post("/models/{model}/interpolate")
def interpolate(model: str, body: InterpolateBody, ws: WorkspaceDep) -> dict[str, Any]:
    """Decoded codes on the path between examples ``a`` and ``b``, both ends included."""
    ae = ws.autoencoder(model)
    ex = ws.examples(model)
    a, b = ws.item(ex, body.a), ws.item(ex, body.b)
    path = ae.interpolate(ex.x[a], ex.x[b], steps=body.steps, method=PATHS[body.method])
    return {"images": [images.data_url(images.to_uint8(im, ex.value_range)) for im in path]}


class DecodeBody(BaseModel):
    z: list[float]


@router.post("/models/{model}/decode")
def decode(model: str, body: DecodeBody, ws: WorkspaceDep) -> dict[str, Any]:
    ae = ws.autoencoder(model)
    ex = ws.examples(model)
    k = int(ae.model_.config.code_size)
    z = np.asarray(body.z, np.float32)
    if z.shape != (k,):
        raise DataError(f"z must hold {k} numbers, one per code dimension of model {model!r}; got {len(z)}.")
    if not np.isfinite(z).all():
        raise DataError("z holds NaN or infinite values; send finite numbers.")
    return {"image": images.data_url(images.to_uint8(ae.inverse_transform(z[None])[0], ex.value_range))}
