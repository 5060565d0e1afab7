"""Emit a converter a team can keep: a standalone Python module, one readable line per variable.

The module imports numpy, jax, flax and orbax only. ``convert(linen_tree)`` takes the Linen tree as
Orbax or flax msgpack restore it (nested dicts; lists are fine) and returns the NNX state as a
nested dict of arrays (``nnx.to_pure_dict`` layout); ``main()`` reads an Orbax folder or a msgpack
file and writes an Orbax folder that ``StandardCheckpointer().restore(DIR, abstract_state)`` loads.
RNG state is written as literals (the target's own, as ``convert`` writes it); a variable allowed
to keep its initial value gets a literal when small, else zeros, flagged in a comment.

>>> from inspector.records import VariableRecord as V
>>> from inspector.convert_plan import Move, ConvertPlan
>>> from inspector.align.transforms import Transform
>>> a = V(("Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")
>>> b = V(("layers", 0, "kernel"), "Param", (2, 4), "float32", 8, 32)
>>> line = variable_line(Move((a,), b, Transform.transpose((1, 0)), "float32"), ("params", "Dense_0", "kernel"))
>>> line
'out["layers"][0]["kernel"] = t["params"]["Dense_0"]["kernel"].transpose((1, 0))'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from inspector.convert_plan import ConvertPlan, Move
from inspector.records import Path, VariableRecord

_LITERAL_LIMIT = 4096  # elements: a larger allowed-missing variable is written as zeros


def index(root: str, path: Sequence[Any]) -> str:
    """``t["params"]["layers"][0]``: string keys quoted, int keys as ints."""
    return root + "".join(f"[{k}]" if isinstance(k, int) else f"[{str(k)!r}]".replace("'", '"') for k in path)


def transform_expr(transform: Any, args: Sequence[str]) -> str:
    """A numpy expression applying ``transform`` to the array expressions ``args``."""
    if transform is None:
        return args[0]
    if transform.op == "chain":
        expr = transform_expr(transform.steps[0], args)
        for step in transform.steps[1:]:
            expr = transform_expr(step, [expr])
        return expr
    if transform.op == "concat":
        return f"np.concatenate([{', '.join(args)}], axis={transform.axis})"
    (x,) = args
    if transform.op == "reshape":
        return f"{x}.reshape({tuple(transform.shape)})"
    if transform.op == "transpose":
        return f"{x}.transpose({tuple(transform.axes)})"
    return f"np.split({x}, {transform.sections}, axis={transform.axis})[{transform.index}]"


def variable_line(move: Move, *disk_paths: Sequence[Any]) -> str:
    """One assignment: the target variable from its source array(s), transformed and cast."""
    args = [index("t", [str(k) for k in p]) for p in disk_paths]
    expr = transform_expr(move.transform, args)
    if move.cast:
        expr = f"{expr}.astype(jnp.dtype({move.dtype!r}))"
    return f"{index('out', move.right.path)} = {expr}"


def literal(value: Any) -> str:
    """A Python expression rebuilding a small array (typed PRNG keys through their key data)."""
    import jax

    if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(value))
        return (f"jax.random.wrap_key_data(np.array({data.tolist()!r}, dtype=np.{data.dtype.name}), "
                f"impl={str(jax.random.key_impl(value))!r})")
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":
        return f"np.array({array.astype(np.float32).tolist()!r}, dtype=np.float32).astype(jnp.bfloat16)"
    return f"np.array({array.tolist()!r}, dtype=np.{array.dtype.name})"


def emit_module(plan: ConvertPlan, disk_path: Callable[[VariableRecord], Sequence[Any]],
                initial: Mapping[Path, Any], *, source: str, target: str) -> str:
    """The converter module's text (see the module docstring)."""
    lines = [f"    # {len(plan.moves)} mapped variable(s)"]
    for move in plan.moves:
        lines.append("    " + variable_line(move, *(disk_path(p) for p in move.parts)))
    if plan.rng:
        lines.append("    # RNG state: the target model's own (Linen keeps none)")
    for record in plan.rng:
        lines.append(f"    {index('out', record.path)} = {literal(initial[record.path])}")
    for allowed in (a for a in plan.allowed if a.side == "missing"):
        record = allowed.record
        value = initial.get(record.path)
        if value is not None and np.size(value) <= _LITERAL_LIMIT:
            lines.append(f"    {index('out', record.path)} = {literal(value)}  # allowed missing: its initial value")
        else:
            lines.append(f"    {index('out', record.path)} = np.zeros({tuple(record.shape)!r}, "
                         f"dtype=jnp.dtype({record.dtype!r}))  # allowed missing: ZEROS, not the model's init")
    for allowed in (a for a in plan.allowed if a.side == "unused"):
        lines.append(f"    # dropped (allowed unused): {allowed.record.full_name}")
    for record in plan.not_converted:
        lines.append(f"    # not converted: {record.full_name} ({record.type})")
    body = "\n".join(lines)
    return _TEMPLATE.format(source=source, target=target, body=body)


_TEMPLATE = '''"""Convert Linen weights into the NNX state layout of {target}.

Generated by Flax State Inspector from {source}; review it, commit it, run it anywhere:
it imports numpy, jax, flax and orbax only.

    python this_file.py SOURCE OUT_DIR

SOURCE is an Orbax checkpoint folder (Linen variables or a TrainState) or a flax msgpack file;
OUT_DIR is written as an Orbax checkpoint that restores into the NNX model:

    graphdef, abstract = nnx.split(nnx.eval_shape(make_model))
    model = nnx.merge(graphdef, ocp.StandardCheckpointer().restore(OUT_DIR, abstract))
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np


def convert(linen_tree: dict) -> dict:
    """The NNX state (a nested dict of arrays, as ``nnx.to_pure_dict`` gives it) from the Linen tree.

    ``linen_tree`` is the tree as saved: ``{{"params": {{...}}, "batch_stats": {{...}}}}``, or a
    TrainState's ``{{"params": {{"params": ...}}, "opt_state": ..., "step": ...}}``.
    """
    t = _plain(linen_tree)
    out = _tree()
{body}
    return _dicts(out)


def _plain(tree):
    """Nested dicts with string keys (lists and tuples become {{"0": ...}}), numpy leaves."""
    if isinstance(tree, dict):
        return {{str(k): _plain(v) for k, v in tree.items()}}
    if isinstance(tree, (list, tuple)):
        return {{str(i): _plain(v) for i, v in enumerate(tree)}}
    return np.asarray(tree)


def _tree():
    from collections import defaultdict

    return defaultdict(_tree)


def _dicts(tree):
    return {{k: _dicts(v) for k, v in tree.items()}} if isinstance(tree, dict) else tree


def _with_values(tree):
    """How StandardCheckpointer stores an nnx.State: a ``value`` level under each variable."""
    if isinstance(tree, dict):
        return {{k: _with_values(v) for k, v in tree.items()}}
    return {{"value": tree}}


def read(source: str) -> dict:
    """An Orbax checkpoint folder or a flax msgpack file, as nested dicts."""
    if os.path.isdir(source):
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:
            return checkpointer.restore(os.path.abspath(source))
    from flax import serialization

    with open(source, "rb") as f:
        return serialization.msgpack_restore(f.read())


def write(out_dir: str, state: dict) -> None:
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.abspath(out_dir), _with_values(state))
        checkpointer.wait_until_finished()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python " + os.path.basename(__file__) + " SOURCE OUT_DIR", file=sys.stderr)
        return 2
    write(argv[1], convert(read(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

__all__ = ["emit_module", "index", "literal", "transform_expr", "variable_line"]
