"""The light core: with every optional module blocked, the estimators and the core commands still work, and
each command that needs an extra says which in one line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_one_error

SRC = Path(__file__).resolve().parents[1] / "src"
# The modules of the extras: None in sys.modules makes "import fastapi" raise ModuleNotFoundError,
# as if the package were not installed.
OPTIONAL = ("fastapi", "uvicorn", "starlette", "python_multipart", "multipart", "pyarrow", "pandas")
OPTIONAL += ("matplotlib", "skimage")
BLOCK = f"import sys\nfor name in {OPTIONAL!r}:\n    sys.modules[name] = None\n"
TINY = ["--epochs", "1", "--hidden", "8", "--code-size", "2", "--batch-size", "16", "--quiet"]


def _blocked(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` with the optional modules blocked; ``args`` are its sys.argv[1:]."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_core_works_without_any_extra(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((64, 6)).astype(np.float32))
    code = """
import json
import numpy as np
import aekit
from aekit import AutoEncoder
from aekit.cli.main import main

x = np.load("x.npy")
ae = AutoEncoder(code_size=2, hidden=(4,), epochs=2, batch_size=16, random_state=0).fit(x)
ae.save("api.aek")
assert AutoEncoder.load("api.aek").transform(x).shape == (64, 2)
assert main(["train", "--data", "x.npy", "--out", "cli.aek", *json.loads(sys.argv[1])]) == 0
assert main(["embed", "cli.aek", "x.npy", "-o", "codes.npy"]) == 0
print("ok")
"""
    result = _blocked(code, tmp_path, json.dumps(TINY))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_commands_that_need_an_extra_name_it_in_one_line(tmp_path):
    from aekit import AutoEncoder

    x = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,4\n")
    model = AutoEncoder(code_size=2, hidden=(4,), epochs=1, batch_size=16, random_state=0).fit(x)
    model.save(tmp_path / "m.aek")
    cases = [
        ("dashboard", ["dashboard"]),
        ("plots", ["report", "m.aek", "--data", "x.npy", "-o", "r.html"]),
        ("plots", ["compare", "--data", "x.npy"]),
        ("plots", ["demo", "--quick"]),
        ("tables", ["train", "--data", "x.csv", "--out", "t.aek", *TINY]),
        ("tables", ["embed", "m.aek", "x.npy", "-o", "codes.parquet"]),
    ]
    code = """
import contextlib, io, json
from aekit.cli.main import main

results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        results.append((main(argv), err.getvalue()))
print(json.dumps(results))
"""
    result = _blocked(code, tmp_path, json.dumps([argv for _, argv in cases]))
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.splitlines()[-1])
    for (status, err), (extra, _) in zip(results, cases, strict=True):
        assert_one_error(status, err, f"'{extra}' extra", f"pip install 'aekit[{extra}]'")
    assert not any(tmp_path.glob("codes.parquet*")) and not (tmp_path / "aekit-demo").exists()


def test_the_error_says_what_needs_the_extra():
    from aekit.errors import ConfigError
    from aekit.extras import require

    assert require("json", "none", "anything") is json
    with pytest.raises(ConfigError) as caught:
        require("aekit_no_such_module.sub", "plots", "drawing figures")
    assert str(caught.value) == (
        "drawing figures needs the 'plots' extra (aekit_no_such_module is not installed): "
        "pip install 'aekit[plots]'"
    )
