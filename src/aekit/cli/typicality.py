"""``--strict`` and the typicality line of the verbs that apply an autoencoder to a file (reconstruct,
encode, embed): how many inputs are less typical than 99.9% of the model's training data.

``Watch`` takes each result chunk's typicality out of it before it is written (``aekit.streaming``) and
keeps only the atypical rows, so memory stays bounded. With ``--strict`` an atypical input stops the verb
after the last chunk, inside the writer, so the output is never created: one line, exit status 2.
``aekit restore`` and ``aekit compress`` use the same ``Watch`` one image at a time (``add`` with the
file names, then ``refuse`` before anything is written).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from aekit.errors import AtypicalInputError, TypicalityWarning
from aekit.streaming import TYPICALITY

# aekit.typicality.LIMIT, spelled out: that module imports numpy, which 'aekit --help' must not
STRICT_HELP = (
    "refuse inputs less typical than 99.9%% of the model's training data (by reconstruction error or code "
    "distance): exit status 2 and nothing written, instead of a warning"
)


def add_strict_option(parser: argparse.ArgumentParser, help: str = STRICT_HELP) -> None:
    parser.add_argument("--strict", action="store_true", help=help)


class Watch:
    """Reads the typicality out of result chunks; says, or with ``strict`` refuses, what was atypical."""

    def __init__(self, est: Any, model: str, strict: bool, what: str = "inputs") -> None:
        from aekit.typicality import NOT_STORED

        self.stored = getattr(est, "typicality_", None) is not None
        self.strict, self.model = strict, model
        if strict and not self.stored:  # before any work: nothing can be checked
            raise AtypicalInputError(
                f"--strict checks each input's typicality, but {model} has {NOT_STORED}."
            )
        self.n, self.rows, self.by, self.top = 0, [], {}, 0.0
        self.what = what
        self.labels: list[str] | None = None  # the atypical inputs' names, when add is given them

    def results(self, results: Iterable[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
        """``results`` without their typicality field, which is tallied; with ``strict``, raises after the
        last chunk when some input was atypical (the caller's writer then leaves no output)."""
        for consumed, fields in results:
            typical = fields.pop(TYPICALITY, None)
            if typical is not None:
                self.add(typical)
            yield consumed, fields
        self.refuse()

    def refuse(self) -> None:
        """With ``strict``, raise AtypicalInputError when some input was atypical (before writing)."""
        if self.strict and self.rows:
            raise AtypicalInputError(f"{self.line()}; --strict refuses them, so nothing was written.")

    def add(self, typical: Any, labels: list[str] | None = None) -> None:
        """Tally one chunk's typicality (aekit.typicality.Typicality), rows numbered across chunks;
        ``labels``: the chunk's inputs' names (file names), to name the atypical ones by."""
        if labels is not None:
            self.labels = (self.labels or []) + [labels[i] for i in typical.rows]
        self.rows.extend((self.n + typical.rows).tolist())
        for name, p in typical.percentiles.items():
            self.by[name] = self.by.get(name, 0) + int((p > typical.limit).sum())
        if len(typical):
            self.top = max(self.top, float(typical.percentile.max()))
        self.n += len(typical)

    def line(self) -> str:
        from aekit.typicality import describe

        return describe(self.n, self.rows, self.by, self.top, self.what, labels=self.labels)

    def report(self) -> None:
        """After the output is written: the typicality line (a warning when some inputs were atypical)."""
        from aekit.typicality import NOT_STORED

        if not self.stored:
            print(f"aekit: note: typicality unknown: {self.model} has {NOT_STORED}", file=sys.stderr)
        elif self.rows:
            warnings.warn(f"{self.line()}; --strict refuses them", TypicalityWarning, stacklevel=2)
        else:
            print(self.line())
