"""``aekit <verb> ...``: the parser, built from the verb modules, and the one place errors become exit codes.

Exit status: 0 success, 2 an expected error (one line on stderr, no traceback) or a usage error,
130 interrupted. Any other exception reaching the user is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from types import ModuleType

from aekit import threads
from aekit._version import __version__
from aekit.cli import (
    apply,
    compress,
    dashboard,
    demo,
    detect,
    embed,
    generate,
    inspect,
    probe,
    report,
    restore,
    train,
)
from aekit.errors import AekitError, DataRangeWarning

# Each module lists its verbs in VERBS, adds them in add_parser(subparsers) and runs them in run(args).
# The order here is the order of 'aekit --help'.
VERB_MODULES: tuple[ModuleType, ...] = (
    train,
    inspect,
    apply,
    generate,
    embed,
    probe,
    restore,
    compress,
    detect,
    report,
    dashboard,
    demo,
)


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line, like every other aekit error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="aekit",
        description="Autoencoders made practical: train, evaluate and apply every classic family.",
        epilog="Run 'aekit <command> --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module in VERB_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``aekit`` command; returns the exit status (the console script passes it to sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 0
    module = next(m for m in VERB_MODULES if args.command in m.VERBS)
    try:
        with warnings.catch_warnings(), threads.requested(getattr(args, "threads", None)):
            warnings.showwarning = _show_warning
            # data read in chunks warns once per chunk: the user needs to hear it once per command
            warnings.simplefilter("always", DataRangeWarning)
            _ONCE_SHOWN.clear()
            return module.run(args)
    except AekitError as exc:
        _say("error", str(exc))
    except OSError as exc:  # the file system's refusals (permissions, a full disk) are the user's to fix
        where = f": {exc.filename}" if exc.filename else ""
        _say("error", f"{exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        _say("interrupted", getattr(args, "on_interrupt", "stopped before finishing"))
        return 130
    return 2


def _say(label: str, message: str) -> None:
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"aekit: {label}: {text}", file=sys.stderr)


_ONCE_PER_COMMAND = (DataRangeWarning,)
_ONCE_SHOWN: set[type] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, _ONCE_PER_COMMAND):
        if category in _ONCE_SHOWN:
            return
        _ONCE_SHOWN.add(category)
    _say("warning", str(message))
