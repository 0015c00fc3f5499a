"""Running the ``aekit`` command in-process, and the check every bad-input test makes: one line, exit 2."""

from __future__ import annotations

from aekit.cli.main import main


def run(capsys, *argv) -> tuple[int, str, str]:
    """``aekit ARGV`` through its entry function: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, *words: str) -> str:
    """Exit status 2 and one 'aekit: ...' line on stderr, no traceback, holding every word; returns it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("aekit"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def one_line_error(capsys, argv, *words: str) -> str:
    """Run ``argv`` and assert it fails with one line naming every word."""
    code, _, err = run(capsys, *argv)
    return assert_one_error(code, err, *words)
