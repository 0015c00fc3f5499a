"""Fetch a file over HTTP(S), check its checksum, and only then move it into place.

The file streams into a temporary file beside its destination, so a dropped connection, a damaged
download or a full disk never leaves a file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from aekit.atomic import atomic_path
from aekit.errors import DataError

MIRROR_ENV = "AEKIT_DATA_MIRROR"
TIMEOUT_S = 30.0  # per socket operation, not for the whole file
_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")  # file:// lets a mirror be a local or network folder


def source_url(base_url: str, filename: str) -> str:
    """Where ``filename`` is fetched from: ``base_url``, or the mirror in ``AEKIT_DATA_MIRROR`` if set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror and urllib.parse.urlsplit(mirror).scheme not in _SCHEMES:
        raise DataError(
            f"{MIRROR_ENV}={mirror!r} is not an http://, https:// or file:// address; "
            "set it to the folder URL that holds the data files, or unset it"
        )
    return f"{(mirror or base_url).rstrip('/')}/{filename}"


def file_digest(path: Path, algorithm: str) -> str:
    # usedforsecurity=False: md5 here guards against damaged files, and FIPS builds refuse it otherwise
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, algorithm: str, checksum: str) -> Path:
    """Download ``url`` to ``dest`` if its ``algorithm`` digest equals ``checksum``; else raise DataError."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    try:
        with atomic_path(dest) as tmp:
            with _open(url, dest.name) as response, tmp.open("wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with _progress(dest.name, total) as advance:
                    while chunk := _read(response, url, dest.name):
                        out.write(chunk)
                        digest.update(chunk)
                        advance(len(chunk))
            if digest.hexdigest() != checksum.lower():
                raise DataError(
                    f"checksum mismatch for {url}: expected {algorithm} {checksum}, "
                    f"got {digest.hexdigest()}; "
                    f"the download was deleted. Try again, or if {MIRROR_ENV} is set check that the mirror "
                    "serves the original file"
                )
    except OSError as e:  # network errors became DataError already, so this is the local disk
        raise DataError(
            f"could not write {dest} ({e}); free some disk space "
            "or point AEKIT_CACHE_DIR at a writable folder"
        ) from e
    return dest


@contextlib.contextmanager
def _open(url: str, filename: str) -> Iterator[http.client.HTTPResponse]:
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # scheme checked in source_url
    except urllib.error.HTTPError as e:
        raise _network_error(url, filename, f"HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise _network_error(url, filename, getattr(e, "reason", None) or e) from e
    with response:
        yield response


def _read(response: http.client.HTTPResponse, url: str, filename: str) -> bytes:
    try:
        return response.read(_CHUNK)
    except (http.client.HTTPException, OSError) as e:
        raise _network_error(url, filename, f"connection lost: {e}") from e


def _network_error(url: str, filename: str, reason: object) -> DataError:
    return DataError(
        f"could not download {filename} from {url} ({reason}); check the connection, set {MIRROR_ENV} to a "
        f"mirror, or download {filename} yourself and place it in the folder named by AEKIT_DATA_DIR"
    )


@contextlib.contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield a function that advances a progress bar; the bar is drawn only for a person at a terminal."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n: bar.advance(task, n)
