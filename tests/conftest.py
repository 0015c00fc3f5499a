"""Test-wide settings: data from ../shared/datasets, caches in a temporary folder, never the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests: CI runs a fixed, derandomized set of examples, so a landing never passes or fails by the
# luck of the draw; a local run explores fresh random examples each time (and a failure it finds prints
# the seed to reproduce it with --hypothesis-seed). AEKIT_HYPOTHESIS=ci|dev picks one explicitly.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("AEKIT_HYPOTHESIS") or ("ci" if os.environ.get("CI") else "dev"))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests' models are tiny and only pay for torch's thread pool: one thread is several times faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _aekit_env(tmp_path_factory, monkeypatch):
    # Respect an explicit AEKIT_DATA_DIR (CI may point elsewhere); default to the shared folder.
    monkeypatch.setenv("AEKIT_DATA_DIR", os.environ.get("AEKIT_DATA_DIR", str(SHARED_DATA)))
    # A per-session cache keeps tests from reading or filling the user's ~/.cache/aekit.
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "aekit-cache"))
    # Any download attempt in a test goes to a closed local port unless the test sets its own mirror.
    monkeypatch.setenv("AEKIT_DATA_MIRROR", os.environ.get("AEKIT_TEST_MIRROR", "http://127.0.0.1:9/"))


def shared_data_or_skip() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA
