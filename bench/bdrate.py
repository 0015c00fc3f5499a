"""Bjontegaard deltas between two rate-distortion curves, and a curve's PSNR at a given rate.

Imported by bench/codec_photos.py (the script's folder is on sys.path); tested by tests/test_bdrate.py.

    bd_rate(ref_bpp, ref_psnr, test_bpp, test_psnr)   # % rate the test codec needs over the reference's
    bd_psnr(ref_bpp, ref_psnr, test_bpp, test_psnr)   # dB the test codec gains at equal rate
    psnr_at_rate(bpp, psnr, 0.5)                      # one curve read at 0.5 bpp (linear in log-rate)

BD-rate (G. Bjontegaard, VCEG-M33, 2001) with piecewise cubic interpolation instead of the original single
cubic fit, as in VCEG-AL22 and the JVET / AOM common-test-condition tools: log-rate as a function of PSNR
is interpolated per curve by a monotone piecewise cubic (scipy's PCHIP), integrated over the PSNR range
that both curves cover, and the mean difference of log-rates is turned into a rate ratio:
BD-rate = exp(mean(log r_test - log r_ref)) - 1, in percent; negative = the test codec needs fewer bits.
Points a codec dominates itself with (more bits, no more PSNR) and non-finite PSNRs (exact reconstructions)
are dropped first, so each curve is strictly increasing in both rate and PSNR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def rd_hull(rate: Sequence[float], psnr: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The curve's points with finite PSNR that no cheaper point matches: rates and PSNRs both increasing."""
    r, p = np.asarray(rate, float), np.asarray(psnr, float)
    keep = np.isfinite(p) & np.isfinite(r) & (r > 0)
    r, p = r[keep], p[keep]
    order = np.lexsort((-p, r))  # by rate; at equal rate the best PSNR first
    out_r, out_p = [], []
    for ri, pi in zip(r[order], p[order], strict=True):
        if not out_p or pi > out_p[-1]:  # a kept point's rate is always above the last one's
            out_r.append(ri)
            out_p.append(pi)
    return np.array(out_r), np.array(out_p)


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The interval both value sets span; ValueError where it is empty or a point."""
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if not hi > lo:
        raise ValueError(
            f"the curves do not overlap: {a.min():.4g}..{a.max():.4g} vs {b.min():.4g}..{b.max():.4g}"
        )
    return float(lo), float(hi)


def _curves(ref_rate, ref_psnr, test_rate, test_psnr):
    ref, test = rd_hull(ref_rate, ref_psnr), rd_hull(test_rate, test_psnr)
    for name, (r, _) in (("reference", ref), ("test", test)):
        if len(r) < 2:
            raise ValueError(f"the {name} curve has {len(r)} usable point(s); BD needs at least 2")
    return ref, test


def _mean_gap(x_ref, y_ref, x_test, y_test) -> tuple[float, float, float]:
    """Mean of y_test - y_ref over the common x range (each y a PCHIP of x), and that range."""
    lo, hi = overlap(x_ref, x_test)
    a = PchipInterpolator(x_ref, y_ref).integrate(lo, hi)
    b = PchipInterpolator(x_test, y_test).integrate(lo, hi)
    return float((b - a) / (hi - lo)), lo, hi


def bd_rate(
    ref_rate: Sequence[float],
    ref_psnr: Sequence[float],
    test_rate: Sequence[float],
    test_psnr: Sequence[float],
) -> float:
    """Bjontegaard delta rate in percent of the test curve against the reference curve (negative: fewer bits).

    ValueError where the curves' PSNR ranges do not overlap or either has fewer than 2 usable points.
    """
    (rr, rp), (tr, tp) = _curves(ref_rate, ref_psnr, test_rate, test_psnr)
    gap, _, _ = _mean_gap(rp, np.log(rr), tp, np.log(tr))
    return float(np.expm1(gap) * 100)


def bd_psnr(
    ref_rate: Sequence[float],
    ref_psnr: Sequence[float],
    test_rate: Sequence[float],
    test_psnr: Sequence[float],
) -> float:
    """Bjontegaard delta PSNR in dB of the test curve over the reference, over their common log-rate range."""
    (rr, rp), (tr, tp) = _curves(ref_rate, ref_psnr, test_rate, test_psnr)
    gap, _, _ = _mean_gap(np.log(rr), rp, np.log(tr), tp)
    return gap


def psnr_range(
    ref_rate: Sequence[float],
    ref_psnr: Sequence[float],
    test_rate: Sequence[float],
    test_psnr: Sequence[float],
) -> tuple[float, float]:
    """The PSNR interval (dB) that ``bd_rate`` integrates over."""
    (_, rp), (_, tp) = _curves(ref_rate, ref_psnr, test_rate, test_psnr)
    return overlap(rp, tp)


def psnr_at_rate(rate: Sequence[float], psnr: Sequence[float], at: float) -> float | None:
    """The curve's PSNR at rate ``at``, linear in log-rate between its points; None outside its rates.

    Uses every point with a finite PSNR (no hull), sorted by rate.
    """
    r, p = np.asarray(rate, float), np.asarray(psnr, float)
    keep = np.isfinite(p) & (r > 0)
    r, p = r[keep], p[keep]
    if len(r) == 0 or not r.min() <= at <= r.max():
        return None
    order = np.argsort(r, kind="stable")
    return float(np.interp(np.log(at), np.log(r[order]), p[order]))
