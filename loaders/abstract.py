"""Abstract builds at linear cost: a scoped work-around for a quadratic error message in jax.

Under ``nnx.eval_shape`` every Variable flax creates asks its tracer for ``.sharding``
(``Variable.set_value``: ``getattr(value, 'sharding', None)``). The tracer answers with an
AttributeError whose message is built by ``DynamicJaxprTracer._origin_msg``, which walks the whole
trace so far (``find_progenitors``). ``getattr`` then throws the message away. One walk per
variable makes a model of N variables cost O(N²): 200 blocks of two Linear and a LayerNorm took
12 s, where Linen's ``jax.eval_shape(init)`` of the same structure is linear.

``abstract_build()`` replaces ``_origin_msg`` with one that returns ``""`` while an abstract build
runs, and restores it afterwards; what the user's code builds is unchanged. If jax renames or
drops the function, ``abstract_build`` raises at once (and a test says so), rather than silently
becoming slow again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from jax._src.interpreters import partial_eval as _pe

_TRACER = _pe.DynamicJaxprTracer
_PATCHED = "_origin_msg"
_lock = threading.Lock()
_depth = 0
_original = None


def _no_origin(self) -> str:
    return ""


def patch_target():
    """The function being replaced, as jax defines it (for the guard test)."""
    return _TRACER.__dict__.get(_PATCHED)


@contextlib.contextmanager
def abstract_build() -> Iterator[None]:
    """Scope in which tracer error messages skip the trace walk (re-entrant, thread-safe)."""
    global _depth, _original
    with _lock:
        if _depth == 0:
            current = _TRACER.__dict__.get(_PATCHED)
            if current is None:
                raise RuntimeError(
                    "jax no longer defines DynamicJaxprTracer._origin_msg: the abstract-build "
                    "work-around in loaders/abstract.py must be revisited")
            _original = current
            setattr(_TRACER, _PATCHED, _no_origin)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                setattr(_TRACER, _PATCHED, _original)
