"""Models shipped inside the package, loaded by name: ``aekit compress photo``, ``aekit restore denoise``.

A built-in model is a name and a model file in a ``weights/`` folder of the application that uses it
(package data, so it ships in the wheel). Each application keeps one ``Builtins`` table; the CLI and the
estimators take such a name wherever they take a model path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aekit.errors import ModelFileError


@dataclass(frozen=True)
class Builtins:
    """The built-in models of one application: name -> (file under ``folder``, what it is for)."""

    folder: Path
    models: dict[str, tuple[str, str]]
    trained_by: str  # the script that makes the files, for the message when one is missing

    def names(self) -> list[str]:
        """The names of the built-in models, sorted."""
        return sorted(self.models)

    def __contains__(self, name: object) -> bool:
        """True when ``name`` is the name of a built-in model (a str, not a path to a model file)."""
        return isinstance(name, str) and name in self.models

    def path(self, name: str) -> Path:
        """The model file of built-in ``name``; ModelFileError for an unknown name or a missing file."""
        if name not in self:
            raise ModelFileError(
                f"{name!r} is not a built-in model; built-in models: {', '.join(self.names())}. "
                "To use a model file, give its path (a .aek file)."
            )
        path = self.folder / self.models[name][0]
        if not path.is_file():
            raise ModelFileError(
                f"the built-in model {name!r} has no weights file: {path} is missing. Reinstall aekit (the "
                f"file ships as package data), or train it with {self.trained_by} and pass the .aek path."
            )
        return path

    def summary(self, name: str) -> str:
        return self.models[name][1]
