"""The abstract-build work-around: scoped, still needed, and still pointing at the right function.

If jax renames or rewrites ``DynamicJaxprTracer._origin_msg`` these tests fail loudly, so that the
work-around in loaders/abstract.py is revisited instead of silently doing nothing.
"""

from __future__ import annotations

import inspect
import threading

from flax import nnx
from jax._src.interpreters import partial_eval as pe

from loaders import load_source
from loaders.abstract import abstract_build, patch_target


def test_the_patched_function_still_exists_and_still_walks_the_trace():
    original = patch_target()
    assert original is not None, "jax no longer defines DynamicJaxprTracer._origin_msg"
    assert "find_progenitors" in inspect.getsource(original), \
        "_origin_msg no longer walks the trace: re-measure nnx.eval_shape and drop the work-around if linear"


def test_the_tracer_sharding_message_still_uses_it():
    from jax._src import core

    assert "_origin_msg" in inspect.getsource(core.Tracer.sharding.fget)


def test_patch_is_scoped_and_reentrant():
    original = pe.DynamicJaxprTracer.__dict__["_origin_msg"]
    with abstract_build():
        assert pe.DynamicJaxprTracer.__dict__["_origin_msg"] is not original
        with abstract_build():
            pass
        assert pe.DynamicJaxprTracer.__dict__["_origin_msg"] is not original
    assert pe.DynamicJaxprTracer.__dict__["_origin_msg"] is original


def test_patch_is_restored_after_an_error():
    original = pe.DynamicJaxprTracer.__dict__["_origin_msg"]
    try:
        with abstract_build():
            raise RuntimeError("user code failed")
    except RuntimeError:
        pass
    assert pe.DynamicJaxprTracer.__dict__["_origin_msg"] is original


def test_concurrent_builds_restore_the_original():
    original = pe.DynamicJaxprTracer.__dict__["_origin_msg"]
    barrier = threading.Barrier(4)

    def build():
        barrier.wait()
        with abstract_build():
            nnx.eval_shape(lambda: nnx.Linear(2, 2, rngs=nnx.Rngs(0)))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pe.DynamicJaxprTracer.__dict__["_origin_msg"] is original


def test_no_trace_walk_during_an_abstract_build(monkeypatch, write_model):
    """The quadratic part (one find_progenitors walk per variable) does not run at all."""
    calls = []
    real = pe.JaxprStackFrame.find_progenitors
    monkeypatch.setattr(pe.JaxprStackFrame, "find_progenitors",
                        lambda self, tracer: calls.append(1) or real(self, tracer))
    path = write_model("""
        from flax import nnx
        class Block(nnx.Module):
            def __init__(self, rngs):
                self.a = nnx.Linear(16, 16, rngs=rngs)
                self.b = nnx.Linear(16, 16, rngs=rngs)
                self.norm = nnx.LayerNorm(16, rngs=rngs)
        class Stack(nnx.Module):
            def __init__(self, n, rngs):
                self.blocks = nnx.List([Block(rngs) for _ in range(n)])
        def make():
            return Stack(20, nnx.Rngs(0))
    """)
    abstract = load_source(f"{path}:make", abstract=True)
    assert calls == []
    concrete = load_source(f"{path}:make")
    view = lambda src: [(r.path, r.type, r.shape, r.dtype) for r in src.records]  # noqa: E731
    assert view(abstract) == view(concrete) and len(abstract.records) == 120
