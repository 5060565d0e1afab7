"""The two module trees of a diff, side by side: what the Diff page draws above its table.

A diff is a list of variable pairs; people read a port as two trees of modules, Linen on the left
and NNX on the right, with lines between the modules that became each other. This module turns
diff entries into those trees: one row per module on each side (the model itself is the root row),
in preorder so that ``rows[i + 1:row.end]`` is everything below row ``i``, each row with the
variables and parameters below it and the worst status below it. Links join the modules that
directly hold the two sides of a pair; a viewer lifts them to whatever rows are visible.

Worst is ranked the way a reviewer reads a port (``STATUS_RANK``): a real mismatch (type, shape,
dtype, sharding, value) first, then a variable one side only has, then a layout change, a rename,
a match, and last the bookkeeping only one side keeps (counters, RNG state), which is shown muted.

>>> from inspector.diffing import diff_trees
>>> from inspector.records import VariableRecord as V
>>> l = [V(("Block_0", "Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")]
>>> r = [V(("block", "linear", "kernel"), "Param", (4, 2), "float32", 8, 32)]
>>> tree = build_diff_tree(diff_trees(l, r))
>>> [(row.label, row.cls, row.status.value) for row in tree.left]
[('(model)', None, 'renamed'), ('Block_0', 'Block', 'renamed'), ('Dense_0', 'Dense', 'renamed')]
>>> [(tree.left[k.left].label, tree.right[k.right].label, k.kind, k.nested) for k in tree.links]
[('Dense_0', 'linear', 'pair', False), ('(model)', '(model)', 'pair', True), ('Block_0', 'block', 'pair', True)]
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from inspector.align.naming import AUTO_NAME
from inspector.align.structure import EMPTY, Structure
from inspector.diffing import DiffEntry, Status
from inspector.records import Path, VariableRecord, format_path, path_sort_key

Side = Literal["left", "right"]
LinkKind = Literal["pair", "join", "split"]

# Worst first. Mismatches, then one side only, then layout changes, renames, matches, and last
# what only one side keeps by design (shown muted).
STATUS_RANK: tuple[Status, ...] = (
    Status.TYPE, Status.SHAPE, Status.DTYPE, Status.SHARDING, Status.VALUE,
    Status.LEFT_ONLY, Status.RIGHT_ONLY, Status.TRANSFORMED, Status.RENAMED, Status.MATCH,
    Status.COUNTER_ONLY, Status.RNG_ONLY)
_RANK = {status: i for i, status in enumerate(STATUS_RANK)}
ROOT_LABEL = "(model)"
_NEVER = float("inf")
SCREEN_ROWS = 24  # rows that fit the tree's box without scrolling (600 px of 24 px rows)


def worst_status(statuses: Iterable[Status]) -> Status:
    """The status a reviewer must see first.

    >>> worst_status([Status.MATCH, Status.LEFT_ONLY, Status.RENAMED]).value
    'left_only'
    """
    return min(statuses, key=_RANK.__getitem__)


@dataclasses.dataclass(frozen=True, slots=True)
class ModuleRow:
    """One module on one side (the root ``()`` is the model itself)."""

    path: Path
    depth: int
    parent: int  # index of the parent row; -1 for the root
    end: int  # rows[index + 1:end] are the rows below this one
    cls: str | None  # the module's class, when known
    cls_guessed: bool  # the class comes from a Linen automatic name (``Dense_0``)
    variables: int
    parameters: int
    status: Status  # the worst status below
    mismatches: int  # entries below that are mismatches
    info: int  # entries below that carry information lines
    pairs: int  # entries below that have a counterpart on the other side
    partner: int  # the row on the other side holding exactly the same pairs, or -1

    @property
    def label(self) -> str:
        return str(self.path[-1]) if self.path else ROOT_LABEL

    @property
    def name(self) -> str:
        """The module path as people write it; ``""`` for the model itself."""
        return format_path(self.path)

    @property
    def unpaired(self) -> bool:
        """Nothing below has a counterpart: a module only this side has."""
        return self.pairs == 0


@dataclasses.dataclass(frozen=True, slots=True)
class ModuleLink:
    """Pairs between a left module and a right module that hold their variables directly."""

    left: int
    right: int
    status: Status  # the worst status among the pairs
    kind: LinkKind  # join: several left variables concatenated; split: one left variable cut
    pairs: int
    transform: str | None  # how the left arrays become the right ones (the first, as text)
    # Between two modules that hold the same pairs further down (``Block_0`` and ``block``), not
    # directly: drawn lighter, so the eye follows the tree down to where variables live.
    nested: bool = False


@dataclasses.dataclass(frozen=True)
class DiffTree:
    """Both trees (rows in preorder) and the links between their rows (by index)."""

    left: tuple[ModuleRow, ...]
    right: tuple[ModuleRow, ...]
    links: tuple[ModuleLink, ...]

    def rows(self, side: Side) -> tuple[ModuleRow, ...]:
        return self.left if side == "left" else self.right

    def find(self, side: Side, name: str) -> int | None:
        """The row index of a module written as a path (``layers/3/attn``), or None."""
        return self._index(side).get(name.strip("/"))

    def holder(self, side: Side, record: VariableRecord) -> int:
        """The row of the module that directly holds a variable."""
        return self._index(side)[format_path(record.path[:-1])]

    def open_depth(self, budget: int = SCREEN_ROWS) -> int:
        """The deepest level both trees can open to and still fit ``budget`` rows (at least 1).

        >>> from inspector.records import VariableRecord as V
        >>> recs = [V(("a", "b", "c", "w"), "Param", (1,), "float32", 1, 4)]
        >>> build_diff_tree([DiffEntry(Status.MATCH, recs[0], recs[0])]).open_depth(budget=2)
        1
        """
        depth = 1
        deepest = max(row.depth for row in self.left + self.right)
        for d in range(2, deepest + 1):
            if max(sum(1 for row in rows if row.depth <= d) for rows in (self.left, self.right)) > budget:
                break
            depth = d
        return depth

    @functools.cached_property
    def signature(self) -> str:
        """Short fingerprint of the rows, so a click on a stale drawing can be recognised."""
        text = "\n".join(f"{side}:{row.name}:{row.status.value}" for side in ("left", "right")
                         for row in self.rows(side))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """Column arrays (compact for thousands of rows); statuses as indices into ``statuses``."""
        def side(rows: Sequence[ModuleRow]) -> dict[str, list]:
            return {"label": [r.label for r in rows], "depth": [r.depth for r in rows],
                    "parent": [r.parent for r in rows], "end": [r.end for r in rows],
                    "cls": [r.cls or "" for r in rows], "guessed": [int(r.cls_guessed) for r in rows],
                    "variables": [r.variables for r in rows], "parameters": [r.parameters for r in rows],
                    "status": [_RANK[r.status] for r in rows], "mismatches": [r.mismatches for r in rows],
                    "info": [r.info for r in rows], "pairs": [r.pairs for r in rows],
                    "partner": [r.partner for r in rows]}

        return {"statuses": [s.value for s in STATUS_RANK], "signature": self.signature,
                "left": side(self.left), "right": side(self.right),
                "links": {"left": [k.left for k in self.links], "right": [k.right for k in self.links],
                          "status": [_RANK[k.status] for k in self.links], "kind": [k.kind for k in self.links],
                          "pairs": [k.pairs for k in self.links],
                          "transform": [k.transform or "" for k in self.links],
                          "nested": [int(k.nested) for k in self.links]}}

    @functools.cached_property
    def _names(self) -> dict[Side, dict[str, int]]:
        return {side: {row.name: i for i, row in enumerate(self.rows(side))} for side in ("left", "right")}

    def _index(self, side: Side) -> dict[str, int]:
        return self._names[side]


def parts_of(entry: DiffEntry) -> tuple[VariableRecord, ...]:
    """The left variables of an entry: every part of a concat, else the one left variable."""
    return entry.left_parts or ((entry.left,) if entry.left is not None else ())


def entries_below(entries: Iterable[DiffEntry], side: Side, name: str) -> list[DiffEntry]:
    """The entries whose variables on ``side`` live below a module (``""``: every entry).

    >>> from inspector.records import VariableRecord as V
    >>> a, b = (V(p, "Param", (1,), "float32", 1, 4) for p in (("enc", "w"), ("dec", "w")))
    >>> [e.left.name for e in entries_below([DiffEntry(Status.MATCH, a, a), DiffEntry(Status.MATCH, b, b)],
    ...                                     "left", "enc")]
    ['enc/w']
    """
    entries = list(entries)
    prefix = tuple(name.strip("/").split("/")) if name.strip("/") else ()

    def below(record: VariableRecord) -> bool:
        return len(record.path) > len(prefix) and tuple(str(k) for k in record.path[:len(prefix)]) == prefix

    if side == "left":
        return [e for e in entries if any(below(r) for r in parts_of(e))]
    return [e for e in entries if e.right is not None and below(e.right)]


@dataclasses.dataclass(eq=False, slots=True)
class _Module:
    variables: int = 0
    parameters: int = 0
    worst: int = len(STATUS_RANK)  # index into STATUS_RANK; past the end when nothing is below
    mismatches: int = 0
    info: int = 0
    pairs: list[int] = dataclasses.field(default_factory=list)  # entry indices, increasing
    pair_worst: int = len(STATUS_RANK)  # the worst status among those pairs
    rank: float = float("inf")  # the earliest creation rank below; _NEVER when unknown


def build_diff_tree(entries: Sequence[DiffEntry], *, left: Structure = EMPTY,
                    right: Structure = EMPTY) -> DiffTree:
    """Both module trees and the links between them.

    ``left`` / ``right``: the sources' structures, for creation order (so both trees list modules
    in the order the model uses them, not alphabetically) and class names; a Linen module without
    a known class shows the one its automatic name gives (``Dense_0`` is a ``Dense``).
    """
    modules: dict[Side, dict[Path, _Module]] = {"left": defaultdict(_Module), "right": defaultdict(_Module)}
    structures = {"left": left, "right": right}
    seen: dict[Side, set] = {"left": set(), "right": set()}
    chains: dict[Side, dict[Path, list[_Module]]] = {"left": {}, "right": {}}  # a module and its ancestors
    for index, entry in enumerate(entries):
        paired = entry.right is not None and entry.left is not None
        status, mismatch, info = _RANK[entry.status], entry.is_mismatch, bool(entry.info)
        for side, records in (("left", parts_of(entry)), ("right", (entry.right,) if entry.right else ())):
            if not records:
                continue
            side_modules, side_seen, side_chains = modules[side], seen[side], chains[side]
            touched: list[_Module] = []
            for record in records:
                holder = record.path[:-1]
                chain = side_chains.get(holder)
                if chain is None:
                    chain = side_chains[holder] = [side_modules[holder[:d]] for d in range(len(holder) + 1)]
                touched.extend(chain)
                key = (record.collection, record.path)
                if key in side_seen:
                    continue
                side_seen.add(key)
                rank = structures[side].rank(record.collection, record.path)
                for module in chain:
                    module.variables += 1
                    module.parameters += record.size
                    if rank is not None and rank < module.rank:
                        module.rank = rank
            for module in (dict.fromkeys(touched) if len(records) > 1 else touched):
                if status < module.worst:
                    module.worst = status
                module.mismatches += mismatch
                module.info += info
                if paired:
                    module.pairs.append(index)
                    if status < module.pair_worst:
                        module.pair_worst = status
    order = {side: _preorder(modules[side]) for side in ("left", "right")}
    partners = _partners(order, modules)
    left_rows = _rows(order["left"], modules["left"], left, partners["left"])
    right_rows = _rows(order["right"], modules["right"], right, partners["right"])
    links = _links(entries, left_rows, right_rows)
    return DiffTree(left_rows, right_rows, links + _nested_links(links, left_rows, right_rows, modules["left"]))


def _preorder(modules: dict[Path, _Module]) -> list[tuple[Path, int, int]]:
    """``(path, parent index, end)`` of every module, children in creation order."""
    modules.setdefault((), _Module())
    children: dict[Path, list[Path]] = defaultdict(list)
    for path in modules:
        if path:
            children[path[:-1]].append(path)
    out: list[list] = []

    def visit(path: Path, parent: int) -> None:
        index = len(out)
        out.append([path, parent, 0])
        # Creation order where the structure knows it (ranks are distinct), else path order.
        for child in sorted(children[path], key=lambda p: (modules[p].rank, () if modules[p].rank < _NEVER
                                                            else path_sort_key(p))):
            visit(child, index)
        out[index][2] = len(out)

    visit((), -1)
    return [tuple(row) for row in out]


def _rows(order: Sequence[tuple[Path, int, int]], modules: Mapping[Path, _Module], structure: Structure,
          partners: Mapping[int, int]) -> tuple[ModuleRow, ...]:
    rows = []
    for index, (path, parent, end) in enumerate(order):
        module = modules[path]
        cls, guessed = structure.classes.get(path), False
        if cls is None and path and (match := AUTO_NAME.match(str(path[-1]))):
            cls, guessed = match["cls"], True
        rows.append(ModuleRow(path, len(path), parent, end, cls, guessed, module.variables, module.parameters,
                              STATUS_RANK[module.worst] if module.worst < len(STATUS_RANK) else Status.MATCH,
                              module.mismatches, module.info, len(module.pairs), partners.get(index, -1)))
    return tuple(rows)


def _partners(order: Mapping[Side, Sequence[tuple[Path, int, int]]],
              modules: Mapping[Side, Mapping[Path, _Module]]) -> dict[Side, dict[int, int]]:
    """Rows holding exactly the same pairs are partners (expanding one opens the other).

    ``Block_0 ⊃ Dense_0`` and ``block ⊃ linear`` hold the same two pairs: nested rows with equal
    pairs are matched outermost to outermost and innermost to innermost. Sibling rows with equal
    pairs (the parts of a concat) all take the first row of the other side.
    """
    groups: dict[Side, dict[tuple[int, ...], list[int]]] = {"left": {}, "right": {}}
    for side in ("left", "right"):
        side_groups, side_modules = groups[side], modules[side]
        for i, (path, _, _) in enumerate(order[side]):
            pairs = side_modules[path].pairs
            if pairs:
                side_groups.setdefault(tuple(pairs), []).append(i)
    partner: dict[Side, dict[int, int]] = {"left": {}, "right": {}}
    for key, a in groups["left"].items():
        b = groups["right"].get(key)
        if not b:
            continue
        if _is_chain(order["left"], a) and _is_chain(order["right"], b):
            matched = [(a[0], b[0])]
            if len(a) > 1 and len(b) > 1:
                matched += list(zip(a[1:-1], b[1:-1])) + [(a[-1], b[-1])]
            for i, j in matched:
                partner["left"][i], partner["right"][j] = j, i
        else:
            for i in a:
                partner["left"][i] = b[0]
            for j in b:
                partner["right"][j] = a[0]
    return partner


def _is_chain(order: Sequence[tuple[Path, int, int]], indices: Sequence[int]) -> bool:
    """Each row is below the one before (indices are in preorder)."""
    return all(i < j < order[i][2] for i, j in zip(indices, indices[1:]))


def _links(entries: Sequence[DiffEntry], left: Sequence[ModuleRow],
           right: Sequence[ModuleRow]) -> tuple[ModuleLink, ...]:
    left_index = {row.path: i for i, row in enumerate(left)}
    right_index = {row.path: i for i, row in enumerate(right)}
    paired = [e for e in entries if e.left is not None and e.right is not None]
    cut = Counter(e.left.key for e in paired)
    found: dict[tuple[int, int], list] = {}  # [worst rank, kinds, pairs, transform text]
    for entry in paired:
        parts = parts_of(entry)
        kind = "join" if len(parts) > 1 else "split" if cut[entry.left.key] > 1 else "pair"
        target = right_index[entry.right.path[:-1]]
        rank = _RANK[entry.status]
        sources = {left_index[r.path[:-1]] for r in parts} if len(parts) > 1 else (left_index[parts[0].path[:-1]],)
        for source in sources:
            link = found.get((source, target))
            if link is None:
                link = found[(source, target)] = [rank, {kind}, 0, None]
            link[0] = min(link[0], rank)
            link[1].add(kind)
            link[2] += 1
            if link[3] is None and entry.transform is not None:
                link[3] = entry.transform.text
    return tuple(ModuleLink(a, b, STATUS_RANK[rank], "join" if "join" in kinds else "split" if "split" in kinds
                            else "pair", pairs, transform)
                 for (a, b), (rank, kinds, pairs, transform) in sorted(found.items()))


def _nested_links(direct: Sequence[ModuleLink], left: Sequence[ModuleRow], right: Sequence[ModuleRow],
                  modules: Mapping[Path, _Module]) -> tuple[ModuleLink, ...]:
    """Links between partner rows that no pair joins directly (containers such as ``Block_0``)."""
    have = {(k.left, k.right) for k in direct}
    found = {(i, row.partner) for i, row in enumerate(left) if row.partner >= 0}
    found |= {(row.partner, j) for j, row in enumerate(right) if row.partner >= 0}
    return tuple(ModuleLink(i, j, STATUS_RANK[modules[left[i].path].pair_worst], "pair", left[i].pairs, None,
                            nested=True)
                 for i, j in sorted(found - have))


__all__ = ["DiffTree", "ModuleLink", "ModuleRow", "STATUS_RANK", "build_diff_tree", "entries_below",
           "parts_of", "worst_status"]
