"""Flax State Inspector: typed variable trees for Flax Linen and NNX models.

The core is pure: records, kinds, normalization, alignment, diff, filters. It never imports a
loader, reads a file or touches the UI. For notebooks, ``inspector.show``, ``diff``, ``filter``,
``split``, ``port`` and ``convert`` (``inspector.api``) take live objects or source specs; they are loaded on
first use, so ``import inspector`` stays light.
"""

from __future__ import annotations

from typing import Any

_API = ("show", "diff", "filter", "split", "port", "convert")
_RESULTS = ("ShowResult", "DiffResult", "FilterResult", "SplitResult", "PortResult", "ConvertResult")

# ``filter`` is left out so that ``from inspector import *`` never shadows the builtin.
__all__ = ["show", "diff", "split", "port", "convert", "InspectorError", *_RESULTS]


def __getattr__(name: str) -> Any:
    if name in _API:
        from inspector import api

        return getattr(api, name)
    if name in _RESULTS:
        from inspector import results

        return getattr(results, name)
    if name == "InspectorError":
        from inspector.errors import InspectorError

        return InspectorError
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, *_RESULTS, "InspectorError"})
