"""How much memory this process can still take, so that loading refuses what does not fit in one line
instead of ending in the allocator's traceback or being killed by the kernel."""

from __future__ import annotations

import contextlib
from pathlib import Path


def size_text(n: int) -> str:
    """Bytes as people read them: 1.5 GB, 34.2 MB, 0.6 KB."""
    for unit, size in (("GB", 2**30), ("MB", 2**20)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1024:,.1f} KB"


def memory_left() -> int | None:
    """Bytes this process can still allocate: the least of the RAM available, what its container's limit
    (cgroup v2) and its own limits (setrlimit) leave; None where nothing is known (not Linux).

    Refusing here beats the alternatives: the allocator's traceback, or the kernel killing the process.
    """
    left = []
    meminfo, status = _kib_fields("/proc/meminfo"), _kib_fields("/proc/self/status")
    if "MemAvailable" in meminfo:
        left.append(meminfo["MemAvailable"])
    try:
        import resource

        for limit, used in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
            soft = resource.getrlimit(limit)[0]
            if soft != resource.RLIM_INFINITY and used in status:
                left.append(soft - status[used])
    except ImportError:  # pragma: no cover - not POSIX
        pass
    with contextlib.suppress(OSError, ValueError):
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            left.append(int(limit) - int((cgroup / "memory.current").read_text()))
    return max(0, min(left)) if left else None


def _kib_fields(path: str) -> dict[str, int]:
    """The "Name:  1234 kB" lines of a /proc file, in bytes."""
    fields = {}
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                fields[name] = int(parts[0]) * 1024
    return fields
