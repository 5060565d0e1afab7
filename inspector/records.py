"""One frozen record per variable: the type that crosses every boundary of the project.

A record describes a variable without holding its value: where it lives (``collection`` for Linen,
``path`` inside it), what kind it is, its shape, dtype, size and bytes, and its sharding
annotations. Records are hashable and picklable, so caches, tables and diffs all agree on them.

>>> r = VariableRecord(path=("block", "linear", "kernel"), type="Param", shape=(784, 256),
...                    dtype="float32", size=200704, nbytes=802816)
>>> format_path(r.path), r.to_json()["shape"]
('block/linear/kernel', [784, 256])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, Union

PathKey = Union[str, int]
Path = tuple[PathKey, ...]

# Kinds in the order people expect to read them; other kinds follow alphabetically.
KIND_ORDER = ("Param", "BatchStat", "BatchCount", "Cache", "Intermediate", "Perturbation", "RngKey", "RngCount",
              "OptState")
UNKNOWN_KIND = "unknown"


def format_path(path: Iterable[PathKey]) -> str:
    """The one way a path is written: keys joined by ``/``.

    >>> format_path(("layers", 0, "kernel"))
    'layers/0/kernel'
    """
    return "/".join(str(k) for k in path)


def path_sort_key(path: Path) -> tuple:
    """A total order over paths that mix int and str keys (ints first, as numbers)."""
    return tuple((0, k, "") if isinstance(k, int) else (1, 0, k) for k in path)


@dataclasses.dataclass(frozen=True)
class Sharding:
    """How a variable is (or would be) laid out: logical names, PartitionSpec, mesh placement."""

    names: tuple[str | None, ...] | None = None
    spec: tuple[Any, ...] | None = None
    mesh: tuple[tuple[str, int], ...] | None = None
    shard_shape: tuple[int, ...] | None = None
    device_bytes: int | None = None
    replicas: int | None = None
    # True when computed from logical names and rules for a mesh the arrays are not on.
    planned: bool = False

    def describe(self) -> str:
        """Short human text, e.g. ``('embed', 'mlp')`` or ``P(None, 'model') on data=2×model=4``."""
        parts = []
        if self.names is not None:
            parts.append("(" + ", ".join(repr(n) for n in self.names) + ")")
        if self.spec is not None and self.mesh is not None:
            mesh = "×".join(f"{a}={n}" for a, n in self.mesh)
            spec = ", ".join(repr(tuple(e)) if isinstance(e, (tuple, list)) else repr(e) for e in self.spec)
            parts.append(f"P({spec}) on {mesh}" + (" (planned)" if self.planned else ""))
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and value is not False:
                out[field.name] = _jsonable(value)
        return out


@dataclasses.dataclass(frozen=True)
class Stats:
    """Value statistics of one array (computed from values, stored beside the record)."""

    min: float
    max: float
    mean: float
    std: float
    nan: int
    inf: int

    def to_json(self) -> dict[str, Any]:
        """JSON has no NaN or Infinity: a statistic that is not finite is written as null."""
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class VariableRecord:
    """One variable of a model, described without its value."""

    path: Path
    type: str | None
    shape: tuple[int, ...]
    dtype: str
    size: int
    nbytes: int
    collection: str | None = None
    sharding: Sharding | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    stats: Stats | None = None
    # The nearest flax-registered ancestor of ``type`` when ``type`` is a user subclass
    # (``ArrayParam(nnx.Param)`` → ``Param``); None when ``type`` is itself the kind.
    base: str | None = None

    @property
    def key(self) -> tuple[str, Path]:
        """Unique within one tree: Linen's ``(collection, path)``; NNX has no collection."""
        return (self.collection or "", self.path)

    @property
    def name(self) -> str:
        """The path as people write it, without the collection."""
        return format_path(self.path)

    @property
    def full_name(self) -> str:
        """The path with its Linen collection in front (``params/Dense_0/kernel``)."""
        return format_path(((self.collection,) if self.collection else ()) + self.path)

    @property
    def kind(self) -> str:
        """The kind for comparisons and totals: the registered ancestor (``Param`` for an
        ``ArrayParam``), else the type name, or ``unknown`` when not recorded."""
        return self.base or (self.type if self.type is not None else UNKNOWN_KIND)

    @property
    def kind_name(self) -> str | None:
        """The kind, or None when not recorded (an unknown kind matches any)."""
        return self.base or self.type

    @property
    def type_label(self) -> str:
        """How tables show the class: ``ArrayParam (a Param)``, ``Param``, ``unknown``.

        >>> VariableRecord(("w",), "ArrayParam", (2,), "float32", 2, 8, base="Param").type_label
        'ArrayParam (a Param)'
        """
        if self.base and self.base != self.type:
            return f"{self.type} (a {self.base})"
        return self.kind

    @property
    def is_rng(self) -> bool:
        """RNG state: NNX's RngKey/RngCount, or typed PRNG keys wherever they appear."""
        return self.type in ("RngKey", "RngCount") or self.dtype.startswith("key<")

    def sort_key(self) -> tuple:
        return (self.collection or "", path_sort_key(self.path))

    def to_json(self) -> dict[str, Any]:
        """The record as the CLI's JSON shows it."""
        out: dict[str, Any] = {
            "path": self.name,
            "type": self.type,
            "kind": self.kind_name,
            "collection": self.collection,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "size": self.size,
            "nbytes": self.nbytes,
        }
        if self.sharding is not None:
            out["sharding"] = self.sharding.to_json()
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.stats is not None:
            out["stats"] = self.stats.to_json()
        return out


@dataclasses.dataclass(frozen=True)
class Totals:
    count: int = 0
    size: int = 0
    nbytes: int = 0

    def add(self, record: VariableRecord) -> Totals:
        return Totals(self.count + 1, self.size + record.size, self.nbytes + record.nbytes)


def kind_sort_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.index(kind), "") if kind in KIND_ORDER else (len(KIND_ORDER), kind)


def totals_by_kind(records: Iterable[VariableRecord]) -> dict[str, Totals]:
    """Count, parameters and bytes per kind, in reading order.

    >>> r = VariableRecord(path=("b",), type="Param", shape=(3,), dtype="float32", size=3, nbytes=12)
    >>> totals_by_kind([r, r])
    {'Param': Totals(count=2, size=6, nbytes=24)}
    """
    totals: dict[str, Totals] = {}
    for record in records:
        totals[record.kind] = totals.get(record.kind, Totals()).add(record)
    return dict(sorted(totals.items(), key=lambda item: kind_sort_key(item[0])))


def sort_records(records: Iterable[VariableRecord]) -> tuple[VariableRecord, ...]:
    return tuple(sorted(records, key=VariableRecord.sort_key))


def format_bytes(n: int) -> str:
    """Human bytes: ``format_bytes(814120) == '795.0 KiB'``.

    >>> format_bytes(814120)
    '795.0 KiB'
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
