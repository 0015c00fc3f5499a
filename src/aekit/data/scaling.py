"""How user arrays become model tensors and back: layout (table / image / series) and value scaling.

The spec is learned in ``fit`` and stored with the model, so ``transform`` on new data and
``inverse_transform`` on codes use exactly the training-time scaling, and outputs come back in the
user's layout and dtype (uint8 images in, uint8 images out).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aekit.errors import DataError, DataRangeWarning

SCALINGS = ("auto", "standard", "robust", "minmax", "none")
# What a fitted spec holds: "auto" resolved, uint8 data as "divide255"; the first three keep per-feature
# offsets and scales.
FITTED_SCALINGS = ("standard", "robust", "minmax", "divide255", "none")
PER_FEATURE = FITTED_SCALINGS[:3]
SPEC_DTYPES = ("uint8", "float32")

# IQR / 1.349 is the standard deviation of a normal distribution: robust scaling then matches "standard"
# on clean Gaussian data, while outliers (what anomaly detection looks for) cannot inflate the scale.
IQR_TO_STD = 1.349


@dataclass
class DataSpec:
    sample_shape: tuple[int, ...]  # one sample as the user gives it: (D,), (H, W) or (H, W, C)
    dtype: str  # "uint8" or "float32": what inverse_transform returns
    scaling: str  # "divide255", "standard", "robust", "minmax" or "none"
    offset: list[float] = field(default_factory=list)  # per feature: model value = (x - offset) / scale
    scale: list[float] = field(default_factory=list)
    unit_range: bool = False  # "none" scaling on data already in [0, 1]
    # the training data's smallest and largest value, in the user's units (None in files from before 0.x,
    # where ``training_range`` derives them from the scaling when it can)
    low: float | None = None
    high: float | None = None
    # for a series model (kind="conv1d"): samples are series (T,) or (T, C), which the model sees
    # channels first as (C, T); False in every file from before series models
    series: bool = False

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) >= 2 and not self.series

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model's view of one sample: (D,), channels-first (C, H, W), or for series (C, T)."""
        if self.series:
            return (self.sample_shape[1] if len(self.sample_shape) == 2 else 1, self.sample_shape[0])
        if not self.is_image:
            return self.sample_shape
        h, w = self.sample_shape[:2]
        c = self.sample_shape[2] if len(self.sample_shape) == 3 else 1
        return (c, h, w)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.sample_shape))

    @property
    def value_range(self) -> tuple[float | None, float | None]:
        """Range of the scaled values the model sees, when bounded (used to clip noise, pick outputs)."""
        return (0.0, 1.0) if self.scaling in ("divide255", "minmax") or self.unit_range else (None, None)

    @property
    def training_range(self) -> tuple[float, float] | None:
        """The training data's (min, max) in the user's units: stored, else derived from the scaling
        (older files), else None (standard/robust scaling saved without it)."""
        if self.low is not None and self.high is not None:
            return self.low, self.high
        if self.scaling == "divide255":
            return 0.0, 255.0
        if self.unit_range:
            return 0.0, 1.0
        if self.scaling == "minmax" and self.offset:
            lo = np.asarray(self.offset, np.float64)
            return float(lo.min()), float((lo + np.asarray(self.scale, np.float64)).max())
        return None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "sample_shape": list(self.sample_shape),
            "dtype": self.dtype,
            "scaling": self.scaling,
            "offset": self.offset,
            "scale": self.scale,
            "unit_range": self.unit_range,
        }
        if self.low is not None and self.high is not None:
            d["low"], d["high"] = self.low, self.high
        if self.series:
            d["series"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        """The spec stored in a file's header: untrusted, so every field is checked (``validate``)."""
        spec = cls(
            tuple(d["sample_shape"]),
            d["dtype"],
            d["scaling"],
            list(d["offset"]),
            list(d["scale"]),
            bool(d.get("unit_range", False)),
            d.get("low"),
            d.get("high"),
            d.get("series", False),
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise DataError unless every field is one that ``fit_spec`` could have made."""
        shape = self.sample_shape
        if not 1 <= len(shape) <= 3 or not all(type(s) is int and s >= 1 for s in shape):
            raise DataError(
                "data sample_shape must be 1 to 3 positive sizes, (D,), (H, W) or (H, W, C); "
                f"got {list(shape)}."
            )
        if self.dtype not in SPEC_DTYPES:
            raise DataError(f"data dtype={self.dtype!r} is not one of {', '.join(map(repr, SPEC_DTYPES))}.")
        if not isinstance(self.series, bool):
            raise DataError(f"data series must be true or false; got {self.series!r}.")
        if self.series:
            check_series_shape(shape)
        if self.scaling not in FITTED_SCALINGS:
            raise DataError(
                f"data scaling={self.scaling!r} is not one of {', '.join(map(repr, FITTED_SCALINGS))}."
            )
        n = math.prod(shape)
        for name in ("offset", "scale"):
            try:
                values = np.asarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(f"data {name} must be a list of numbers.") from None
            if values.ndim != 1 or not np.isfinite(values).all():
                raise DataError(f"data {name} must be a list of finite numbers.")
            if self.scaling in PER_FEATURE and len(values) != n:
                raise DataError(
                    f"data scaling {self.scaling!r} needs one {name} per feature ({n:,}); "
                    f"got {len(values):,}."
                )
            if name == "scale" and self.scaling in PER_FEATURE and not values.all():
                raise DataError("data scale values must be non-zero: they divide the data.")
        bounds = (self.low, self.high)
        if bounds != (None, None) and not (
            all(isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
            and self.low <= self.high
        ):
            raise DataError(f"data low/high must be two finite numbers, low <= high; got {list(bounds)}.")

    # -- conversions --------------------------------------------------------------------------------------
    def to_model(self, x: np.ndarray) -> np.ndarray:
        """User array (already checked) -> float32 array shaped (N, *input_shape), scaled."""
        out = _float32_copy(x)  # always a fresh, writable copy: the user's array is never touched
        if self.scaling == "divide255":
            out /= 255.0
        elif self.scaling != "none":
            out -= np.asarray(self.offset, np.float32).reshape(self.sample_shape)
            out /= np.asarray(self.scale, np.float32).reshape(self.sample_shape)
        if self.series:
            if len(self.sample_shape) == 1:
                return out.reshape(len(out), 1, -1)  # (N, T) -> (N, 1, T): a view
            return np.ascontiguousarray(out.transpose(0, 2, 1))  # (N, T, C) -> (N, C, T)
        if not self.is_image:
            return out
        c, h, w = self.input_shape
        if c == 1:
            return out.reshape(len(out), 1, h, w)  # a view: no transpose needed for one channel
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)

    def from_model(self, y: np.ndarray) -> np.ndarray:
        """Model output (N, *input_shape) -> the user's layout, value range and dtype."""
        if self.series:
            y = y.transpose(0, 2, 1).reshape(len(y), *self.sample_shape)  # (N, C, T) -> (N, T[, C])
        elif self.is_image:
            y = y.transpose(0, 2, 3, 1).reshape(len(y), *self.sample_shape)
        y = np.array(y, dtype=np.float32)
        if self.scaling == "divide255":
            y *= 255.0
        elif self.scaling != "none":
            y *= np.asarray(self.scale, np.float32).reshape(self.sample_shape)
            y += np.asarray(self.offset, np.float32).reshape(self.sample_shape)
        if self.dtype == "uint8":
            return np.clip(np.rint(y), 0, 255).astype(np.uint8)
        return y


def _float32_copy(x: np.ndarray) -> np.ndarray:
    """A float32 copy of ``x``, allocated by torch.

    NumPy asks the kernel for huge pages for big arrays, and where the kernel compacts memory first
    (transparent huge pages with defrag=madvise) that costs up to ~0.3 s per 100 MB, several percent
    of a short training run. torch's allocator does not ask, and the result is shared, not copied again.
    """
    import torch

    with warnings.catch_warnings():
        # Read-only input is fine: it is only read, and the copy below is a new tensor.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        source = torch.from_numpy(np.ascontiguousarray(x))
    return source.to(torch.float32, copy=True).numpy()


def check_array(x: Any, what: str = "X") -> np.ndarray:
    """A numeric array of shape (N, D), (N, H, W) or (N, H, W, C) with only finite values, or a DataError."""
    try:
        import scipy.sparse

        if scipy.sparse.issparse(x):
            raise DataError(f"{what} is a sparse matrix; sparse data is not supported. Pass x.toarray().")
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        pass
    arr = np.asarray(x)
    if arr.dtype == object:
        arr = arr.astype(np.float64)  # raises TypeError for non-numbers, as scikit-learn does
    if np.iscomplexobj(arr):
        # Complex numbers pass the np.number test below and would silently lose their imaginary part.
        # The wording "Complex data not supported" is scikit-learn's (its estimator checks match on it).
        raise DataError(
            f"Complex data not supported: {what} has dtype {arr.dtype}. "
            "Pass real values, e.g. x.real or np.abs(x)."
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(
            f"{what} must be numeric; got dtype {arr.dtype}. Convert or drop the non-numeric columns."
        )
    if arr.ndim < 2 or arr.ndim > 4:
        raise DataError(
            f"{what} must be 2-D (N, D) for tables or 3-D/4-D (N, H, W[, C]) for images; "
            f"got shape {arr.shape}. "
            "Reshape your data, e.g. x.reshape(1, -1) for a single sample."
        )
    # scikit-learn's wording ("0 sample(s) (shape=...) while a minimum of 1 is required"), which its
    # estimator checks match on; the old "no samples" message was also wrong for (N, 0) arrays.
    if arr.shape[0] == 0:
        raise DataError(f"{what} has 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.size == 0:
        raise DataError(
            f"{what} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required. "
            "Check that the columns were not all dropped."
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(
            f"{what} contains NaN or inf ({bad} values); remove or impute them first "
            "(a model takes finite values only)."
        )
    return arr


def check_scaling(scaling: str) -> None:
    if scaling not in SCALINGS:
        raise DataError(f"scaling={scaling!r} is not one of {', '.join(map(repr, SCALINGS))}.")


def spec_dtype(dtype: np.dtype) -> str:
    """What inverse_transform gives back for training data of ``dtype``."""
    return "uint8" if dtype == np.uint8 else "float32"


def choose_scaling(scaling: str, loss: str, dtype: str, lo: float, hi: float) -> str:
    """The scaling that ``scaling`` (maybe "auto") stands for, given the data's dtype and value range;
    shared by ``fit_spec`` and the streaming statistics of data read lazily (aekit.data.lazy)."""
    if (
        loss == "bce"
        and dtype != "uint8"
        and (lo < 0 or hi > 1)
        and scaling in ("auto", "none", "standard", "robust")
    ):
        raise DataError(
            f"loss='bce' needs data in [0, 1]; got values from {lo:g} to {hi:g}. "
            "Scale the data, use scaling='minmax', or use loss='mse'."
        )
    if scaling == "auto":
        scaling = "divide255" if dtype == "uint8" else ("none" if lo >= 0 and hi <= 1 else "standard")
    return scaling


def check_series_shape(sample_shape: tuple[int, ...]) -> None:
    """Series samples are (T,) or (T, C): one DataError for anything else, such as images."""
    if len(sample_shape) not in (1, 2):
        raise DataError(
            f"a series model (kind='conv1d') takes series (N, T) or (N, T, C), time along axis 1 and "
            f"channels last; got samples of shape {tuple(sample_shape)}. Use kind='conv' for images."
        )


def fit_spec(x: np.ndarray, scaling: str, loss: str, series: bool = False) -> DataSpec:
    """Choose the scaling for training data ``x`` (checked by ``check_array``); ``series``: the samples
    are series for a series model (``DataSpec.series``)."""
    check_scaling(scaling)
    shape = tuple(int(s) for s in x.shape[1:])
    if series:
        check_series_shape(shape)
    dtype = spec_dtype(x.dtype)
    lo, hi = float(x.min()), float(x.max())
    scaling = choose_scaling(scaling, loss, dtype, lo, hi)
    spec = DataSpec(shape, dtype, scaling, series=series)
    flat = x.reshape(len(x), -1)
    if scaling == "standard":
        # float64 accumulators keep the statistics exact without a float64 copy of the whole data set
        mean = flat.mean(axis=0, dtype=np.float64)
        std = flat.std(axis=0, dtype=np.float64)
        spec.offset = mean.tolist()
        spec.scale = np.where(std > 1e-12, std, 1.0).tolist()  # constant features stay put, no division by 0
    elif scaling == "robust":
        # Median and interquartile range; a feature whose IQR is 0 (mostly one value, e.g. a rare flag)
        # falls back to its standard deviation, and a constant one to 1.
        q1, median, q3 = np.percentile(flat, [25, 50, 75], axis=0).astype(np.float64)
        std = flat.std(axis=0, dtype=np.float64)
        iqr = (q3 - q1) / IQR_TO_STD
        spec.offset = median.tolist()
        spec.scale = np.where(iqr > 1e-12, iqr, np.where(std > 1e-12, std, 1.0)).tolist()
    elif scaling == "minmax":
        lo_f, hi_f = flat.min(axis=0).astype(np.float64), flat.max(axis=0).astype(np.float64)
        spec.offset = lo_f.tolist()
        spec.scale = np.where(hi_f - lo_f > 1e-12, hi_f - lo_f, 1.0).tolist()
    spec.unit_range = scaling == "none" and lo >= 0 and hi <= 1
    spec.low, spec.high = lo, hi
    return spec


def check_like(
    x: Any, spec: DataSpec, estimator: str, what: str = "X", outliers_expected: bool = False
) -> np.ndarray:
    """Check new data against the training data's shape, with scikit-learn's wording for feature counts,
    and bring it to the training data's units (``conform``)."""
    arr = check_array(x, what)
    got = tuple(arr.shape[1:])
    if got != spec.sample_shape:
        n_got, n_exp = int(np.prod(got)), spec.n_features
        if len(got) == 1 and len(spec.sample_shape) == 1:
            raise DataError(
                f"X has {n_got} features, but {estimator} is expecting {n_exp} features as input. "
                "Pass data with the same columns as in training."
            )
        raise DataError(
            f"{what} has samples of shape {got}, but the model was trained on samples of shape "
            f"{spec.sample_shape}. Resize or reshape the data to match."
        )
    return conform(arr, spec, what, outliers_expected)


# New data is "far" from the training range when more than FAR_SHARE of its values lie more than one
# training span beyond it (a few outliers are data, not a scale mistake), and "squeezed" (images only)
# when its own span is under 1/8 of the training span: 0..16 digits given to a model of 0..255 pixels.
# Tables are not checked for squeezing: one row spans far less than the whole training set and is fine.
FAR_SPANS = 1.0
FAR_SHARE = 0.01
SQUEEZED = 1 / 8


def conform(x: np.ndarray, spec: DataSpec, what: str = "X", outliers_expected: bool = False) -> np.ndarray:
    """``x`` (checked) brought to the training data's units where that is unambiguous, else a warning.

    8-bit data for a model trained on values in [0, 1] is divided by 255, and floats in [0, 1] for a model
    trained on 8-bit images are multiplied by 255 (a new float array; the user's is never touched).
    Data still far from the training range gets one DataRangeWarning saying both ranges and the fix;
    ``outliers_expected`` (anomaly detection) leaves out the "far" check, since anomalies are exactly that.
    """
    known = spec.training_range
    if known is None or x.size == 0:
        return x
    t_lo, t_hi = known
    lo, hi = float(x.min()), float(x.max())
    if x.dtype == np.uint8 and spec.dtype != "uint8" and t_lo >= 0 and t_hi <= 1 and hi > 1:
        x, lo, hi = x.astype(np.float32) / np.float32(255), lo / 255, hi / 255
    elif x.dtype.kind == "f" and spec.scaling == "divide255" and t_hi > 127 and lo >= 0 and 0 < hi <= 1:
        x, lo, hi = x.astype(np.float32) * np.float32(255), lo * 255, hi * 255
    span = max(t_hi - t_lo, 1e-12)
    low_end, high_end = t_lo - FAR_SPANS * span, t_hi + FAR_SPANS * span
    far = (
        not outliers_expected
        and (lo < low_end or hi > high_end)
        and np.count_nonzero((x < low_end) | (x > high_end)) > FAR_SHARE * x.size
    )
    squeezed = spec.is_image and 0 < hi - lo < SQUEEZED * span
    if far or squeezed:
        trained = "8-bit images" if spec.scaling == "divide255" else "data"
        fix = f"rescale it to {t_lo:.4g}..{t_hi:.4g} as in training"
        if squeezed and lo >= 0 and t_lo >= 0:
            fix += f" (e.g. x * {t_hi / hi:.3g})"
        warnings.warn(
            f"{what} has values from {lo:.4g} to {hi:.4g}, but the model was trained on {trained} from "
            f"{t_lo:.4g} to {t_hi:.4g}, so its outputs will be meaningless; {fix}, or train a model on data "
            "like this.",
            DataRangeWarning,
            stacklevel=3,
        )
    return x
