"""Build a model on the mesh it is annotated for, or with its annotations only where devices are few.

An example that declares a ``MeshPlan`` (``LinenExample.mesh`` / ``NnxExample.mesh``) is built

- with at least ``plan.size`` devices: under ``jax.set_mesh`` and flax's logical-axis rules. The
  mesh axes are ``Auto``: Linen applies its annotations with ``with_sharding_constraint``, which
  asserts instead of resharding on ``Explicit`` axes. NNX shards while it builds; an eager Linen
  init leaves every array replicated, so its variables are then placed with
  ``nn.logical_to_mesh_sharding``, as a ``jax.jit(init, out_shardings=...)`` would place them.
  Abstract builds keep their shardings, on the real mesh (what ``nnx.get_abstract_model`` gives);
- otherwise: under ``nnx.use_eager_sharding(False)`` (flax refuses annotations without a mesh), and
  the records get the layout planned from their names and the rules (``planned_records``).

So the same sample loads on a laptop and on a pod slice, and shows the same layout on both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
from flax import nnx
from jax.sharding import AxisType, NamedSharding

from inspector.records import VariableRecord
from inspector.sharding import MeshPlan, apply_plan


def real_mesh(plan: MeshPlan) -> jax.sharding.Mesh | None:
    """The plan's mesh over the first ``plan.size`` devices, or None when there are fewer."""
    if jax.device_count() < plan.size:
        return None
    return jax.make_mesh(plan.shape, plan.axis_names, axis_types=(AxisType.Auto,) * len(plan.axes),
                         devices=jax.devices()[:plan.size])


@contextlib.contextmanager
def mesh_context(plan: MeshPlan | None) -> Iterator[jax.sharding.Mesh | None]:
    """The context a build runs in; yields the real mesh, or None (no plan, or too few devices)."""
    if plan is None:
        yield None
        return
    mesh = real_mesh(plan)
    with nn.logical_axis_rules(plan.rules):
        if mesh is not None:
            with jax.set_mesh(mesh):
                yield mesh
        else:
            with nnx.use_eager_sharding(False):
                yield None


def place_linen(variables: Mapping[str, Any], mesh: jax.sharding.Mesh, plan: MeshPlan) -> dict[str, Any]:
    """Linen variables on the mesh their logical names and the rules ask for.

    Arrays are moved with ``jax.device_put``; abstract leaves (``ShapeDtypeStruct``) get the
    sharding attached. Unannotated variables are replicated, as jit would place them.
    """
    specs = nn.get_partition_spec(variables)
    shardings = nn.logical_to_mesh_sharding(specs, mesh, plan.rules)
    is_box = lambda x: isinstance(x, nn.Partitioned)  # noqa: E731

    def place(sharding: NamedSharding, leaf: Any) -> Any:
        value = leaf.unbox() if is_box(leaf) else leaf
        if isinstance(value, jax.ShapeDtypeStruct):
            value = jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=sharding)
        else:
            value = jax.device_put(value, sharding)
        return leaf.replace_boxed(value) if is_box(leaf) else value

    return jax.tree.map(place, shardings, dict(variables), is_leaf=lambda x: isinstance(x, NamedSharding))


def on_real_mesh(module: nnx.Module, mesh: jax.sharding.Mesh) -> None:
    """Abstract values sharded over the abstract mesh of a trace move to the real mesh (in place)."""
    def concrete(x: Any) -> Any:
        sharding = getattr(x, "sharding", None)
        if isinstance(x, jax.ShapeDtypeStruct) and isinstance(sharding, NamedSharding) and \
                not isinstance(sharding.mesh, jax.sharding.Mesh):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, sharding.spec))
        return x

    nnx.update(module, jax.tree.map(concrete, nnx.state(module)))


def planned_records(records: Sequence[VariableRecord], plan: MeshPlan | None) -> tuple[VariableRecord, ...]:
    """With a plan, records annotated but not on a mesh show the layout they would have."""
    return tuple(apply_plan(records, plan)) if plan is not None else tuple(records)


def device_ids(value: Any) -> tuple[int, ...] | None:
    """Ids of the devices of the mesh a value is laid out on, in mesh order (row-major);
    None when it is on no real mesh (one device, an abstract mesh, a checkpoint's metadata).

    Together with ``inspector.sharding.shard_blocks`` this says which device holds which shard.
    """
    sharding = getattr(value, "sharding", None)
    if not isinstance(sharding, NamedSharding) or not isinstance(sharding.mesh, jax.sharding.Mesh):
        return None
    return tuple(int(d.id) for d in sharding.mesh.devices.flat)
