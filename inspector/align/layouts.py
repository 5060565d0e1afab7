"""Layout changes between the two sides of a port: which transform turns a left array into the right one.

The passes (``inspector.align.passes``) pair variables by names and places; this module looks at what
they leave undecided, with the evidence the issue ranks strongest first: shapes and element counts
within the same module pair, then name signals. It never guesses between equally plausible layouts.

- A pair of different shapes and equal size: merging or splitting adjacent axes is a ``reshape``
  (``DenseGeneral`` heads ``(D, H, hd)`` ↔ a flat ``Linear`` ``(D, H*hd)``); a transpose needs a
  name signal (``weight`` ↔ ``kernel``: PyTorch stores ``(out, in)``).
- A square kernel under ``weight`` ↔ ``kernel``: both layouts are plausible; paired as it is, with an
  ``info`` line saying so (the port check decides by running both).
- Fused pieces: ``qkv`` (or ``kv``, ``gate_up``) on one side, ``query``/``key``/``value`` (``q``, ``k``,
  ``v``, ``gate``, ``up``, ``*_proj``) beside each other on the other, are joined by a ``concat``
  (or taken apart by a ``split``, also one submodule deeper: Gemma's ``mlp/gating_einsum`` ``(2, D, F)``
  ↔ ``mlp/gate_proj/kernel`` + ``mlp/up_proj/kernel``); the piece order comes from the names.
- Depth changes: a leaf directly on a module pairs with the only leaf of its kind and shape one
  submodule deeper on the other side (``mlp/linear`` ↔ ``mlp/down_proj/kernel``).

Everything is indexed by module path, so the cost grows with the number of leftovers.

>>> from inspector.records import VariableRecord as V
>>> a = V(("attn", "query", "kernel"), "Param", (8, 2, 4), "float32", 64, 256, "params")
>>> b = V(("attn", "q_proj", "kernel"), "Param", (8, 8), "float32", 64, 256)
>>> link_pair(a, b).transform.text
'reshape (8, 8)'
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from inspector.align.naming import norm
from inspector.align.transforms import Transform
from inspector.kinds import same_kind
from inspector.records import VariableRecord, format_path

Key = tuple[str, ...]

# Piece names, normalized (lower case, ``_proj``/``proj`` and a ``w``/``to_`` prefix dropped).
_PIECES = {"q": "q", "query": "q", "k": "k", "key": "k", "v": "v", "value": "v",
           "gate": "gate", "gating": "gate", "up": "up"}
_FUSED = {"qkv": ("q", "k", "v"), "kv": ("k", "v"), "gateup": ("gate", "up"), "gating": ("gate", "up"),
          "gatingeinsum": ("gate", "up")}
_STRIP = re.compile(r"(_?proj|_?einsum)$")


@dataclasses.dataclass(frozen=True)
class Ambiguity:
    """Equally plausible transforms for one pair (None: the array as it is); the port check tries each."""

    choices: tuple[Transform | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"ambiguous": [c.to_json() if c else None for c in self.choices]}


@dataclasses.dataclass(frozen=True)
class Link:
    """A pair found by the alignment, with the transform between its sides (if any)."""

    left: VariableRecord | None
    right: VariableRecord | None
    transform: Transform | None = None
    left_parts: tuple[VariableRecord, ...] = ()
    info: tuple[str, ...] = ()
    evidence: Any = None


def piece_of(name: Any) -> str | None:
    """``query``, ``q_proj``, ``wq``, ``gate_proj`` → the piece they are (``q``, ``gate``)."""
    text = _STRIP.sub("", str(name).lower()).replace("_", "")
    if text.startswith("to") and text[2:] in _PIECES:
        text = text[2:]
    if text not in _PIECES and text.startswith("w") and text[1:] in _PIECES:
        text = text[1:]
    return _PIECES.get(text)


def fused_pieces(name: Any) -> tuple[str, ...] | None:
    """``qkv``, ``qkv_proj``, ``gate_up_proj``, ``gating_einsum`` → the pieces in order."""
    text = _STRIP.sub("", str(name).lower())
    text = text.replace("_", "")
    if text not in _FUSED and text.startswith("w") and text[1:] in _FUSED:
        text = text[1:]
    return _FUSED.get(text)


def regroups(src: Sequence[int], dst: Sequence[int]) -> bool:
    """Whether ``dst`` only merges or splits adjacent axes of ``src`` (a reshape keeping element order).

    >>> regroups((8, 2, 4), (8, 8)), regroups((4, 6), (6, 4)), regroups((2, 3, 4), (6, 4))
    (True, False, True)
    """
    src = [d for d in src if d != 1]
    dst = [d for d in dst if d != 1]
    if math.prod(src) != math.prod(dst):
        return False
    i = j = 0
    while i < len(src) and j < len(dst):
        if src[i] == dst[j]:
            i, j = i + 1, j + 1
            continue
        small, big, si, bi = (src, dst, i, j) if src[i] < dst[j] else (dst, src, j, i)
        product, k = small[si], si + 1
        while product < big[bi] and k < len(small):
            product *= small[k]
            k += 1
        if product != big[bi]:
            return False
        if small is src:
            i, j = k, j + 1
        else:
            i, j = i + 1, k
    return i == len(src) and j == len(dst)


def _weight_signal(a: VariableRecord, b: VariableRecord) -> bool:
    names = {norm(a.path[-1]), norm(b.path[-1])}
    return names == {"weight", "kernel"}


def single_transforms(src: tuple[int, ...], dst: tuple[int, ...], transposable: bool) -> list[Transform]:
    """Every transform of one array from ``src`` to ``dst`` the evidence allows (empty: none)."""
    found: list[Transform] = []
    if src != dst and regroups(src, dst):
        found.append(Transform.reshape(dst))
    if transposable and math.prod(src) == math.prod(dst):
        if len(src) == 2 and tuple(reversed(src)) == dst and src != dst:
            found.append(Transform.transpose((1, 0)))
        elif len(src) > 2 and len(dst) == 2:  # (D, H, hd) → PyTorch (H*hd, D)
            for k in range(1, len(src)):
                mid = (math.prod(src[:k]), math.prod(src[k:]))
                if mid[::-1] == dst and mid != dst:
                    found.append(Transform.chain(Transform.reshape(mid), Transform.transpose((1, 0))))
        elif len(src) == 2 and len(dst) > 2 and src[0] != src[1] and regroups(src[::-1], dst):
            found.append(Transform.chain(Transform.transpose((1, 0)), Transform.reshape(dst)))
    return found


def link_pair(a: VariableRecord, b: VariableRecord) -> Link:
    """The transform between two paired variables, or an ambiguity noted, or nothing."""
    transposable = _weight_signal(a, b)
    if a.shape == b.shape:
        if transposable and len(a.shape) == 2 and a.shape[0] == a.shape[1]:
            return Link(a, b, info=(f"ambiguous: {a.name} → {b.name} is square {a.shape}; `weight` may be stored "
                                    "(out, in) and need a transpose; paired as it is, the port check or a rule "
                                    "decides",), evidence=Ambiguity((None, Transform.transpose((1, 0)))))
        return Link(a, b)
    if a.size != b.size or a.is_rng or b.is_rng:
        return Link(a, b)
    found = single_transforms(a.shape, b.shape, transposable)
    if len(found) == 1:
        return Link(a, b, transform=found[0])
    if found:
        return Link(a, b, info=(f"ambiguous: {a.shape} → {b.shape} fits " + " or ".join(t.text for t in found),),
                    evidence=Ambiguity(tuple(found)))
    return Link(a, b)


def link_layouts(pairs: Sequence[tuple[VariableRecord | None, VariableRecord | None]]) -> list[Link]:
    """Every pair as a link with its transform; leftovers joined as fused pieces or across a depth change."""
    links: list[Link] = []
    lonely_l: list[VariableRecord] = []
    lonely_r: list[VariableRecord] = []
    modules: dict[Key, Key] = {}
    ancestors: dict[Key, Key] = {}
    for a, b in pairs:
        if a is not None and b is not None:
            links.append(link_pair(a, b))
            la, lb = _key(a.path[:-1]), _key(b.path[:-1])
            modules.setdefault(la, lb)
            for k in range(1, min(len(la), len(lb))):
                ancestors.setdefault(la[:-k], lb[:-k])
        elif a is not None:
            lonely_l.append(a)
        elif b is not None:
            lonely_r.append(b)
    if lonely_l and lonely_r:
        mapper = _ModuleMap(ancestors | modules)
        for step in (_concat_pieces, _split_pieces, _depth_changes):
            found, lonely_l, lonely_r = step(lonely_l, lonely_r, mapper)
            links.extend(found)
            if not lonely_l or not lonely_r:
                break
    links.extend(Link(a, None) for a in lonely_l)
    links.extend(Link(None, b) for b in lonely_r)
    return links


def _key(path: Sequence[Any]) -> Key:
    return tuple(str(k) for k in path)


class _ModuleMap:
    """Where a left module sits on the right: its own pair, or its parent's pair plus its name."""

    def __init__(self, modules: dict[Key, Key]):
        self.modules = modules
        self.cache: dict[Key, Key] = {}

    def __call__(self, left: Key) -> Key:
        found = self.cache.get(left)
        if found is None:
            found = self.modules.get(left)
            if found is None:
                found = self(left[:-1]) + left[-1:] if left else ()
            self.cache[left] = found
        return found


Step = tuple[list[Link], list[VariableRecord], list[VariableRecord]]


def _concat_pieces(left: list[VariableRecord], right: list[VariableRecord], mapper: _ModuleMap) -> Step:
    """``attn/query/kernel`` + ``attn/key/kernel`` + ``attn/value/kernel`` → ``attn/qkv/kernel``."""
    pieces: dict[tuple[Key, str, str], list[VariableRecord]] = {}
    for record in left:
        module = record.path[:-1]
        piece = piece_of(module[-1]) if module else None
        if piece is not None:
            pieces.setdefault((mapper(_key(module[:-1])), piece, norm(record.path[-1])), []).append(record)
    links, used = [], set()
    for record in right:
        module = record.path[:-1]
        wanted = fused_pieces(module[-1]) if module else None
        if not wanted:
            continue
        parts = [pieces.get((_key(module[:-1]), p, norm(record.path[-1])), []) for p in wanted]
        if not all(len(p) == 1 for p in parts):
            continue
        parts = [p[0] for p in parts]
        if any(id(p) in used for p in parts) or not all(same_kind(p.kind_name, record.kind_name) for p in parts):
            continue
        transforms = _concat_transforms([p.shape for p in parts], record.shape)
        names = ", ".join(p.name for p in parts)
        if len(transforms) == 1:
            links.append(Link(parts[0], record, transforms[0], tuple(parts)))
        elif transforms:
            links.append(Link(parts[0], record, None, tuple(parts), info=(
                f"ambiguous: {names} → {record.name} joins on " + " or ".join(t.text for t in transforms)
                + "; left unjoined, a rule decides",), evidence=Ambiguity(tuple(transforms))))
        else:
            continue
        used.update(id(p) for p in parts)
        used.add(id(record))
    return links, [r for r in left if id(r) not in used], [r for r in right if id(r) not in used]


def _concat_transforms(shapes: list[tuple[int, ...]], target: tuple[int, ...]) -> list[Transform]:
    found = []
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        return found
    for axis in range(rank):
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) != 1:
            continue
        joined = shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]
        if joined == target:
            found.append(Transform.concat(axis))
        elif regroups(joined, target):
            found.append(Transform.chain(Transform.concat(axis), Transform.reshape(target)))
    exact = [t for t in found if t.op == "concat"]
    return exact or found


def _split_pieces(left: list[VariableRecord], right: list[VariableRecord], mapper: _ModuleMap) -> Step:
    """``mlp/gating_einsum`` (2, D, F) → ``mlp/gate_proj/kernel`` + ``mlp/up_proj/kernel``, and a fused
    ``qkv`` module's leaves → ``query``/``key``/``value`` beside it."""
    by_place: dict[tuple[Key, str], list[VariableRecord]] = {}
    for record in right:
        module = record.path[:-1]
        piece = piece_of(module[-1]) if module else None
        if piece is not None:
            by_place.setdefault((_key(module[:-1]), piece), []).append(record)
    links, used = [], set()
    for record in left:
        module = _key(record.path[:-1])
        # A fused leaf on a module (gating_einsum), or a fused module's leaf (qkv/kernel).
        if (wanted := fused_pieces(record.path[-1])) is not None:
            place, leaf = mapper(module), None
        elif module and (wanted := fused_pieces(module[-1])) is not None:
            place, leaf = mapper(module[:-1]), norm(record.path[-1])
        else:
            continue
        groups = [[r for r in by_place.get((place, p), []) if id(r) not in used
                   and (leaf is None or norm(r.path[-1]) == leaf) and same_kind(r.kind_name, record.kind_name)]
                  for p in wanted]
        # Stacked pieces (Gemma's gating_einsum) come transposed too; a fused module's kernel only
        # under a `weight` ↔ `kernel` name signal.
        transposable = leaf is None or any(_weight_signal(record, r) for g in groups for r in g)
        choice = _split_choice(record, groups, transposable)
        if choice is None:
            continue
        targets, transforms, info, evidence = choice
        for i, (target, transform) in enumerate(zip(targets, transforms)):
            links.append(Link(record, target, transform, info=info if i == 0 else (),
                              evidence=evidence[i] if len(evidence) == len(targets) else None))
            used.add(id(target))
        used.add(id(record))
    return links, [r for r in left if id(r) not in used], [r for r in right if id(r) not in used]


def _split_choice(record: VariableRecord, groups: list[list[VariableRecord]], transposable: bool):
    """One right variable per piece whose shape a split (+ reshape, + transpose) gives, or None."""
    n = len(groups)
    shape = record.shape
    targets, transforms, ambiguous = [], [], []
    for index, group in enumerate(groups):
        options = []
        for target in group:
            for t in _split_transforms(shape, n, index, target.shape):
                if transposable or t.op != "chain" or t.steps[-1].op != "transpose":
                    options.append((target, t))
        straight = [o for o in options if o[1].op != "chain" or o[1].steps[-1].op != "transpose"]
        flipped = [o for o in options if o not in straight]
        if len({id(o[0]) for o in options}) != 1:
            return None  # no candidate, or several variables fit this piece
        if len(straight) == 1 and not flipped:
            pick = straight[0]
        elif len(flipped) == 1 and not straight:
            pick = flipped[0]
        elif len(straight) == 1 and len(flipped) == 1:
            pick = straight[0]  # a square piece: transposed or not
            ambiguous.append(Ambiguity((straight[0][1], flipped[0][1])))
        else:
            return None
        targets.append(pick[0])
        transforms.append(pick[1])
    info = ()
    if ambiguous:
        info = (f"ambiguous: the pieces of {record.name} are square; they may be stored transposed — split "
                "without a transpose, the port check or a rule decides",)
    return targets, transforms, info, ambiguous or [None] * len(targets)


def _split_transforms(shape: tuple[int, ...], n: int, index: int, target: tuple[int, ...]) -> list[Transform]:
    found = []
    for axis, size in enumerate(shape):
        if size % n:
            continue
        step = Transform.split(axis, index, n)
        piece = shape[:axis] + (size // n,) + shape[axis + 1:]
        squeezed = shape[:axis] + shape[axis + 1:] if size == n else piece
        steps = [step] if squeezed == piece else [step, Transform.reshape(squeezed)]
        if squeezed == target:
            found.append(Transform.chain(*steps))
        elif len(squeezed) == 2 and squeezed[::-1] == target:
            found.append(Transform.chain(*steps, Transform.transpose((1, 0))))
    return found


def _depth_changes(left: list[VariableRecord], right: list[VariableRecord], mapper: _ModuleMap) -> Step:
    """A leaf directly on a module ↔ the only leaf of its kind and shape one submodule deeper (either way)."""
    links: list[Link] = []
    used: set[int] = set()
    for flip in (False, True):
        outer, inner = (right, left) if flip else (left, right)
        deeper: dict[tuple[Key, str, tuple], list[VariableRecord]] = {}
        for record in inner:
            if id(record) in used or len(record.path) < 2 or record.is_rng:
                continue
            module = record.path[:-2]
            place = mapper(_key(module)) if flip else _key(module)
            deeper.setdefault((place, _kind(record), record.shape), []).append(record)
        here: dict[tuple[Key, str, tuple], list[VariableRecord]] = {}
        for record in outer:
            if id(record) in used or record.is_rng:
                continue
            module = _key(record.path[:-1])
            place = module if flip else mapper(module)
            here.setdefault((place, _kind(record), record.shape), []).append(record)
        for key, records in here.items():
            found = deeper.get(key, [])
            if len(records) == 1 and len(found) == 1:
                a, b = (found[0], records[0]) if flip else (records[0], found[0])
                links.append(Link(a, b, info=(f"depth change: {a.name} ↔ {b.name}, the only "
                                               f"{_kind(a)} of shape {a.shape} there",)))
                used.update((id(a), id(b)))
    return links, [r for r in left if id(r) not in used], [r for r in right if id(r) not in used]


def _kind(record: VariableRecord) -> str:
    from inspector.kinds import canonical_kind

    return canonical_kind(record.kind_name) if record.kind_name else ""


def describe_parts(parts: Sequence[VariableRecord]) -> str:
    return " + ".join(format_path(p.path) for p in parts)


__all__ = ["Ambiguity", "Link", "fused_pieces", "link_layouts", "link_pair", "piece_of", "regroups",
           "single_transforms"]
