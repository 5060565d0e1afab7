"""Layout transforms: how a left (Linen) array becomes the right (NNX) one, numpy semantics.

A port may keep every weight but store it differently: attention heads flattened
(``(D, H, hd)`` → ``(D, H*hd)``), PyTorch-style ``(out, in)`` kernels, q/k/v fused into one
array, a gated MLP's gate and up projections stacked on a new axis. Each is one of five ops:

- ``{"op": "reshape", "shape": [...]}``: merge or split adjacent axes, element order kept;
- ``{"op": "transpose", "axes": [...]}``: ``np.transpose``;
- ``{"op": "concat", "axis": k}``: several left arrays joined into one (the entry's
  ``left_parts`` lists them in order);
- ``{"op": "split", "axis": k, "index": i, "sections": n}``: piece ``i`` of ``n`` equal pieces
  (a stacked axis of length ``n`` split this way keeps a length-1 axis: chain a reshape);
- ``{"op": "chain", "steps": [...]}``: the steps applied in order.

Transforms are frozen, comparable and JSON round-trippable; ``apply`` works on numpy arrays and
jax arrays alike, and ``output_shape`` computes the result's shape without any array.

>>> t = Transform.chain(Transform.split(0, 0, 2), Transform.reshape((4, 3)))
>>> t.text
'split axis 0 into 2, piece 0 → reshape (4, 3)'
>>> t.output_shape([(2, 4, 3)])
(4, 3)
>>> Transform.from_json(t.to_json()) == t
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from inspector.errors import InspectorError

OPS = ("reshape", "transpose", "concat", "split", "chain")


class TransformError(InspectorError):
    """A transform that is malformed or does not fit the arrays it is applied to."""


@dataclasses.dataclass(frozen=True)
class Transform:
    op: str
    shape: tuple[int, ...] | None = None  # reshape
    axes: tuple[int, ...] | None = None  # transpose
    axis: int | None = None  # concat, split
    index: int | None = None  # split
    sections: int | None = None  # split
    steps: tuple[Transform, ...] = ()  # chain

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def reshape(cls, shape: Sequence[int]) -> Transform:
        return cls("reshape", shape=tuple(int(n) for n in shape))

    @classmethod
    def transpose(cls, axes: Sequence[int]) -> Transform:
        return cls("transpose", axes=tuple(int(a) for a in axes))

    @classmethod
    def concat(cls, axis: int) -> Transform:
        return cls("concat", axis=int(axis))

    @classmethod
    def split(cls, axis: int, index: int, sections: int) -> Transform:
        return cls("split", axis=int(axis), index=int(index), sections=int(sections))

    @classmethod
    def chain(cls, *steps: Transform) -> Transform:
        """Steps flattened; a chain of one step is that step."""
        flat: list[Transform] = []
        for step in steps:
            flat.extend(step.steps if step.op == "chain" else (step,))
        return flat[0] if len(flat) == 1 else cls("chain", steps=tuple(flat))

    @classmethod
    def from_json(cls, data: Any, where: str = "transform") -> Transform:
        """Parse and check one JSON transform; errors name ``where`` and the bad parameter."""
        if not isinstance(data, Mapping):
            raise TransformError(f"{where}: a transform is an object like {{\"op\": \"transpose\", "
                                 f"\"axes\": [1, 0]}}, got {data!r}")
        op = data.get("op")
        allowed = {"reshape": {"shape"}, "transpose": {"axes"}, "concat": {"axis"},
                   "split": {"axis", "index", "sections"}, "chain": {"steps"}}
        if op not in allowed:
            raise TransformError(f"{where}: unknown op {op!r}; use one of {', '.join(OPS)}")
        extra = set(data) - allowed[op] - {"op", "text"}
        missing = allowed[op] - set(data)
        if extra or missing:
            what = "; ".join(filter(None, (missing and f"missing {', '.join(sorted(missing))}",
                                           extra and f"unknown {', '.join(sorted(extra))}")))
            raise TransformError(f"{where}: {op} takes {', '.join(sorted(allowed[op]))} ({what})")
        try:
            if op == "chain":
                steps = data["steps"]
                if not isinstance(steps, list) or not steps:
                    raise TransformError(f"{where}: chain needs a non-empty list of steps")
                return cls.chain(*(cls.from_json(s, f"{where}, step {i + 1}") for i, s in enumerate(steps)))
            if op == "reshape":
                t = cls.reshape(_ints(data["shape"]))
                if any(n < 0 for n in t.shape):
                    raise ValueError
            elif op == "transpose":
                t = cls.transpose(_ints(data["axes"]))
                if sorted(t.axes) != list(range(len(t.axes))):
                    raise TransformError(f"{where}: transpose axes {list(t.axes)} are not a "
                                         f"permutation of 0..{len(t.axes) - 1}")
            elif op == "concat":
                t = cls.concat(_int(data["axis"]))
            else:
                t = cls.split(_int(data["axis"]), _int(data["index"]), _int(data["sections"]))
                if t.sections < 1 or not 0 <= t.index < t.sections:
                    raise TransformError(f"{where}: split index {t.index} is not in 0..{t.sections - 1}")
        except TransformError:
            raise
        except (TypeError, ValueError):
            raise TransformError(f"{where}: bad parameters for {op}: {dict(data)!r}") from None
        return t

    # -- description ----------------------------------------------------------------------------
    @property
    def text(self) -> str:
        if self.op == "reshape":
            return f"reshape {self.shape}"
        if self.op == "transpose":
            return "transpose" if self.axes == (1, 0) else f"transpose {self.axes}"
        if self.op == "concat":
            return f"concat on axis {self.axis}"
        if self.op == "split":
            return f"split axis {self.axis} into {self.sections}, piece {self.index}"
        return " → ".join(step.text for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.op == "chain":
            out["steps"] = [step.to_json() for step in self.steps]
        else:
            for name in ("shape", "axes", "axis", "index", "sections"):
                value = getattr(self, name)
                if value is not None:
                    out[name] = list(value) if isinstance(value, tuple) else value
        out["text"] = self.text
        return out

    @property
    def parts(self) -> int | None:
        """How many left arrays this takes: None (any number ≥ 2) for a concat, else 1."""
        first = self.steps[0] if self.op == "chain" else self
        return None if first.op == "concat" else 1

    # -- application ----------------------------------------------------------------------------
    def output_shape(self, shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
        """The result's shape for input ``shapes``; TransformError when the transform does not fit."""
        shapes = [tuple(s) for s in shapes]
        if self.op == "chain":
            for i, step in enumerate(self.steps):
                shapes = [step.output_shape(shapes if i == 0 else shapes[:1])]
            return shapes[0]
        if self.op == "concat":
            axis = self._axis(len(shapes[0]))
            rest = {s[:axis] + s[axis + 1:] for s in shapes}
            if len(rest) != 1 or len({len(s) for s in shapes}) != 1:
                raise TransformError(f"cannot concat shapes {shapes} on axis {self.axis}")
            return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]
        if len(shapes) != 1:
            raise TransformError(f"{self.text} takes one array, got {len(shapes)}")
        shape = shapes[0]
        if self.op == "reshape":
            if math.prod(self.shape) != math.prod(shape):
                raise TransformError(f"cannot reshape {shape} into {self.shape}")
            return self.shape
        if self.op == "transpose":
            if len(self.axes) != len(shape):
                raise TransformError(f"transpose {self.axes} does not fit rank-{len(shape)} {shape}")
            return tuple(shape[a] for a in self.axes)
        axis = self._axis(len(shape))
        if shape[axis] % self.sections:
            raise TransformError(f"axis {self.axis} of {shape} does not split into {self.sections}")
        return shape[:axis] + (shape[axis] // self.sections,) + shape[axis + 1:]

    def apply(self, *arrays: Any) -> Any:
        """The right-side array from the left one(s); numpy or jax arrays (jax stays jax)."""
        xp = _array_module(arrays[0])
        self.output_shape([a.shape for a in arrays])  # clear error before any work
        if self.op == "chain":
            out = self.steps[0].apply(*arrays)
            for step in self.steps[1:]:
                out = step.apply(out)
            return out
        if self.op == "concat":
            return xp.concatenate(arrays, axis=self.axis)
        (x,) = arrays
        if self.op == "reshape":
            return xp.reshape(x, self.shape)
        if self.op == "transpose":
            return xp.transpose(x, self.axes)
        size = x.shape[self._axis(x.ndim)] // self.sections
        index = [slice(None)] * x.ndim
        index[self._axis(x.ndim)] = slice(self.index * size, (self.index + 1) * size)
        return x[tuple(index)]

    def _axis(self, rank: int) -> int:
        if not -rank <= self.axis < rank:
            raise TransformError(f"axis {self.axis} is out of range for rank {rank}")
        return self.axis % rank


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError
    return value


def _ints(values: Any) -> list[int]:
    if not isinstance(values, list):
        raise TypeError
    return [_int(v) for v in values]


def _array_module(x: Any):
    import numpy as np

    if type(x).__module__.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return jnp
    return np


__all__ = ["OPS", "Transform", "TransformError"]
