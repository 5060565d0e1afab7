"""Sharding of one variable: its logical axis names and, when placed on a mesh, its layout.

JAX's own sharding objects are the source of truth; this module only reads them into the
record's ``Sharding`` (PartitionSpec, mesh axes, shard shape, bytes per device, replicas).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from inspector.records import Sharding


def sharding_of(value: Any, shape: tuple[int, ...], dtype: np.dtype,
                names: tuple | None) -> Sharding | None:
    """The sharding record of a leaf: logical ``names`` and, on a named mesh, its placement."""
    placed = getattr(value, "sharding", None)
    if not isinstance(placed, jax.sharding.NamedSharding):
        return Sharding(names=names) if names else None
    mesh = tuple((str(axis), int(n)) for axis, n in placed.mesh.shape.items())
    shard_shape = tuple(int(d) for d in placed.shard_shape(shape))
    shards = math.prod(s // max(d, 1) for s, d in zip(shape, shard_shape)) if shape else 1
    devices = math.prod(n for _, n in mesh)
    return Sharding(
        names=names, spec=tuple(_spec_entry(e) for e in placed.spec), mesh=mesh,
        shard_shape=shard_shape, device_bytes=math.prod(shard_shape) * dtype.itemsize,
        replicas=max(devices // max(shards, 1), 1))


def _spec_entry(entry: Any) -> Any:
    if entry is None or isinstance(entry, str):
        return entry
    return tuple(entry)
