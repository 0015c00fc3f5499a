"""Layers only point down: no module of aekit imports one of a higher layer (docs: STYLE.md, "Layout").

Every ``import aekit...`` / ``from aekit... import ...`` counts, those inside functions too (a lazy import
is still a dependency). Within a layer modules import each other freely.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. An entry names a module or a package (and everything in it); the longest matching entry
# wins, so a package can sit low while its estimator sits higher. A package's own __init__ is
# "<package>.__init__".
LAYERS: list[tuple[str, ...]] = [
    # 0 helpers that know nothing of autoencoders
    (
        "aekit._version",
        "aekit.errors",
        "aekit.extras",
        "aekit.atomic",
        "aekit.memory",
        "aekit.threads",
        "aekit.validation",
        "aekit.noise",
        "aekit.device",
        "aekit.tensorfile",
        "aekit.runfolder",
        "aekit.builtins",
        "aekit.typicality",
    ),
    # 1 loaders, sources, writers, scaling
    ("aekit.data",),
    # 2 nn.Modules and their registry
    ("aekit.models",),
    # 3 what a model's outputs are scored with, and what groups its codes (k-means on any array)
    ("aekit.losses", "aekit.generate", "aekit.clusters"),
    # 4 the one Trainer
    ("aekit.training",),
    # 5 the applications' networks, formats and helpers (the codec's coding and archives, restore's tasks)
    ("aekit.codec", "aekit.restore"),
    # 6 model files; imports the applications' networks so that every kind of file can be recognised
    ("aekit.io",),
    # 7 the estimators: the public API
    (
        "aekit.__init__",
        "aekit.estimators",
        "aekit.codec.__init__",
        "aekit.codec.codec",
        "aekit.restore.__init__",
        "aekit.restore.restorer",
    ),
    # 8 what is built on the estimators: reports, comparisons, the demo, streaming inference; and the old
    # names aekit.report and aekit.compare, kept for compatibility (they re-export aekit.reports)
    ("aekit.reports", "aekit.report", "aekit.compare", "aekit.streaming"),
    # 9 the front ends
    ("aekit.cli", "aekit.dashboard", "aekit.__main__"),
]

# (importer, imported): upward imports still allowed, each with the reason. Keep this short.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "aekit").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module an import of ``name`` runs: a package means its __init__."""
    return f"{name}.__init__" if f"{name}.__init__" in MODULES else name


def layer_of(module: str) -> int:
    best, layer = "", -1
    for i, entries in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > len(best):
                best, layer = entry, i
    if layer < 0:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS in {Path(__file__).name}")
    return layer


def imports_of(module: str) -> set[str]:
    """Every aekit module that ``module`` imports, anywhere in its body."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module.rpartition(".")[0].split(".")  # a.b.c and a.b.__init__ are both in package a.b
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "aekit"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "aekit":
                continue
            for alias in node.names:  # from aekit.codec import builtin: the submodule, if it is one
                sub = f"{base}.{alias.name}"
                found.add(_resolve(sub) if sub in MODULES or f"{sub}.__init__" in MODULES else _resolve(base))
    found.discard(module)
    return found


def upward_imports() -> list[str]:
    bad = []
    for module in MODULES:
        mine = layer_of(module)
        for target in sorted(imports_of(module)):
            if target not in MODULES:
                bad.append(f"{module} imports {target}, which does not exist")
            elif layer_of(target) > mine and (module, target) not in EXCEPTIONS:
                bad.append(f"{module} (layer {mine}) imports {target} (layer {layer_of(target)})")
    return bad


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    bad = upward_imports()
    assert not bad, "upward imports (a lower layer must not import a higher one):\n" + "\n".join(bad)


def test_exceptions_are_still_needed():
    for importer, imported in EXCEPTIONS:
        assert imported in imports_of(importer), (
            f"{importer} no longer imports {imported}; drop the exception"
        )


def test_an_upward_import_is_caught(monkeypatch, tmp_path):
    """The walker sees imports inside functions: models/ importing restore/ (as it once did) fails."""
    fake = tmp_path / "registry.py"
    fake.write_text("def f():\n    from aekit.restore.network import RestorationUNet\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "aekit.models.registry", fake)
    assert "aekit.models.registry (layer 2) imports aekit.restore.network (layer 5)" in upward_imports()


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("aekit.codec.network", 5),
        ("aekit.codec.codec", 7),
        ("aekit.codec.__init__", 7),
        ("aekit.cli.main", 9),
    ],
)
def test_longest_entry_wins(module, layer):
    assert layer_of(module) == layer
