"""Hostile files: anyone can write a header and recompute its checksum, so every loader must refuse a file
whose header cannot be used with one ModelFileError, before building (or allocating) anything from it.

Each kind of file (model, detector, codec, training checkpoint) gets the same defects: settings that ask
for a network of gigabytes, a header nested 200,000 levels deep, unknown registry names, a weight of the
wrong shape. ``aekit info`` on each says so in one line with exit status 2. Memory: a model larger than
the memory left is refused in one line, checked in a subprocess under a real memory limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aekit import AnomalyDetector, AutoEncoder, memory, tensorfile
from aekit.codec import ImageCodec
from aekit.errors import ModelFileError
from aekit.training import CHECKPOINT
from cli_helpers import assert_one_error, run

RNG = np.random.default_rng(0)
TABLE = RNG.normal(5.0, 2.0, (40, 6))
IMAGES = RNG.integers(0, 256, (8, 16, 16), dtype=np.uint8)
SMALL = {"code_size": 2, "hidden": (4,), "epochs": 1, "batch_size": 16, "random_state": 0}
NESTED = "[" * 200_000 + "]" * 200_000
LINUX = sys.platform.startswith("linux")


# -- the files, and how to forge them ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One good file of each kind (and the run folder of the checkpoint)."""
    root = tmp_path_factory.mktemp("good")
    AutoEncoder(**SMALL).fit(TABLE).save(root / "model.aek")
    detector = AnomalyDetector(n_estimators=1, refits=0, epochs=1, code_size=2, hidden=(4,), random_state=0)
    detector.fit(TABLE).save(root / "detector.aek")
    codec = ImageCodec(hidden=8, latent=4, pixel_width=8, pixel_layers=2, pixel_mixtures=2, lambdas=(0.05,))
    codec.set_params(steps=2, batch_size=4, random_state=0).fit(IMAGES).save(root / "codec.aek")
    AutoEncoder(**SMALL, run_dir=root / "run").fit(TABLE)
    return {
        "model": root / "model.aek",
        "detector": root / "detector.aek",
        "codec": root / "codec.aek",
        "checkpoint": root / "run" / CHECKPOINT,
    }


def forge(src: Path, dst: Path, edit: Callable[[dict], None] | None = None, header: str | None = None,
          tensors: dict[str, torch.Tensor] | None = None) -> Path:  # fmt: skip
    """A copy of ``src`` with its header edited (or replaced by ``header``) or some tensors replaced, and
    a checksum that matches: a file anyone can write."""
    old, doc = tensorfile.load(src)
    if edit is not None:
        edit(doc)
    text = header if header is not None else json.dumps(doc)
    both = {**old, **(tensors or {})}
    save_file(both, str(dst), metadata={"aekit": text, "sha256": tensorfile._digest(both, text)})
    return dst


def opener(kind: str, path: Path) -> Callable[[], object]:
    """What loads a file of ``kind``: a checkpoint is read when a run resumes from its folder."""
    loaders = {
        "model": lambda: AutoEncoder.load(path),
        "detector": lambda: AnomalyDetector.load(path),
        "codec": lambda: ImageCodec.load(path),
        "checkpoint": lambda: AutoEncoder(**SMALL, run_dir=path.parent, resume=True).fit(TABLE),
    }
    return loaders[kind]


def refused(kind: str, path: Path, *words: str) -> str:
    """Loading ``path`` raises exactly a one-line ModelFileError naming the file and every word."""
    with pytest.raises(Exception) as err:  # noqa: B017 - the point is to see which type comes out
        opener(kind, path)()
    assert type(err.value) is ModelFileError, f"{type(err.value).__name__}: {err.value}"
    message = str(err.value)
    assert "\n" not in message and str(path.parent) in message
    for word in words:
        assert word in message, message
    return message


def info_refuses(capsys, path: Path, *words: str) -> str:
    code, out, err = run(capsys, "info", path)
    assert out == ""
    return assert_one_error(code, err, *words)


def in_run_folder(tmp_path: Path) -> Path:
    """Where a forged checkpoint goes: a run folder of its own, so that resuming reads it."""
    (tmp_path / "run").mkdir()
    return tmp_path / "run" / CHECKPOINT


def member(doc: dict) -> dict:
    """The part of a header that describes an autoencoder: the header itself, or a detector's member."""
    return doc["members"][0] if "members" in doc else doc


# -- the same defects in every kind of file ----------------------------------------------------------------
HUGE = {  # settings that ask for gigabytes of weights, in a file of kilobytes
    "model": (
        lambda d: member(d)["model_config"].update(hidden=[24576, 24576]),
        "(24576, 6) by the settings",
    ),
    "detector": (
        lambda d: member(d)["model_config"].update(hidden=[24576, 24576]),
        "member0.encoder.net.1.weight is (24576, 6) by the settings, (4, 6) in the file",
    ),
    "codec": (lambda d: d["model_config"].update(hidden=24576), "by the settings"),
}


@pytest.mark.parametrize("kind", HUGE)
def test_settings_asking_for_gigabytes_are_refused_before_building(files, tmp_path, capsys, kind):
    edit, words = HUGE[kind]
    path = forge(files[kind], tmp_path / "huge.aek", edit)
    refused(kind, path, "damaged or mismatched", words)
    info_refuses(capsys, path, "huge.aek", words)


@pytest.mark.parametrize("kind", ["model", "detector", "codec", "checkpoint"])
def test_a_header_nested_200000_levels_deep(files, tmp_path, capsys, kind):
    path = forge(files[kind], in_run_folder(tmp_path), header=NESTED)
    refused(kind, path, "deeper than 64 levels")
    info_refuses(capsys, path, "deeper than 64 levels")


def test_deep_but_balanced_json_within_the_size_limit_is_refused_too(files, tmp_path):
    path = forge(files["model"], tmp_path / "deep.aek", header='{"a": ' + "[" * 100 + "]" * 100 + "}")
    refused("model", path, "deeper than 64 levels")


NAMES = {  # (edit, the words of the refusal): each name checked against its registry, the choices listed
    "scaling": (
        lambda d: member(d)["data"].update(scaling="evil"),
        "scaling='evil' is not one of 'standard'",
    ),
    "family": (
        lambda d: member(d).update(family="gan"),
        "unknown model kind 'gan'; choose one of dense, conv",
    ),
    "activation": (
        lambda d: member(d)["model_config"].update(activation="evil"),
        "activation='evil' is not one of 'relu'",
    ),
    "noise": (
        lambda d: member(d)["params"].update(noise="evil"),
        "noise='evil' is not one of None, 'gaussian'",
    ),
    "data dtype": (lambda d: member(d)["data"].update(dtype="int8"), "dtype='int8' is not one of 'uint8'"),
    "offsets": (lambda d: member(d)["data"].update(offset=[0.0]), "needs one offset per feature (6)"),
}


@pytest.mark.parametrize("kind", ["model", "detector"])
@pytest.mark.parametrize("name", NAMES)
def test_unknown_names_are_refused_when_the_header_is_read(files, tmp_path, capsys, kind, name):
    edit, words = NAMES[name]
    path = forge(files[kind], tmp_path / "named.aek", edit)
    refused(kind, path, words)
    info_refuses(capsys, path, words)


def test_scaling_evil_is_refused_at_load_not_at_encode(files, tmp_path):
    path = forge(files["model"], tmp_path / "evil.aek", NAMES["scaling"][0])
    with pytest.raises(ModelFileError, match="scaling='evil'"):
        AutoEncoder.load(path).transform(TABLE)


def test_codec_settings_and_detector_scoring_are_checked(files, tmp_path, capsys):
    codec = forge(files["codec"], tmp_path / "c.aek", lambda d: d["model_config"].update(channels=2))
    refused("codec", codec, "channels must be 1 (grayscale) or 3 (RGB); got 2")
    info_refuses(capsys, codec, "channels must be 1")
    detector = forge(files["detector"], tmp_path / "d.aek", lambda d: d.update(scoring="evil"))
    refused("detector", detector, "scoring='evil' is not one of 'reconstruction', 'elbo'")
    info_refuses(capsys, detector, "scoring='evil'")


def test_a_detectors_baseline_and_known_anomalies_must_fit_its_header(files, tmp_path):
    baseline = forge(files["detector"], tmp_path / "b.aek", tensors={"element_baseline": torch.zeros(5)})
    refused("detector", baseline, "per-element baseline does not have the shape of its samples")
    # known anomalies' codes without the statistics that score them (or of the wrong width)
    lonely = forge(files["detector"], tmp_path / "a.aek", tensors={"anomalies0": torch.zeros(3, 2)})
    refused("detector", lonely, "known anomalies and their statistics do not come together")

    def with_stats(doc):
        doc["members"][0]["stats"]["anomalies"] = {"median": 0.0, "spread": 1.0, "log": True}

    wide = forge(files["detector"], tmp_path / "w.aek", with_stats, tensors={"anomalies0": torch.zeros(3, 5)})
    refused("detector", wide, "anomalies0 is not a list of codes of size 2")


SHAPES = {  # one weight replaced by one of another shape: the file declares it, the settings disagree
    "model": ("encoder.net.1.weight", "encoder.net.1.weight is (4, 6) by the settings, (5, 6) in the file"),
    "detector": ("member0.encoder.net.1.weight", "member0.encoder.net.1.weight is (4, 6) by the settings"),
    "codec": ("analysis_net.0.weight", "analysis_net.0.weight is (8, 1, 5, 5) by the settings, (5, 6)"),
    "checkpoint": ("s.model.encoder.net.1.weight", "different model or settings"),
}


@pytest.mark.parametrize("kind", SHAPES)
def test_a_weight_of_the_wrong_declared_shape_is_named(files, tmp_path, capsys, kind):
    name, words = SHAPES[kind]
    path = forge(files[kind], in_run_folder(tmp_path), tensors={name: torch.zeros(5, 6)})
    refused(kind, path, words, "(5, 6) in the file")
    info_refuses(capsys, path)


def test_a_checkpoint_whose_optimizer_state_does_not_fit_the_weights(files, tmp_path):
    path = in_run_folder(tmp_path)
    forge(files["checkpoint"], path, tensors={"s.optimizer.state.0.exp_avg": torch.zeros(3)})
    refused("checkpoint", path, "different model or settings", "exp_avg of weight 0 has shape (3,)")


def test_a_tensor_the_settings_have_no_place_for(files, tmp_path):
    path = forge(files["model"], tmp_path / "extra.aek", tensors={"extra.weight": torch.zeros(2)})
    refused("model", path, "the file holds extra.weight, which the settings have no place for")


def test_a_million_layers_stop_the_build_early(files, tmp_path):
    # On the meta device too, a million layers would take a minute and gigabytes of Python objects.
    path = forge(
        files["model"], tmp_path / "deep.aek", lambda d: d["model_config"].update(hidden=[4] * 10**6)
    )
    refused("model", path, "far larger than the 8 tensors the file holds")


# -- the safetensors header itself -------------------------------------------------------------------------
def test_a_header_over_the_size_limit_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "big-header.aek"
    n = tensorfile.MAX_HEADER_BYTES + 1
    path.write_bytes(n.to_bytes(8, "little") + b" " * n)
    refused("model", path, f"a header may have at most {tensorfile.MAX_HEADER_BYTES:,}")
    info_refuses(capsys, path, "at most")


def test_declared_shapes_must_account_for_the_bytes_in_the_file(files, tmp_path):
    # The header says a tensor holds more than the file does: refused before any tensor is read.
    data = files["model"].read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**6, 10**6]
    text = json.dumps(header).encode()
    path = tmp_path / "shape.aek"
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n :])
    refused("model", path, "needs 4,000,000,000,000 bytes")


def test_saving_a_header_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorfile, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(ModelFileError, match="header would take"):
        tensorfile.save(tmp_path / "x.aek", {"w": torch.zeros(2)}, {"notes": "x" * 2000})
    assert not (tmp_path / "x.aek").exists()


# -- memory ------------------------------------------------------------------------------------------------
def test_a_model_larger_than_the_memory_left_is_one_line(files, monkeypatch, capsys):
    monkeypatch.setattr(memory, "memory_left", lambda: 100)  # bytes: less than the tiny model takes
    refused(
        "model", files["model"], "holds 80 weights; loading it takes about 0.6 KB", "0.1 KB of memory left"
    )
    info_refuses(capsys, files["model"], "of memory left")
    refused("codec", files["codec"], "of memory left")


CAPPED = textwrap.dedent(
    """
    import resource, sys
    import torch
    torch.set_num_threads(1)
    from aekit import AutoEncoder
    from aekit.cli import inspect, main
    from aekit.io import load_model  # everything a load imports, imported before the cap

    def address_space():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

    cap = address_space() + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    sys.exit(main.main(sys.argv[3:] + [sys.argv[1]]))
    """
)


def capped(path: Path, headroom: int, *argv: str) -> subprocess.CompletedProcess:
    """Run ``aekit ARGV path`` in a fresh Python allowed ``headroom`` bytes more than it has at the start."""
    env = {"OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-c", CAPPED, str(path), str(headroom), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**env, **_pythonpath()})


def _pythonpath() -> dict[str, str]:
    import aekit

    return {"PYTHONPATH": str(Path(aekit.__file__).parents[1])}


@pytest.mark.skipif(not LINUX, reason="needs setrlimit and /proc")
def test_settings_asking_for_gigabytes_never_allocate_them(files, tmp_path):
    # 1.5 GB above what the process holds: building the 2 x 2.4 GB layers would fail inside torch.
    path = forge(files["model"], tmp_path / "huge.aek", HUGE["model"][0])
    done = capped(path, 3 << 29, "info")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "(24576, 6) by the settings, (4, 6) in the file" in done.stderr


@pytest.mark.skipif(not LINUX, reason="needs setrlimit and /proc")
def test_a_real_model_too_large_for_the_memory_left_is_one_line(tmp_path):
    # A genuine 34 MB model, in a process allowed 48 MB more: reading and building it needs ~68 MB.
    est = AutoEncoder(**{**SMALL, "hidden": (2048, 2048), "epochs": 1}).fit(TABLE[:16])
    est.save(tmp_path / "big.aek")
    done = capped(tmp_path / "big.aek", 48 << 20, "info")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "weights; loading it takes about" in done.stderr and "of memory left" in done.stderr
    assert capped(tmp_path / "big.aek", 1 << 30, "info", "--json").returncode == 0  # with room, it loads


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_a_device_is_refused_without_reading_it():
    with pytest.raises(ModelFileError, match="not a regular file"):
        tensorfile.read_header("/dev/null")
