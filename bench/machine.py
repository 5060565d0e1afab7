"""Facts about the machine and checkout a run happened on, read without running any tool.

The commit is read from ``.git`` directly (HEAD, then the branch's ref or ``packed-refs``) so the
benchmark never runs git in a checkout other people are working in.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "flax", "orbax-checkpoint", "streamlit", "treescope", "plotly", "numpy")


def commit(root: Path) -> str:
    """``main@0123456789ab``, or ``unknown`` when there is no readable ``.git``."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return "unknown"
    if not head.startswith("ref: "):
        return head[:12]
    ref = head[5:]
    branch = ref.rsplit("/", 1)[-1]
    try:
        return f"{branch}@{(git / ref).read_text().strip()[:12]}"
    except OSError:
        pass
    try:
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return f"{branch}@{line.split()[0][:12]}"
    except OSError:
        pass
    return f"{branch}@(no commit yet)"


def _proc_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def memory_available_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo``: what a full restore may use without swapping."""
    value = _proc_value("/proc/meminfo", "MemAvailable")
    return int(value.split()[0]) * 1024 if value else None


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def facts(scratch: Path) -> dict[str, str]:
    """CPU, cores, memory, OS, Python, the stack's versions, free disk, load at the start."""
    total = _proc_value("/proc/meminfo", "MemTotal")
    out = {
        "CPU": _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores (usable / logical)": f"{len(os.sched_getaffinity(0))} / {os.cpu_count()}",
        "memory": f"{int(total.split()[0]) / 1024 ** 2:.1f} GiB" if total else "unknown",
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
    }
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["free disk (scratch)"] = f"{shutil.disk_usage(scratch).free / 1024 ** 3:.0f} GiB at {scratch}"
    out["load average 1/5/15 min at start"] = load_average()
    return out
