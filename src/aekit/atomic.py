"""Write files so that a crash or a full disk never leaves a half-written file where a good one was."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# mkstemp makes 0600 files; a finished file should get the usual mode (0666 less the umask) or keep the
# mode of the file it replaces. os.umask can only be read by setting it, so read it once, here.
_UMASK = os.umask(0)
os.umask(_UMASK)


def _prefix(target: Path, pid: int) -> str:
    # The writer's process id is in the name, so a later write can tell a temporary file whose writer was
    # killed (kill -9 leaves no chance to clean up) from one that a live process is still writing.
    return f".{target.name}.aekit-{pid}-"


def remove_stale(target: Path) -> None:
    """Remove the temporary files of earlier writes to ``target`` whose writing process no longer runs."""
    start = f".{target.name}.aekit-"
    try:
        names = [e.name for e in os.scandir(target.parent) if e.name.startswith(start)]
    except OSError:
        return
    for name in names:
        pid = name[len(start) :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            stale = target.parent / name
            with contextlib.suppress(OSError):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()


def _running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":
        # this process: another writer here may still be busy with it. On Windows os.kill(pid, 0) would
        # end the process rather than ask about it, so nothing is taken for stale there.
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    The temporary file lives in the same folder so ``os.replace`` is a rename, never a copy.
    On any error the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target, os.getpid()), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_UMASK
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success its files move into ``path`` (made if missing).

    A new folder appears in one rename. Into an existing folder the files move one rename each, after all
    of them were written: an error on the way leaves ``path`` as it was, never with half the files.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target, os.getpid()), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if not target.exists():
            os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders
            os.replace(tmp, target)
            return
        for entry in sorted(tmp.iterdir()):
            os.replace(entry, target / entry.name)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
