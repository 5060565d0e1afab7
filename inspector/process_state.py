"""Process-wide settings (warning filters, a logger's level, ``sys.unraisablehook``) changed for
the length of a call, safely from many threads at once.

``warnings.catch_warnings`` saves the whole filter list on entry and puts it back on exit; two app
sessions doing that in overlapping threads put back each other's lists, and a filter meant for one
call can stay for good. Here a change is installed by the first caller to need it and taken out by
the last one to leave, under a lock held only while counting.

>>> import warnings
>>> before = list(warnings.filters)
>>> with ignoring_warnings(UserWarning, module=r"orbax\\."):
...     warnings.filters[0][0]
'ignore'
>>> warnings.filters == before
True
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator

_LOCK = threading.Lock()
_USERS: dict[Hashable, int] = {}


@contextlib.contextmanager
def while_active(key: Hashable, install: Callable[[], None], uninstall: Callable[[], None]) -> Iterator[None]:
    """Run ``install`` when the first caller with ``key`` enters, ``uninstall`` when the last leaves."""
    with _LOCK:
        if not _USERS.get(key):
            install()
        _USERS[key] = _USERS.get(key, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS[key] -= 1
            if not _USERS[key]:
                del _USERS[key]
                uninstall()


def ignoring_warnings(category: type[Warning], module: str = "") -> contextlib.AbstractContextManager[None]:
    """Ignore ``category`` warnings raised from modules matching ``module`` while any caller is inside."""
    entry = ("ignore", None, category, re.compile(module) if module else None, 0)

    def install() -> None:
        warnings.filters.insert(0, entry)
        warnings._filters_mutated()  # type: ignore[attr-defined]  # what filterwarnings itself calls

    def uninstall() -> None:
        with contextlib.suppress(ValueError):
            warnings.filters.remove(entry)
        warnings._filters_mutated()  # type: ignore[attr-defined]

    return while_active(("warnings", category, module), install, uninstall)
