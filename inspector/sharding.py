"""Sharding of one variable: its logical axis names, its PartitionSpec and its layout on a mesh.

When arrays are placed on a mesh, JAX's ``NamedSharding`` is the truth and ``sharding_of`` only
reads it. Where they are not (a laptop has one device), ``plan_sharding`` computes the same layout
from the logical names, the logical-axis rules and a planned mesh, so a user sees the layout a model
would have before owning the devices. Both give the same ``Sharding`` record; a planned one says so.

>>> plan = MeshPlan(axes=(("data", 2), ("model", 4)), rules=(("embed", "data"), ("mlp", "model")))
>>> s = plan_sharding(("embed", "mlp"), (64, 256), 4, plan)
>>> s.describe(), s.shard_shape, s.device_bytes, s.replicas
("('embed', 'mlp') P('data', 'model') on data=2×model=4 (planned)", (32, 64), 8192, 1)
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import numpy as np

from inspector.records import Sharding, VariableRecord

MeshAxes = tuple[tuple[str, int], ...]
SpecEntry = Any  # None, a mesh axis name, or a tuple of them (several mesh axes on one dimension)
Rules = tuple[tuple[str, SpecEntry], ...]
_UNASSIGNED = object()


@dataclasses.dataclass(frozen=True)
class MeshPlan:
    """The mesh a model is written for, and the rules that map its logical axis names onto it.

    A description only, no devices: ``axes`` are ``(name, size)`` in mesh order; ``rules`` are
    flax's logical-axis rules, ``(logical_name, mesh_axis | (mesh_axes, ...) | None)`` pairs.
    """

    axes: MeshAxes
    rules: Rules = ()

    @property
    def size(self) -> int:
        return math.prod(n for _, n in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(n for _, n in self.axes)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.axes)

    def describe(self) -> str:
        return format_mesh(self.axes)


def format_mesh(mesh: MeshAxes) -> str:
    """``data=2×model=4``: how a mesh is written everywhere."""
    return "×".join(f"{a}={n}" for a, n in mesh)


def format_spec(spec: Sequence[SpecEntry]) -> str:
    """``P('data', None)``, as jax prints it (without jax's trailing comma for one entry)."""
    return "P(" + ", ".join(repr(tuple(e)) if isinstance(e, (tuple, list)) else repr(e) for e in spec) + ")"


def spec_from_names(names: Sequence[str | None], rules: Rules, axis_names: Sequence[str]) -> tuple:
    """The PartitionSpec flax derives from logical names.

    Rules are tried in order (flax Linen's ``logical_to_mesh_axes``): a rule assigns its mesh
    axes to the dimension with its logical name if that dimension is still unassigned and no other
    dimension uses those mesh axes. A name no rule assigned stays as it is if it is itself a free
    mesh axis (NNX's ``out_sharding=('data', 'model')``), else the dimension is replicated.

    >>> spec_from_names(("embed", "mlp"), (("mlp", "model"), ("embed", "model")), ("data", "model"))
    (None, 'model')
    >>> spec_from_names(("data", None), (), ("data", "model"))
    ('data', None)
    """
    result: list[Any] = [_UNASSIGNED if isinstance(n, str) else None for n in names]
    for logical, mesh_axes in rules:
        if logical in names:
            pos = list(names).index(logical)
            if result[pos] is _UNASSIGNED and not set(_axes(mesh_axes)) & _used(result):
                result[pos] = tuple(mesh_axes) if isinstance(mesh_axes, list) else mesh_axes
    for i, name in enumerate(names):
        if result[i] is _UNASSIGNED:
            result[i] = name if name in axis_names and name not in _used(result) else None
    return tuple(result)


def normalize_spec(spec: Sequence[SpecEntry] | None) -> tuple | None:
    """A spec in one canonical form, so equal layouts compare equal: ``P('a', None) == P('a')``
    and ``P(('a',)) == P('a')``.

    >>> normalize_spec((("data",), None, None))
    ('data',)
    """
    if spec is None:
        return None
    out = [e[0] if isinstance(e, (tuple, list)) and len(e) == 1 else
           tuple(e) if isinstance(e, (tuple, list)) else e for e in spec]
    while out and out[-1] is None:
        out.pop()
    return tuple(out)


def layout_on_mesh(spec: Sequence[SpecEntry], shape: Sequence[int], itemsize: int, mesh: MeshAxes, *,
                   names: tuple | None = None, planned: bool = False) -> Sharding:
    """The layout a PartitionSpec gives on a mesh: shard shape, bytes per device, replicas.

    Each dimension is split over the product of its mesh axes (rounded up, as JAX pads uneven
    shards); every device holds one shard, and the mesh axes the spec does not use replicate it.

    >>> s = layout_on_mesh((None, "model"), (16, 64), 4, (("data", 2), ("model", 4)))
    >>> s.shard_shape, s.device_bytes, s.replicas
    ((16, 16), 1024, 2)
    """
    sizes = dict(mesh)
    spec = tuple(tuple(e) if isinstance(e, list) else e for e in spec)
    shard_shape = tuple(-(-int(dim) // _split(spec, i, sizes)) for i, dim in enumerate(shape))
    used = _used(spec)
    return Sharding(names=names, spec=spec, mesh=tuple(mesh), shard_shape=shard_shape,
                    device_bytes=math.prod(shard_shape) * itemsize,
                    replicas=math.prod(n for a, n in mesh if a not in used), planned=planned)


def sharding_of(value: Any, shape: tuple[int, ...], dtype: np.dtype,
                names: tuple | None) -> Sharding | None:
    """The sharding record of a leaf: logical ``names`` and, on a named mesh, its placement.

    The shard shape is JAX's own (``NamedSharding.shard_shape``); an abstract mesh (an abstract
    build) gives the same layout as a real one.
    """
    placed = getattr(value, "sharding", None)
    if not isinstance(placed, jax.sharding.NamedSharding):
        return Sharding(names=names) if names else None
    mesh = tuple((str(axis), int(n)) for axis, n in placed.mesh.shape.items())
    spec = tuple(_spec_entry(e) for e in placed.spec)
    layout = layout_on_mesh(spec, shape, dtype.itemsize, mesh, names=names)
    shard_shape = tuple(int(d) for d in placed.shard_shape(shape))
    return dataclasses.replace(layout, shard_shape=shard_shape,
                               device_bytes=math.prod(shard_shape) * dtype.itemsize)


def plan_sharding(names: Sequence[str | None], shape: Sequence[int], itemsize: int, plan: MeshPlan) -> Sharding:
    """The layout logical ``names`` would have on the planned mesh (no device needed)."""
    spec = spec_from_names(names, plan.rules, plan.axis_names)
    return layout_on_mesh(spec, shape, itemsize, plan.axes, names=tuple(names), planned=True)


def apply_plan(records: Iterable[VariableRecord], plan: MeshPlan) -> list[VariableRecord]:
    """Records whose variables carry logical names but sit on no mesh get their planned layout."""
    out = []
    for r in records:
        s = r.sharding
        if s is not None and s.names and s.mesh is None:
            itemsize = r.nbytes // r.size if r.size else 0
            r = dataclasses.replace(r, sharding=plan_sharding(s.names, r.shape, itemsize, plan))
        out.append(r)
    return out


def shard_blocks(spec: Sequence[SpecEntry], mesh: MeshAxes, ndim: int) -> tuple[tuple[int, ...], ...]:
    """For each mesh position (row-major, as ``mesh.devices.flat``), the block index it holds
    along each array dimension; positions holding equal blocks are replicas.

    >>> shard_blocks(("model",), (("data", 2), ("model", 2)), 2)
    ((0, 0), (1, 0), (0, 0), (1, 0))
    """
    sizes = dict(mesh)
    out = []
    for coords in np.ndindex(*(n for _, n in mesh)):
        at = dict(zip((a for a, _ in mesh), coords))
        blocks = []
        for i in range(ndim):
            block = 0
            for axis in _axes(spec[i] if i < len(spec) else None):
                block = block * sizes.get(axis, 1) + at.get(axis, 0)
            blocks.append(block)
        out.append(tuple(blocks))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class DeviceMemory:
    """Bytes each device of a mesh holds for a whole model, so a user sees whether it fits.

    ``per_device`` follows the mesh positions in row-major order. ``other_bytes`` belong to
    variables with no layout on this mesh (unannotated): a jitted step replicates them, so they
    are counted on every device in ``totals``.
    """

    mesh: MeshAxes
    planned: bool
    per_device: tuple[int, ...]
    laid_out: int
    other_count: int
    other_bytes: int

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(b + self.other_bytes for b in self.per_device)


def device_memory(records: Sequence[VariableRecord]) -> DeviceMemory | None:
    """Per-device bytes on the mesh most variables are laid out on; None when none is.

    >>> from inspector.records import VariableRecord as V
    >>> r = V(("k",), "Param", (8, 4), "float32", 32, 128)
    >>> plan = MeshPlan((("x", 4),))
    >>> m = device_memory(apply_plan([dataclasses.replace(r, sharding=Sharding(names=("x",)))], plan))
    >>> m.per_device, m.planned
    ((32, 32, 32, 32), True)
    """
    meshes = collections.Counter(r.sharding.mesh for r in records if r.sharding and r.sharding.mesh)
    if not meshes:
        return None
    mesh = meshes.most_common(1)[0][0]
    per_device = [0] * math.prod(n for _, n in mesh)
    laid_out, planned = [r for r in records if r.sharding and r.sharding.mesh == mesh], False
    for r in laid_out:
        planned = planned or r.sharding.planned
        itemsize = r.nbytes // r.size if r.size else 0
        shard = r.sharding.shard_shape or r.shape
        for i, blocks in enumerate(shard_blocks(r.sharding.spec or (), mesh, len(r.shape))):
            per_device[i] += itemsize * math.prod(max(0, min(s, d - b * s)) for d, s, b in zip(r.shape, shard, blocks))
    others = [r for r in records if not (r.sharding and r.sharding.mesh == mesh)]
    return DeviceMemory(mesh=mesh, planned=planned, per_device=tuple(per_device), laid_out=len(laid_out),
                        other_count=len(others), other_bytes=sum(r.nbytes for r in others))


def annotation_problem(record: VariableRecord) -> str | None:
    """Logical names that do not cover the array's rank, explained.

    The classic case: layers stacked by ``nnx.vmap``/``nnx.scan`` without
    ``transform_metadata={nnx.PARTITION_NAME: ...}`` keep the per-layer names, one short.

    >>> from inspector.records import VariableRecord as V
    >>> annotation_problem(V(("k",), "Param", (2, 8, 4), "float32", 64, 256, sharding=Sharding(names=("a", "b"))))
    '2 logical names for a rank-3 array: a stacked layer axis without transform_metadata / metadata_params?'
    """
    names = record.sharding.names if record.sharding else None
    if not names or len(names) == len(record.shape):
        return None
    text = f"{len(names)} logical name{'s' if len(names) != 1 else ''} for a rank-{len(record.shape)} array"
    if len(names) < len(record.shape):
        text += ": a stacked layer axis without transform_metadata / metadata_params?"
    return text


def sharding_notes(left: VariableRecord, right: VariableRecord, *, one_sided: bool = True) -> tuple[str, ...]:
    """What differs in how two paired variables are annotated and laid out (empty: nothing).

    The mismatch half of ``compare_sharding`` with its defaults (see there).
    """
    return compare_sharding(left, right, one_sided=one_sided)[0]


def compare_sharding(left: VariableRecord, right: VariableRecord, *, one_sided: bool = True,
                     axis_rules: Rules | None = None, names_comparable: bool = True
                     ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(notes, info)``: what mismatches in two paired variables' sharding, and what differs
    without being a mismatch.

    - Logical names are compared when both sides have them. With ``axis_rules`` (flax's
      ``logical_axis_rules``), a Linen side's names (a record with a collection) are first mapped to
      mesh axes as ``nn.logical_to_mesh_axes`` does, and mesh axes are compared. Without rules, when
      ``names_comparable`` is False (the two trees share no sharding name at all: logical names on
      one side, mesh axes on the other) a difference is only ``info``.
    - PartitionSpecs are compared when both sides have one. With ``one_sided=False`` (a checkpoint
      on a side: Orbax restores into whatever sharding the reader asks for), written layouts are
      compared only on equal meshes of more than one device, and then by shard shape; any other
      difference is ``info``.
    - Names that do not cover the array's rank are a mismatch on either side; with ``one_sided``,
      annotations that only one side has (a port that dropped them) are too.

    >>> from inspector.records import VariableRecord as V
    >>> l = V(("w",), "Param", (8, 4), "float32", 32, 128, "params", Sharding(names=("vocab", "embed")))
    >>> r = V(("w",), "Param", (8, 4), "float32", 32, 128, sharding=Sharding(names=(None, "model")))
    >>> compare_sharding(l, r, axis_rules=(("vocab", None), ("embed", "model")))
    ((), ())
    >>> compare_sharding(l, r, names_comparable=False)[1][0][:65]
    "sharding names ('vocab', 'embed') vs (None, 'model') not compared"
    """
    a, b = left.sharding or Sharding(), right.sharding or Sharding()
    notes: list[str] = []
    info: list[str] = []
    if a.names and b.names:
        if axis_rules is not None:
            ma, mb = mesh_axes(left, axis_rules), mesh_axes(right, axis_rules)
            if normalize_spec(ma) != normalize_spec(mb):
                notes.append(f"mesh axes {format_spec(ma)} ≠ {format_spec(mb)} under the axis rules "
                             f"(names {tuple(a.names)!r}, {tuple(b.names)!r})")
        elif tuple(a.names) != tuple(b.names):
            if names_comparable:
                notes.append(f"logical names {tuple(a.names)!r} ≠ {tuple(b.names)!r}")
            else:
                info.append(f"sharding names {tuple(a.names)!r} vs {tuple(b.names)!r} not compared: the trees "
                            "share no sharding name (logical names vs mesh axes?); pass axis rules to compare them")
    spec_a, spec_b = normalize_spec(a.spec), normalize_spec(b.spec)
    # Given axis rules override a model's own: layouts planned from its rules are not compared.
    replanned = axis_rules is not None and (a.planned or b.planned)
    if spec_a is not None and spec_b is not None and spec_a != spec_b and not replanned:
        text = f"PartitionSpec {format_spec(spec_a)} ≠ {format_spec(spec_b)}"
        if one_sided:
            notes.append(text)
        elif a.mesh and a.mesh == b.mesh and math.prod(n for _, n in a.mesh) > 1:
            if a.shard_shape != b.shard_shape:
                notes.append(f"{text} on {format_mesh(a.mesh)}: shards {a.shard_shape} ≠ {b.shard_shape}")
            else:
                info.append(f"written {text} on {format_mesh(a.mesh)}, with equal shards {a.shard_shape}")
        else:
            meshes = " vs ".join(dict.fromkeys(format_mesh(m) if m else "no mesh" for m in (a.mesh, b.mesh)))
            info.append(f"written {text} ({meshes}): not compared, a checkpoint restores into any sharding "
                        "the reader asks for")
    for side, record in (("left", left), ("right", right)):
        problem = annotation_problem(record)
        if problem:
            notes.append(f"{side}: {problem}")
    if one_sided:
        has_a, has_b = bool(a.names or spec_a), bool(b.names or spec_b)
        if has_a != has_b:
            s = a if has_a else b
            what = repr(tuple(s.names)) if s.names else format_spec(spec_a if has_a else spec_b)
            notes.append(f"annotated on the {'left' if has_a else 'right'} only: {what}")
    return tuple(notes), tuple(info)


def mesh_axes(record: VariableRecord, rules: Rules) -> tuple:
    """The mesh axes of a record's sharding names: a Linen record's logical names mapped by the rules
    (unmapped names are replicated, as ``nn.logical_to_mesh_axes``); NNX names already are mesh axes."""
    names = record.sharding.names if record.sharding else None
    if not names:
        return ()
    if record.collection is None:
        return tuple(names)
    return spec_from_names(names, rules, ())


def sharding_names(records: Iterable[VariableRecord]) -> set[str]:
    """Every sharding name a tree uses (logical names and NNX mesh axes)."""
    return {n for r in records if r.sharding and r.sharding.names for n in r.sharding.names if isinstance(n, str)}


def parse_axis_rules(text: str, *, origin: str = "axis rules") -> Rules:
    """flax's ``logical_axis_rules`` as JSON: ``[["embed", "model"], ["vocab", null]]``; a mesh axis may
    also be a list of axes (``["batch", ["data", "fsdp"]]``).

    >>> parse_axis_rules('[["embed", "model"], ["vocab", null], ["batch", ["data", "fsdp"]]]')
    (('embed', 'model'), ('vocab', None), ('batch', ('data', 'fsdp')))
    """
    import json

    from inspector.errors import InspectorError

    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InspectorError(f"{origin}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(data, list):
        raise InspectorError(f"{origin}: expected a list of [logical_name, mesh_axis] pairs like "
                             f'[["embed", "model"], ["vocab", null]], got {type(data).__name__}')
    rules = []
    for i, item in enumerate(data):
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and (
            item[1] is None or isinstance(item[1], str)
            or isinstance(item[1], list) and all(isinstance(x, str) for x in item[1]))
        if not ok:
            raise InspectorError(f"{origin}: rule {i} must be [\"<logical name>\", \"<mesh axis>\" | null | "
                                 f"[\"<axis>\", ...]], got {item!r}")
        rules.append((item[0], tuple(item[1]) if isinstance(item[1], list) else item[1]))
    return tuple(rules)


def _axes(entry: SpecEntry) -> tuple[str, ...]:
    if isinstance(entry, str):
        return (entry,)
    if isinstance(entry, (tuple, list)):
        return tuple(a for a in entry if isinstance(a, str))
    return ()


def _used(spec: Iterable[Any]) -> set[str]:
    return {a for e in spec if e is not _UNASSIGNED for a in _axes(e)}


def _split(spec: Sequence[SpecEntry], i: int, sizes: dict[str, int]) -> int:
    return max(math.prod(sizes.get(a, 1) for a in _axes(spec[i] if i < len(spec) else None)), 1)


def _spec_entry(entry: Any) -> Any:
    if entry is None or isinstance(entry, str):
        return entry
    if isinstance(entry, (tuple, list)):
        return tuple(entry)
    return str(entry)  # PartitionSpec.UNCONSTRAINED
