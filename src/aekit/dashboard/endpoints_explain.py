"""GET /api/models/{model}/explanations: the Anomalies panel. The examples a detector flags, highest score
first, and what carries each score (``AnomalyDetector.explain``): for images the input, the detector's
reconstruction and a heat-map of where the error sits; for tables the columns with their shares.

The typical error of each pixel or column is the median over the examples themselves (explain's "batch"
baseline), unless the detector file stores one.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query

from aekit.dashboard import images
from aekit.dashboard.deps import WorkspaceDep
from aekit.estimators.explain import reconstruction
from aekit.reports.heatmap import colour

router = APIRouter(prefix="/api")

HINT = "pick an anomaly detector ('aekit train --task detect' makes one)."


@router.get("/models/{model}/explanations")
def explanations(
    model: str,
    ws: WorkspaceDep,
    n: Annotated[int, Query(ge=1, le=64)] = 12,
    top: Annotated[int, Query(ge=1, le=10)] = 3,
) -> dict[str, Any]:
    """At most ``n`` flagged examples, highest score first; ``top`` columns each for a table."""
    det = ws.of_type(model, "detector", HINT)
    examples = ws.examples(model)
    if "explanation" not in examples.extra:  # cached with the examples: dropped when the file changes
        examples.extra["explanation"] = det.explain(examples.x)
    ex = examples.extra["explanation"]
    flagged = np.flatnonzero(ex.flagged)
    shown = flagged[np.argsort(-ex.scores[flagged], kind="stable")][:n]
    items = [{"index": int(i), "score": float(ex.scores[i])} for i in shown]
    if ex.kind == "image" and len(shown):
        x, rng = examples.x, examples.value_range
        recon = reconstruction(det, x[shown])
        heat = ex.heatmaps()
        for item, i, out in zip(items, shown, recon, strict=True):
            item["input"] = images.data_url(images.to_uint8(x[i], rng))
            item["output"] = images.data_url(images.to_uint8(out, rng))
            item["heatmap"] = images.data_url(colour(heat[i]))
    elif ex.kind == "table":
        tops = ex.top_features(top)
        for item, i in zip(items, shown, strict=True):
            item["top"] = [{"column": str(name), "share": share} for name, share in tops[i]]
    return {
        "kind": ex.kind,
        "threshold": float(det.threshold_),
        "n_flagged": int(len(flagged)),
        "n_examples": int(len(ex.scores)),
        "baseline": ex.baseline,
        "items": items,
    }
