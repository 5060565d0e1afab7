"""Simulated CPU devices (``--devices N``), so anyone can see a sharded layout on a laptop.

XLA reads ``--xla_force_host_platform_device_count`` once, when jax starts its CPU backend, so the
flag must be in ``XLA_FLAGS`` before that: the CLI and the app call ``simulate_devices`` before they
import anything that imports jax. This module imports no jax itself.

>>> with_device_count("--xla_cpu_use_thunk_runtime=false --xla_force_host_platform_device_count=2", 8)
'--xla_cpu_use_thunk_runtime=false --xla_force_host_platform_device_count=8'
"""

from __future__ import annotations

import os
import sys

from inspector.errors import InspectorError

_FLAG = "--xla_force_host_platform_device_count"


def with_device_count(flags: str, n: int) -> str:
    """``XLA_FLAGS`` text with the device count set to ``n`` (other flags kept)."""
    kept = [f for f in flags.split() if not f.startswith(_FLAG + "=")]
    return " ".join(kept + [f"{_FLAG}={n}"])


def simulate_devices(n: int) -> None:
    """Make jax see ``n`` CPU devices; raise ``InspectorError`` if it is too late for that.

    Once jax has started its backend, the count is fixed: then only a count of at least ``n``
    is accepted.
    """
    if n < 1:
        raise InspectorError(f"--devices {n}: give a number of devices of at least 1")
    os.environ["XLA_FLAGS"] = with_device_count(os.environ.get("XLA_FLAGS", ""), n)
    if "jax" not in sys.modules:
        return
    import jax

    have = jax.device_count()  # starts the backend if needed, which then reads the flag
    if have < n:
        raise InspectorError(
            f"--devices {n}: jax already started with {have} device(s) in this process; set "
            f"XLA_FLAGS={_FLAG}={n} before starting Python, or pass --devices before anything imports jax")
