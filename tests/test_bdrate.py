"""bench/bdrate.py: Bjontegaard deltas on curves whose answer can be worked out by hand."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bdrate import bd_psnr, bd_rate, psnr_at_rate, psnr_range, rd_hull  # noqa: E402

RATES = np.array([0.25, 0.5, 1.0, 2.0])
PSNRS = np.array([28.0, 31.0, 34.5, 38.0])


def test_twenty_percent_fewer_bits_at_every_psnr_is_minus_20():
    assert bd_rate(RATES, PSNRS, 0.8 * RATES, PSNRS) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(0.8 * RATES, PSNRS, RATES, PSNRS) == pytest.approx(25.0, abs=1e-9)  # and back: 1/0.8
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-12)


def test_one_db_more_at_every_rate_is_plus_one_db():
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS + 1.0) == pytest.approx(1.0, abs=1e-9)


def test_constant_ratio_on_a_log_linear_curve_sampled_at_other_points():
    # PSNR = 6 log2(bpp) + 32 (6 dB per doubling); the test codec needs 30% fewer bits everywhere, and its
    # points fall elsewhere: on a straight line in (PSNR, log rate) the interpolation is exact.
    ref = np.array([0.2, 0.45, 0.9, 1.7, 3.0])
    test = np.array([0.15, 0.3, 0.6, 1.2, 2.4]) * 0.7
    curve = lambda r, scale=1.0: 6 * np.log2(r / scale) + 32  # noqa: E731
    assert bd_rate(ref, curve(ref), test, curve(test, 0.7)) == pytest.approx(-30.0, abs=1e-9)
    lo, hi = psnr_range(ref, curve(ref), test, curve(test, 0.7))
    assert lo == pytest.approx(curve(0.2)) and hi == pytest.approx(curve(2.4))
    # 30% fewer bits at 6 dB per doubling is 6 log2(1/0.7) dB more at equal rate
    assert bd_psnr(ref, curve(ref), test, curve(test, 0.7)) == pytest.approx(6 * math.log2(1 / 0.7), abs=1e-9)


def test_disjoint_or_short_curves_are_refused():
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(RATES, PSNRS, RATES, PSNRS + 20)
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(RATES, PSNRS, [0.5], [31.0])


def test_hull_drops_dominated_and_exact_points():
    r, p = rd_hull([0.5, 0.25, 1.0, 1.2, 3.0, 0.5], [31.0, 28.0, 30.0, 35.0, math.inf, 30.0])
    assert r.tolist() == [0.25, 0.5, 1.2] and p.tolist() == [28.0, 31.0, 35.0]


def test_psnr_at_rate_is_linear_in_log_rate_and_none_outside():
    assert psnr_at_rate(RATES, PSNRS, 0.5) == 31.0
    assert psnr_at_rate(RATES, PSNRS, math.sqrt(0.5 * 1.0)) == pytest.approx((31.0 + 34.5) / 2)
    assert psnr_at_rate(RATES, PSNRS, 0.2) is None and psnr_at_rate(RATES, PSNRS, 2.5) is None
