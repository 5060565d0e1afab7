"""Sharding on a real mesh: ``sharding_device_checks.py`` run on 8 simulated CPU devices.

XLA fixes the device count when jax starts, and this process keeps one device for the rest of the
suite, so the checks run in a child process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from inspector.devices import with_device_count

ROOT = Path(__file__).resolve().parent.parent
CHECKS = "tests/sharding_device_checks.py"


def test_checks_on_eight_devices():
    env = {**os.environ, "XLA_FLAGS": with_device_count(os.environ.get("XLA_FLAGS", ""), 8)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-header", "-rfEs", CHECKS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", summary) and int(summary.split()[0]) >= 11, report
