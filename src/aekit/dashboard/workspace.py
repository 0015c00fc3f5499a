"""The models the dashboard knows by name, the example data their panels show, and caches of both.

Models are every ``*.aek`` in the runs folder and one level below it, the model file each run's run.json
names (``aekit train --out`` may write it anywhere), the files given with --model, and the built-in
codecs. Each is known by its file stem (``-2``, ``-3`` on clashes); a request names one and the name is
looked up in that listing, never turned into a path. Loaded estimators and the examples'
codes and reconstructions are cached per file and invalidated when the file changes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aekit.dashboard import images, runs
from aekit.dashboard.errors import NotFound
from aekit.errors import AekitError, DataError, ModelFileError

N_EXAMPLES = 512  # the model panels use the first this many samples of the data's test split


def _load_autoencoder(path: Path, device: str):
    from aekit import AutoEncoder

    return AutoEncoder.load(path, device=device)


def _load_detector(path: Path, device: str):
    from aekit import AnomalyDetector

    return AnomalyDetector.load(path, device=device)


def _load_restorer(path: Path, device: str):
    from aekit.restore import ImageRestorer

    return ImageRestorer.load(path, device=device)


def _load_codec(path: Path, device: str, name: str | None = None):
    from aekit.codec import ImageCodec

    return ImageCodec.load(path, name=name)


# the "estimator" a model file's header names -> (the type the API reports, how to open it)
TYPES: dict[str, tuple[str, Callable[[Path, str], Any]]] = {
    "AutoEncoder": ("autoencoder", _load_autoencoder),
    "AnomalyDetector": ("detector", _load_detector),
    "ImageRestorer": ("restore", _load_restorer),
    "ImageCodec": ("codec", _load_codec),
}


@dataclass
class ModelEntry:
    name: str
    path: Path
    builtin: str | None = None  # the built-in codec's name, for archives to record


@dataclass
class Examples:
    """What a model's panels show: the first samples of the data's split, and what the model makes of them."""

    x: np.ndarray  # (N, *sample_shape) in the data's dtype
    y: np.ndarray | None  # labels, when the data has them
    value_range: tuple[float, float]  # see images.display_range
    errors: np.ndarray  # (N,) MSE per sample on the values the model sees
    codes: np.ndarray  # (N, code_size)
    recon: np.ndarray  # (N, *sample_shape) in the data's dtype
    extra: dict[str, Any] = field(default_factory=dict)  # per-panel caches (latent PCA, detector scores)


class Workspace:
    """The state behind the API: the runs folder, the data, and the models by name."""

    def __init__(
        self,
        runs_dir: str | Path,
        data: str = "digits",
        models: Sequence[str | Path] = (),
        device: str = "auto",
    ):
        self.runs_dir = Path(runs_dir)
        self.data_source = str(data)
        self.model_files = [Path(m) for m in models]
        self.device = device
        self._lock = threading.RLock()  # requests run in a thread pool; loading is done once
        self._dataset = None
        self._headers: dict[tuple, dict[str, Any]] = {}
        self._estimators: dict[tuple, Any] = {}
        self._examples: dict[tuple, Examples] = {}

    # -- data -----------------------------------------------------------------------------------------------
    def dataset(self):
        with self._lock:
            if self._dataset is None:
                from aekit.data import load

                self._dataset = load(self.data_source)
            return self._dataset

    def split(self) -> tuple[str, np.ndarray, np.ndarray | None]:
        """("test" or "train", x, y): the test split, or the training split when there is none."""
        ds = self.dataset()
        if ds.x_test is not None and len(ds.x_test):
            return "test", ds.x_test, ds.y_test
        return "train", ds.x_train, ds.y_train

    # -- models ---------------------------------------------------------------------------------------------
    def entries(self) -> dict[str, ModelEntry]:
        """Name -> model, looked up afresh: files that appear in the runs folder are listed at once."""
        from aekit.codec.builtin import CODECS
        from aekit.restore.builtin import RESTORERS

        named: dict[str, ModelEntry] = {}
        for table in (CODECS, RESTORERS):
            for name in table.names():
                with contextlib.suppress(ModelFileError):  # weights not installed: the others still work
                    named[name] = ModelEntry(
                        name, table.path(name), builtin=name if table is CODECS else None
                    )
        seen = {e.path.resolve() for e in named.values()}
        for path in [*self._runs_models(), *self._recorded_models(), *self.model_files]:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            name, n = path.stem, 1
            while name in named:
                n += 1
                name = f"{path.stem}-{n}"
            named[name] = ModelEntry(name, path)
        return named

    def _runs_models(self) -> list[Path]:
        root = self.runs_dir
        if not root.is_dir():
            return []
        found = sorted(root.glob("*.aek")) + sorted(root.glob("*/*.aek"))
        return [p for p in found if p.is_file() and not p.name.startswith(".") and runs.inside(p, root)]

    def _recorded_models(self) -> list[Path]:
        """The model files the runs' run.json files name: only those, wherever --out put them."""
        root = self.runs_dir
        folders = runs.run_folders(root).values()
        found = [runs.model_file(runs.read_config(folder, root), root) for folder in folders]
        return [p for p in found if p is not None and p.is_file()]

    def run_model(self, config: dict[str, Any], entries: dict[str, ModelEntry]) -> dict[str, Any] | None:
        """The description of the model file ``config`` (a run.json) names, from ``entries`` (a listing);
        None when that file is not listed or does not open."""
        path = runs.model_file(config, self.runs_dir)
        if path is None:
            return None
        for entry in entries.values():
            if entry.path.resolve() == path.resolve():
                try:
                    return self.describe(entry)
                except (AekitError, OSError):
                    return None
        return None

    def entry(self, name: str) -> ModelEntry:
        entries = self.entries()
        if name not in entries:
            raise NotFound(f"no model named {name!r}; GET /api/models lists the models the dashboard knows.")
        return entries[name]

    @staticmethod
    def _key(entry: ModelEntry) -> tuple:
        """The file as it is now: a model saved again (a run that finished) is a new key."""
        try:
            stat = entry.path.stat()
        except OSError:
            raise NotFound(
                f"model {entry.name!r} is gone ({entry.path} was removed); reload the page."
            ) from None
        return (str(entry.path.resolve()), stat.st_mtime_ns, stat.st_size)

    def _cached(self, cache: dict[tuple, Any], entry: ModelEntry, make: Callable[[], Any]) -> Any:
        """``cache[key of entry]``, made once; older versions of the same file are dropped."""
        key = self._key(entry)
        with self._lock:
            if key not in cache:
                for old in [k for k in cache if k[0] == key[0]]:
                    del cache[old]
                cache[key] = make()
            return cache[key]

    def header(self, entry: ModelEntry) -> dict[str, Any]:
        """The JSON header of a model file (checked against its checksum); ModelFileError if damaged."""
        from aekit import tensorfile

        return self._cached(self._headers, entry, lambda: tensorfile.read_header(entry.path)[1])

    def type_of(self, entry: ModelEntry) -> str:
        estimator = self.header(entry).get("estimator", "AutoEncoder")
        if estimator not in TYPES:
            raise ModelFileError(f"{entry.path} holds a {estimator!r}, which the dashboard cannot show.")
        return TYPES[estimator][0]

    def estimator(self, entry: ModelEntry):
        def make():
            if entry.builtin:  # archives record the built-in's name, not a path
                return _load_codec(entry.path, self.device, name=entry.builtin)
            load = TYPES[self.header(entry).get("estimator", "AutoEncoder")][1]
            return load(entry.path, self.device)

        self.type_of(entry)  # a file of a type the dashboard cannot show is refused here
        return self._cached(self._estimators, entry, make)

    def of_type(self, name: str, wanted: str, hint: str):
        """The estimator named ``name``, which must be of type ``wanted``; else a 400 saying which to pick."""
        entry = self.entry(name)
        got = self.type_of(entry)
        if got != wanted:
            raise DataError(f"model {name!r} is of type {got!r}, not {wanted!r}; {hint}")
        return self.estimator(entry)

    def autoencoder(self, name: str):
        """The autoencoder behind ``name``: the model itself, or a detector's first member."""
        entry = self.entry(name)
        kind = self.type_of(entry)
        if kind not in ("autoencoder", "detector"):
            raise DataError(
                f"model {name!r} is a {kind}; this panel shows autoencoders (and anomaly detectors). "
                "Pick one of type 'autoencoder' in the model list."
            )
        est = self.estimator(entry)
        return est.estimators_[0] if kind == "detector" else est

    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """One entry of GET /api/models."""
        kind = self.type_of(entry)
        return {"name": entry.name, "type": kind, **DESCRIBE[kind](self.estimator(entry))}

    # -- examples -------------------------------------------------------------------------------------------
    def examples(self, name: str) -> Examples:
        """The first N_EXAMPLES samples of the data that fit model ``name``, with its codes and outputs."""
        entry = self.entry(name)
        ae = self.autoencoder(name)
        return self._cached(self._examples, entry, lambda: self._compute_examples(name, ae))

    def _compute_examples(self, name: str, ae) -> Examples:
        _, x, y = self.split()
        spec = ae.spec_
        if tuple(x.shape[1:]) != tuple(spec.sample_shape):
            raise DataError(
                f"model {name!r} takes samples of shape {tuple(spec.sample_shape)}, but the dashboard's data "
                f"{self.dataset().name!r} has samples of shape {tuple(x.shape[1:])}; restart it with "
                "--data set to data of that shape (the data the model was trained on)."
            )
        x = x[:N_EXAMPLES]
        y = None if y is None else np.asarray(y)[:N_EXAMPLES]
        recon = ae.reconstruct(x)
        return Examples(
            x=x,
            y=y,
            value_range=images.display_range(x),
            errors=mse_per_sample(spec, x, recon),
            codes=ae.transform(x),
            recon=recon,
        )

    def item(self, examples: Examples, index: Any) -> int:
        """A request's example index as an int in range; NotFound otherwise."""
        try:
            i = int(index)
        except (TypeError, ValueError):
            i = -1
        if isinstance(index, bool) or not 0 <= i < len(examples.x):
            raise NotFound(f"no example {index!r}: the examples are numbered 0 to {len(examples.x) - 1}.")
        return i


def mse_per_sample(spec, x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Per-sample MSE on the values the model sees (as 'aekit eval' measures), float64."""
    target = spec.to_model(x).reshape(len(x), -1).astype(np.float64)
    out = spec.to_model(recon).reshape(len(x), -1)
    return np.mean((target - out) ** 2, axis=1)


def _parameters(modules) -> int:
    return int(sum(p.numel() for m in modules for p in m.parameters()))


def _describe_autoencoder(est) -> dict[str, Any]:
    from aekit.models import family_of

    spec = est.spec_
    return {
        "kind": family_of(est.model_),
        "code_size": int(est.model_.config.code_size),
        "input_shape": list(spec.sample_shape),
        "is_image": spec.is_image,
        "is_vae": hasattr(est.model_, "posterior"),
        "params": _parameters([est.model_]),
    }


def _describe_detector(est) -> dict[str, Any]:
    info = _describe_autoencoder(est.estimators_[0])
    info["params"] = _parameters([m.model_ for m in est.estimators_])
    info["members"] = len(est.estimators_)
    return info


def _describe_restorer(est) -> dict[str, Any]:
    return {
        "kind": est.task,
        "code_size": None,
        "input_shape": None,  # any size
        "is_image": True,
        "is_vae": False,
        "params": _parameters([est.model_]),
        "channels": int(est.channels_),
    }


def _describe_codec(est) -> dict[str, Any]:
    return {
        "kind": "codec",
        "code_size": None,
        "input_shape": None,
        "is_image": True,
        "is_vae": False,
        "params": _parameters([est.net_]),
        "channels": int(est.channels_),
        "qualities": int(est.n_qualities),
    }


DESCRIBE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "autoencoder": _describe_autoencoder,
    "detector": _describe_detector,
    "restore": _describe_restorer,
    "codec": _describe_codec,
}


def listing(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """GET /api/models: every model that opens; files that do not are listed apart, with the reason."""
    models, skipped = [], []
    for entry in ws.entries().values():
        try:
            models.append(ws.describe(entry))
        except (AekitError, OSError) as exc:
            skipped.append({"name": entry.name, "error": str(exc)})
    return {"models": models, "skipped": skipped}
