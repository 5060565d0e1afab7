"""Shared fixtures: model files written the way a user would write them."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest


@pytest.fixture
def write_model(tmp_path: Path):
    """Write ``source`` to ``tmp_path/name`` and return the path as a string."""
    def write(source: str, name: str = "model.py") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return str(path)

    return write


@pytest.fixture(autouse=True)
def _no_deprecations():
    """Project code must not trigger flax or jax deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        yield


@pytest.fixture
def cli(capsys):
    """Run ``python -m inspector`` in this process: ``cli(*argv) -> (exit code, stdout, stderr)``."""
    from inspector.__main__ import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
