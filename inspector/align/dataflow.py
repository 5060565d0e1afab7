"""Dataflow evidence: where the forward pass first consumes each parameter, and how.

Names and creation order can mislead: an NNX port may declare ``head``, ``hidden``, ``encoder``
and apply them in the other order. The forward pass cannot lie. Given the jaxpr of one inference
call whose first inputs are the model's variables (``loaders.trace`` makes it), this module
records for every variable:

- ``index``: its place in first-use order (0 for the first variable the computation consumes);
- how a kernel is contracted: each of its axes gets a role — ``c<k>`` contracted with the input's
  k-th contracted axis, ``b<k>`` a batch axis, ``f<k>`` a free (output) axis, for ``conv`` ``o``
  (output features) and ``s<k>`` (spatial) — following ``transpose``/``reshape``/dtype casts on
  the way, so ``x @ W.T`` is seen as contracting ``W``'s axis 1.

Sub-jaxprs are followed: ``jit`` (jnp functions), ``remat``/``checkpoint``, ``custom_jvp``/
``custom_vjp`` calls, ``cond`` branches, ``while`` and ``scan`` bodies (a scanned stack's slice
keeps its axes, shifted by the stacked one). Anything else that receives a variable counts as
consuming it, with no contraction: never a guess.

``with_dataflow`` reorders a ``Structure`` by first use (variables the pass never reads keep their
place right after their creation predecessor); names that agree still pair first in the passes.

>>> import jax, jax.numpy as jnp
>>> w1, w2, x = jnp.ones((3, 3)), jnp.ones((3, 3)), jnp.ones((2, 3))
>>> jaxpr = jax.make_jaxpr(lambda a, b, x: (x @ b.T) @ a)(w1, w2, x)
>>> flow = analyze_jaxpr(jaxpr, [("", ("a",)), ("", ("b",))])
>>> [(flow.uses[k].index, flow.uses[k].contraction) for k in [("", ("a",)), ("", ("b",))]]
[(1, (0,)), (0, (1,))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from inspector.align.naming import AUTO_NAME, norm, role
from inspector.align.structure import Structure
from inspector.records import Path, VariableRecord

Key = tuple[str, Path]
# A derived value's axes, each mapped back to an axis of the variable (None: merged or split).
AxisMap = tuple[int | None, ...]

_VIEWS = frozenset({"convert_element_type", "copy", "copy_p", "reduce_precision", "squeeze",
                    "reshape", "transpose", "broadcast_in_dim", "expand_dims", "sharding_constraint",
                    "optimization_barrier"})


@dataclasses.dataclass(frozen=True)
class Use:
    """How the forward pass first consumes one variable."""

    index: int  # place in first-use order among all consumed variables
    step: int  # equation counter at the first use (comparable within one trace only)
    roles: tuple[str, ...] | None = None  # per variable axis, at its first contraction
    contraction: tuple[int, ...] | None = None  # variable axes contracted with the input, in order


@dataclasses.dataclass(frozen=True)
class Dataflow:
    """First uses of one model's variables, by record key."""

    uses: Mapping[Key, Use] = dataclasses.field(default_factory=dict)

    def use(self, record: VariableRecord | None) -> Use | None:
        return None if record is None else self.uses.get(record.key)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Why two variables were paired: ``names`` agree|disagree|none, dataflow index, contraction.

    ``dataflow`` is the first-use index on the right side (on the left when only it was traced);
    ``contraction`` is ``[left axes, right axes]`` when either side was seen contracted.
    """

    names: str
    dataflow: int | None = None
    contraction: tuple[tuple[int, ...] | None, tuple[int, ...] | None] | None = None
    dataflow_left: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names, "dataflow": self.dataflow,
                "contraction": None if self.contraction is None
                else [list(c) if c is not None else None for c in self.contraction]}

    @property
    def strength(self) -> int:
        """Higher is stronger: names that agree count most, then a forward-pass position on both sides."""
        score = {"agree": 3, "none": 1, "disagree": 0}[self.names]
        if self.dataflow is not None and self.dataflow_left is not None:
            score += 2
        if self.contraction is not None and None not in self.contraction:
            score += 1
        return score


def analyze_jaxpr(closed: Any, keys: Sequence[Key | None]) -> Dataflow:
    """First uses of the variables passed as the jaxpr's first ``len(keys)`` inputs (None: skip)."""
    jaxpr = getattr(closed, "jaxpr", closed)
    walker = _Walker()
    env = {var: (key, tuple(range(len(var.aval.shape))))
           for var, key in zip(jaxpr.invars, keys) if key is not None}
    walker.ranks = {key: len(axes) for key, axes in env.values()}
    walker.walk(jaxpr, env)
    ordered = sorted(walker.first.items(), key=lambda item: item[1])
    uses = {key: Use(i, step, *walker.roles.get(key, (None, None))) for i, (key, step) in enumerate(ordered)}
    return Dataflow(uses)


class _Walker:
    def __init__(self) -> None:
        self.step = 0
        self.first: dict[Key, int] = {}
        self.roles: dict[Key, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self.ranks: dict[Key, int] = {}

    def walk(self, jaxpr: Any, env: dict[Any, tuple[Key, AxisMap]]) -> None:
        for eqn in jaxpr.eqns:
            found = [(i, env[v]) for i, v in enumerate(eqn.invars) if _is_var(v) and v in env]
            if not found:
                self.step += 1
                continue
            name = eqn.primitive.name
            if name in _VIEWS and len(found) == 1 and found[0][0] == 0:
                key, axes = found[0][1]
                mapped = _view(eqn, axes)
                if mapped is not None:
                    env[eqn.outvars[0]] = (key, mapped)
                    continue
            if self._call(eqn, env, found):
                continue
            self.step += 1
            for position, (key, axes) in found:
                self.first.setdefault(key, self.step)
                if key not in self.roles:
                    roles = _roles(eqn, position, axes, self.ranks.get(key, 0))
                    if roles is not None:
                        self.roles[key] = roles

    def _call(self, eqn: Any, env: dict, found: list) -> bool:
        """Follow a sub-jaxpr; False when its inputs cannot be mapped (then the eqn consumes)."""
        params = eqn.params
        name = eqn.primitive.name
        if name == "cond":  # alternatives: every branch starts at the same position
            start, end = self.step, self.step
            for branch in params["branches"]:
                self.step = start
                self._enter(_jaxpr(branch), eqn.invars[1:], env)
                end = max(end, self.step)
            self.step = end
            return True
        if name == "while":
            nc, nb = params["cond_nconsts"], params["body_nconsts"]
            carry = eqn.invars[nc + nb:]
            self._enter(_jaxpr(params["cond_jaxpr"]), list(eqn.invars[:nc]) + list(carry), env)
            self._enter(_jaxpr(params["body_jaxpr"]), eqn.invars[nc:], env)
            return True
        if name == "scan":
            body = _jaxpr(params["jaxpr"])
            start = params["num_consts"] + params["num_carry"]
            shift = {i for i in range(start, len(eqn.invars))}
            self._enter(body, eqn.invars, env, sliced=shift)
            return True
        for value in params.values():
            sub = _jaxpr(value)
            if sub is not None and len(sub.invars) == len(eqn.invars):
                sub_env = self._enter(sub, eqn.invars, env)
                for outer, inner in zip(eqn.outvars, sub.outvars):
                    if _is_var(inner) and inner in sub_env and _is_var(outer):
                        env[outer] = sub_env[inner]
                return True
        return False

    def _enter(self, sub: Any, outer_vars: Sequence[Any], env: dict, sliced: set[int] = frozenset()) -> dict:
        sub_env = {}
        for i, (outer, inner) in enumerate(zip(outer_vars, sub.invars)):
            if _is_var(outer) and outer in env:
                key, axes = env[outer]
                sub_env[inner] = (key, axes[1:] if i in sliced else axes)
        if sub_env:
            self.walk(sub, sub_env)
        else:
            self.step += 1
        return sub_env


def _is_var(v: Any) -> bool:
    return not hasattr(v, "val")  # a Literal holds .val


def _jaxpr(value: Any) -> Any:
    if hasattr(value, "eqns") and hasattr(value, "invars"):
        return value
    inner = getattr(value, "jaxpr", None)
    if inner is not None and hasattr(inner, "eqns"):
        return inner
    return None


def _view(eqn: Any, axes: AxisMap) -> AxisMap | None:
    """The axis map after a layout-only equation, or None when it is not one."""
    name = eqn.primitive.name
    params = eqn.params
    out_shape = tuple(eqn.outvars[0].aval.shape)
    in_shape = tuple(eqn.invars[0].aval.shape)
    if name == "transpose":
        return tuple(axes[p] for p in params["permutation"])
    if name in ("reshape", "squeeze", "expand_dims"):
        return _reshape_axes(in_shape, out_shape, axes)
    if name == "broadcast_in_dim":
        out: list[int | None] = [None] * len(out_shape)
        for i, d in enumerate(params["broadcast_dimensions"]):
            if in_shape[i] == out_shape[d]:
                out[d] = axes[i]
        return tuple(out)
    if in_shape == out_shape:
        return axes
    return None


def _reshape_axes(old: tuple[int, ...], new: tuple[int, ...], axes: AxisMap) -> AxisMap:
    """Axes kept one-to-one by a reshape (equal size, same place in the element order)."""
    out: list[int | None] = [None] * len(new)
    i = j = 0
    while i < len(old) or j < len(new):
        if i < len(old) and old[i] == 1 and (j >= len(new) or new[j] != 1):
            i += 1
            continue
        if j < len(new) and new[j] == 1 and (i >= len(old) or old[i] != 1):
            j += 1
            continue
        if i >= len(old) or j >= len(new):
            break
        if old[i] == new[j]:
            out[j] = axes[i]
            i, j = i + 1, j + 1
            continue
        # a group of axes merged or split: advance both until the products meet
        pi, pj, i, j = old[i], new[j], i + 1, j + 1
        while pi != pj and (i < len(old) or j < len(new)):
            if pi < pj and i < len(old):
                pi, i = pi * old[i], i + 1
            elif j < len(new):
                pj, j = pj * new[j], j + 1
            else:
                break
    return tuple(out)


def _roles(eqn: Any, position: int, axes: AxisMap, rank: int) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Roles of the variable's axes in a contraction, and the contracted axes, or None."""
    name = eqn.primitive.name
    roles = ["n"] * rank  # n: not part of this contraction (a scanned stack's layer axis)
    if name == "dot_general" and position in (0, 1):
        (contract, batch) = eqn.params["dimension_numbers"]
        mine_c, mine_b = contract[position], batch[position]
        for k, d in enumerate(mine_c):
            _set(roles, axes[d], f"c{k}")
        for k, d in enumerate(mine_b):
            _set(roles, axes[d], f"b{k}")
        free = [d for d in range(len(axes)) if d not in mine_c and d not in mine_b]
        for k, d in enumerate(free):
            _set(roles, axes[d], f"f{k}")
        contracted = tuple(axes[d] for d in mine_c)
    elif name == "conv_general_dilated" and position == 1:
        spec = eqn.params["dimension_numbers"].rhs_spec
        _set(roles, axes[spec[0]], "o")
        _set(roles, axes[spec[1]], "c0")
        for k, d in enumerate(spec[2:]):
            _set(roles, axes[d], f"s{k}")
        contracted = (axes[spec[1]], *(axes[d] for d in spec[2:]))
    else:
        return None
    if None in contracted:
        return None
    return tuple(roles), tuple(contracted)  # type: ignore[arg-type]


def _set(roles: list[str], axis: int | None, role: str) -> None:
    if axis is not None and axis < len(roles):
        roles[axis] = role


def with_dataflow(structure: Structure, flow: Dataflow | None) -> Structure:
    """``structure`` with variables ranked by first use; unused ones stay after their predecessor."""
    if flow is None or not flow.uses:
        return structure
    keys = sorted(structure.order, key=structure.order.get)
    seen = [k for k in keys if k in flow.uses]
    if not seen:
        return dataclasses.replace(structure, flow=flow)
    ranked, last = [], -1
    for rank, key in enumerate(keys):
        use = flow.uses.get(key)
        if use is not None:
            last = use.index
        ranked.append(((last, use is None, rank), key))
    ranked.sort()
    return dataclasses.replace(structure, order={key: i for i, (_, key) in enumerate(ranked)}, flow=flow,
                               order_kind="use")


def transpose_between(left: Use | None, right: Use | None) -> tuple[int, ...] | None:
    """The permutation (``np.transpose`` axes) the forward pass proves between two kernels, if any.

    Both must have been contracted with the same roles on every axis; identity gives None.
    """
    if left is None or right is None or left.roles is None or right.roles is None:
        return None
    if sorted(left.roles) != sorted(right.roles) or len(set(left.roles)) != len(left.roles):
        return None
    perm = tuple(left.roles.index(role) for role in right.roles)
    return None if perm == tuple(range(len(perm))) else perm


def evidence_of(a: VariableRecord, b: VariableRecord, left: Dataflow | None,
                right: Dataflow | None) -> Evidence:
    """The evidence behind one pair, from names and the two forward passes."""
    lu = left.use(a) if left is not None else None
    ru = right.use(b) if right is not None else None
    contraction = None
    if (lu is not None and lu.contraction is not None) or (ru is not None and ru.contraction is not None):
        contraction = (lu.contraction if lu else None, ru.contraction if ru else None)
    dataflow = ru.index if ru is not None else (lu.index if lu is not None else None)
    return Evidence(_names(a.path, b.path), dataflow, contraction,
                    lu.index if lu is not None and ru is not None else None)


def _names(a: Path, b: Path) -> str:
    """Do the module names say these are one thing? Auto-names (``Dense_0``) and indices say nothing."""
    ma, mb = a[:-1], b[:-1]
    if not ma or not mb:
        return "agree" if norm(a[-1]) == norm(b[-1]) and not ma and not mb else "none"
    la, lb = ma[-1], mb[-1]
    if norm(la) == norm(lb) or (role(la) is not None and role(la) == role(lb)):
        return "agree"
    if isinstance(la, int) or isinstance(lb, int) or AUTO_NAME.match(str(la)) or AUTO_NAME.match(str(lb)):
        return "none"
    return "disagree"


def with_evidence(entry: Any, left: Dataflow | None, right: Dataflow | None) -> Any:
    """A paired ``DiffEntry`` with its evidence; a transpose the forward pass proves becomes one.

    A square kernel applied as ``x @ W`` on one side and ``x @ W.T`` on the other matches every
    structural check; the contraction axes tell them apart, so the entry is ``transformed`` with
    that transpose instead of passing as a match (or as an unexplained shape mismatch).
    """
    from inspector.align.transforms import Transform
    from inspector.diffing import Status

    a, b = entry.left, entry.right
    if a is None or b is None or a.is_rng or b.is_rng:
        return entry
    evidence = evidence_of(a, b, left, right)
    changes: dict[str, Any] = {"evidence": evidence}
    info = list(entry.info)
    perm = transpose_between(left.use(a) if left else None, right.use(b) if right else None)
    movable = entry.status in (Status.MATCH, Status.RENAMED) or (
        entry.status is Status.SHAPE and entry.differences == ("shape",))
    if perm is not None and movable and entry.transform is None and a.dtype == b.dtype \
            and len(a.shape) == len(b.shape) and tuple(a.shape[p] for p in perm) == tuple(b.shape):
        transform = Transform.transpose(perm)
        lc, rc = evidence.contraction or (None, None)
        changes.update(status=Status.TRANSFORMED, differences=(), notes=(), transform=transform)
        info.append(f"the forward pass contracts axes {list(lc or ())} on the left and {list(rc or ())} "
                    f"on the right: {transform.text}")
    if evidence.names == "disagree" and evidence.dataflow is not None:
        traced = [side for side, use in (("left", left.use(a) if left else None),
                                         ("right", right.use(b) if right else None)) if use is not None]
        if len(traced) == 2:
            info.append(f"names differ ({a.path[-2]} ≠ {b.path[-2]}): paired by the forward pass "
                        f"(first use #{evidence.dataflow})")
        else:
            other = "left" if traced == ["right"] else "right"
            info.append(f"names differ ({a.path[-2]} ≠ {b.path[-2]}); only the {traced[0]} side was traced "
                        f"(first use #{evidence.dataflow}), the {other} side has no forward pass")
    if info != list(entry.info):
        changes["info"] = tuple(info)
    return dataclasses.replace(entry, **changes)


__all__ = ["Dataflow", "Evidence", "Use", "analyze_jaxpr", "evidence_of", "transpose_between",
           "with_dataflow", "with_evidence"]
