"""Pair the variables of two trees, even when every name differs.

Alignment works one module level at a time, so its cost grows with the number of variables, not
its square. At each level, children are paired in passes, strongest evidence first:

1. the same name (case-insensitive; ``if_`` is ``if``; Linen ``layers_3`` is ``layers/3``), or names
   giving the same role in an attention or MLP block (``query`` ↔ ``q_proj``, ``out`` ↔ ``o_proj``);
2. the same module class, in creation order (Linen ``Dense_0`` → NNX ``linear``, an
   ``nnx.Linear``; ``LayerNorm_0``/``LayerNorm_1`` → ``ln1``/``ln2``);
3. the same name stem (``Block_0`` / ``ScanBlock_0`` → ``block`` / ``blocks``);
4. what is left, only in the same place (between the same already-paired siblings), where the
   subtrees hold the same variables (kinds and shapes) or where the same position holds a
   different shape (reported later as a mismatch, not two orphans).

Linen collections disappear into kinds (``batch_stats/bn/mean`` sits beside ``params/bn/scale``
at ``bn``), and a collection level inside optimizer state (``mu/params/...``) is looked through.
Rules (``inspector.align.rules``) pair variables before any of this runs.

Passes 2 and 4 lean on order, and two orders agree only when they are of one kind: the order of
use (a Linen model creates each submodule's variables at its first call; the forward pass orders
by first use; a Linen auto-name ``Dense_3`` carries it), or the order of declaration (an NNX
model's attributes, when it was not traced). Sorted names (a checkpoint) are no order at all. A
pair these passes make by position among several same-content candidates, between orders of
different kinds or without one, is only a guess. It is still made (the shapes are worth seeing
side by side), and reported through ``guesses``: one line per pair saying why, which the diff
shows as ``info`` and the converter refuses.

>>> from inspector.records import VariableRecord as V
>>> l = [V(("Block_0", "Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")]
>>> r = [V(("block", "linear", "kernel"), "Param", (4, 2), "float32", 8, 32)]
>>> [(a.name, b.name) for a, b in align(l, r)]
[('Block_0/Dense_0/kernel', 'block/linear/kernel')]
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any

from inspector.align.naming import AUTO_NAME, INDEXED, class_key, natural_key, norm, role, stem
from inspector.align.structure import EMPTY, Structure
from inspector.kinds import canonical_kind, kind_of_collection, same_kind
from inspector.records import PathKey, VariableRecord

Pair = tuple[VariableRecord | None, VariableRecord | None]


@dataclasses.dataclass(frozen=True)
class Guess:
    """Why a pair is only a guess: position decided it, and the orders do not compare.

    ``kinds_only``: both sides have an order, one of use and one of declaration (an NNX model not
    traced). They usually agree — people declare layers in the order they call them — so ``diff``
    lets such a pair stand (as it always has) and only ``convert``, which writes it, refuses it.
    """

    reason: str
    kinds_only: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"pairing": "position only", "reason": self.reason}


@dataclasses.dataclass(eq=False)
class _Node:
    """A module (or any inner path level) of one tree."""

    name: PathKey
    rank: float
    cls: str | None = None
    ordered: bool = True  # rank from the model's creation order, not from sorted names
    order_kind: str | None = None  # what the rank means: ``Structure.order_kind``, None when sorted names
    children: dict[PathKey, _Node] = dataclasses.field(default_factory=dict)
    leaves: list[tuple[float, VariableRecord]] = dataclasses.field(default_factory=list)
    _sig: tuple | None = None

    def signature(self) -> tuple:
        """What the subtree holds, regardless of names: its non-RNG kinds, shapes and dtypes."""
        if self._sig is None:
            own = [(canonical_kind(r.kind_name) if r.kind_name else "", r.shape, r.dtype) for _, r in self.leaves
                   if not r.is_rng]
            for child in self.children.values():
                own.extend(child.signature())
            self._sig = tuple(sorted(own))
        return self._sig

    def records(self) -> list[VariableRecord]:
        out = [r for _, r in self.leaves]
        for child in self.children.values():
            out.extend(child.records())
        return out


def align(left: Sequence[VariableRecord], right: Sequence[VariableRecord], *,
          left_structure: Structure = EMPTY, right_structure: Structure = EMPTY,
          forced: Sequence[tuple[VariableRecord, VariableRecord]] = (),
          taken: Sequence[VariableRecord] = (),
          guesses: dict[tuple[int, int], Guess] | None = None) -> list[Pair]:
    """Pair every variable of ``left`` with one of ``right`` or with nothing.

    ``forced`` pairs (from a rules file) are kept as given and taken out before aligning the rest;
    ``taken`` left variables (more parts of a forced concat) are taken out without a pair.
    ``guesses``, when given, receives ``(id(left), id(right)) → Guess`` for every pair decided by
    position alone between orders that do not compare (see the module docstring).
    """
    taken_l = {id(a) for a, _ in forced} | {id(r) for r in taken}
    taken_r = {id(b) for _, b in forced}
    pairs: list[Pair] = list(forced)

    def emit(pair: Pair, guess: Guess | None = None) -> None:
        pairs.append(pair)
        if guess is not None and guesses is not None and pair[0] is not None and pair[1] is not None:
            guesses[(id(pair[0]), id(pair[1]))] = guess

    lroot = _build([r for r in left if id(r) not in taken_l], left_structure)
    rroot = _build([r for r in right if id(r) not in taken_r], right_structure)
    _align_nodes(lroot, rroot, emit)
    return pairs


def _build(records: Sequence[VariableRecord], structure: Structure) -> _Node:
    root = _Node(name="", rank=0.0)
    fallback = len(structure.order) + 1
    # Without a known creation order (checkpoints), order names naturally: layer2 before layer10.
    natural = {id(r): i for i, r in enumerate(sorted(records, key=natural_key))}
    for record in records:
        rank = structure.rank(record.collection, record.path)
        ordered = rank is not None
        rank = float(rank) if ordered else fallback + natural[id(record)]
        node = root
        for depth, key in enumerate(record.path[:-1]):
            child = node.children.get(key)
            if child is None:
                child = _Node(name=key, rank=rank, cls=structure.classes.get(record.path[:depth + 1]),
                              ordered=ordered, order_kind=structure.order_kind if ordered else None)
                node.children[key] = child
            elif rank < child.rank:
                child.rank = rank
            node = child
        node.leaves.append((rank, record))
    return root


def _align_nodes(left: _Node, right: _Node, emit: Callable[..., None], guess: Guess | None = None) -> None:
    if guess is not None:  # everything paired below a guessed module pair is a guess too
        outer = emit

        def emit(pair: Pair, _: Guess | None = None) -> None:
            outer(pair, guess)
    _look_through_collections(left, right)
    _look_through_collections(right, left)
    inner = _wrapped(right, left)
    if inner is not None:  # nnx.RNN holds its cell one level deeper than Linen's
        _emit_rng_siblings(right, inner, emit, side=1)
        return _align_nodes(left, inner, emit)
    inner = _wrapped(left, right)
    if inner is not None:
        _emit_rng_siblings(left, inner, emit, side=0)
        return _align_nodes(inner, right, emit)
    _match_leaves(left, right, emit)
    guessed: dict[tuple[int, int], Guess] = {}
    for a, b in _match_children(_ordered(left), _ordered(right), guessed):
        if a is not None and b is not None:
            _align_nodes(a, b, emit, guessed.get((id(a), id(b))))
        elif a is not None:
            for record in a.records():
                emit((record, None))
        else:
            for record in b.records():
                emit((None, record))


def _wrapped(node: _Node, other: _Node) -> _Node | None:
    """The one child holding all of ``node``'s variables, where ``other`` holds them directly."""
    if any(not r.is_rng for _, r in node.leaves):
        return None
    content = [c for c in node.children.values() if c.signature()]
    if len(content) != 1 or content[0].signature() != other.signature():
        return None
    other_content = [c for c in other.children.values() if c.signature()]
    if len(other_content) == 1 and not any(not r.is_rng for _, r in other.leaves):
        return None  # both sides wrap one module: same depth
    if norm(content[0].name) in {norm(k) for k in other.children}:
        return None
    return content[0]


def _emit_rng_siblings(node: _Node, inner: _Node, emit: Callable[..., None], side: int) -> None:
    """What a wrapper holds besides the wrapped module: its RNG state, unpaired."""
    rest = [r for _, r in node.leaves]
    for child in node.children.values():
        if child is not inner:
            rest.extend(child.records())
    for record in rest:
        emit((record, None) if side == 0 else (None, record))


def _ordered(node: _Node) -> list[_Node]:
    return sorted(node.children.values(), key=lambda n: n.rank)


def _look_through_collections(node: _Node, other: _Node) -> None:
    """``opt_state/0/mu/params/Dense_0`` beside ``opt_state/0/mu/linear``: drop the ``params`` level."""
    if node.leaves or not node.children or not all(
            isinstance(k, str) and kind_of_collection(k) != k for k in node.children):
        return
    other_names = {norm(k) for k in other.children}
    for key in list(node.children):
        if norm(key) in other_names:
            continue
        inner = node.children.pop(key)
        if any(k in node.children for k in inner.children):
            node.children[key] = inner  # merging would collide: keep the level
            continue
        node.children.update(inner.children)
        node.leaves.extend(inner.leaves)


def _match_leaves(left: _Node, right: _Node, emit: Callable[..., None]) -> None:
    """Variables of one module pair: by name and kind, then by name, then one-to-one by order."""
    lrest = sorted(left.leaves, key=lambda x: x[0])
    rrest = sorted(right.leaves, key=lambda x: x[0])
    for same_kind_only in (True, False):
        by_name: dict[str, list[tuple[float, VariableRecord]]] = {}
        for item in rrest:
            by_name.setdefault(norm(item[1].path[-1]), []).append(item)
        unmatched, used = [], set()
        for item in lrest:
            candidates = by_name.get(norm(item[1].path[-1]), [])
            found = next((c for c in candidates if id(c) not in used and (
                not same_kind_only or same_kind(item[1].kind_name, c[1].kind_name))), None)
            if found is None:
                unmatched.append(item)
                continue
            used.add(id(found))
            emit((item[1], found[1]))
        lrest = unmatched
        rrest = [item for item in rrest if id(item) not in used]
    # One unmatched variable of a kind on each side, in the same module: the same place, renamed.
    lk = _by_kind(lrest)
    rk = _by_kind(rrest)
    for kind, litems in lk.items():
        ritems = rk.get(kind, [])
        if len(litems) == len(ritems) == 1:
            emit((litems[0][1], ritems[0][1]))
            lrest.remove(litems[0])
            rrest.remove(ritems[0])
    for _, record in lrest:
        emit((record, None))
    for _, record in rrest:
        emit((None, record))


def _by_kind(items: list[tuple[float, VariableRecord]]) -> dict[str, list[tuple[float, VariableRecord]]]:
    out: dict[str, list] = {}
    for item in items:
        if not item[1].is_rng and item[1].kind_name is not None:
            out.setdefault(canonical_kind(item[1].kind_name), []).append(item)
    return out


def _match_children(left: list[_Node], right: list[_Node],
                    guessed: dict[tuple[int, int], Guess]) -> list[tuple[_Node | None, _Node | None]]:
    pairs: list[tuple[_Node | None, _Node | None]] = []
    left, right = _group_indexed(left, right), _group_indexed(right, left)
    for matcher in (_by_name, _by_role, _by_container, _by_class, _by_stem):
        if not left or not right:
            break
        found, left, right = matcher(left, right, guessed) if matcher is _by_class else matcher(left, right)
        pairs.extend(found)
    if left and right:
        found, left, right = _by_place(pairs, left, right, guessed)
        pairs.extend(found)
    pairs.extend((a, None) for a in left)
    pairs.extend((None, b) for b in right)
    return pairs


def _group_indexed(nodes: list[_Node], other: list[_Node]) -> list[_Node]:
    """Linen ``layers_0, layers_1`` (or ``Block_0, Block_1``) as one node ``layers`` with children 0, 1,
    where the other side has an int-indexed container of that name (an ``nnx.List``)."""
    containers = {stem(n.name): n for n in other
                  if n.children and all(isinstance(k, int) for k in n.children)}
    if not containers:
        return nodes
    groups: dict[str, _Node] = {}
    out: list[_Node] = []
    for node in nodes:
        m = INDEXED.match(str(node.name)) if isinstance(node.name, str) else None
        base = stem(m["base"]) if m else None
        if base is None or base not in containers or stem(node.name) in containers:
            out.append(node)
            continue
        group = groups.get(base)
        if group is None:
            group = groups[base] = _Node(name=containers[base].name, rank=node.rank)
            out.append(group)
        group.children[int(m["i"])] = dataclasses.replace(node, name=int(m["i"]))
        group.rank = min(group.rank, node.rank)
    return out


Split = tuple[list[tuple[_Node, _Node]], list[_Node], list[_Node]]


def _by_container(left: list[_Node], right: list[_Node]) -> Split:
    """Linen ``Dense_0..Dense_2`` made in a loop ↔ an ``nnx.List`` of three ``Linear``, by content."""
    pairs: list[tuple[_Node, _Node]] = []
    for containers, runs, flip in ((right, left, False), (left, right, True)):
        for container in [n for n in containers if _is_int_container(n)]:
            members = [container.children[k] for k in sorted(container.children)]
            group = _find_run(runs, [n.signature() for n in members], _Node.signature)
            if group is None:  # the same arrays in another layout (PyTorch-style ``weight`` (out, in))
                group = _find_run(runs, [_loose(n) for n in members], _loose)
            if group is None:
                continue
            virtual = _Node(name=container.name, rank=group[0].rank)
            for i, node in enumerate(group):
                virtual.children[i] = dataclasses.replace(node, name=i)
            for node in group:
                runs.remove(node)
            containers.remove(container)
            pairs.append((container, virtual) if flip else (virtual, container))
    return pairs, left, right


def _is_int_container(node: _Node) -> bool:
    return bool(node.children) and not node.leaves and all(isinstance(k, int) for k in node.children)


def _find_run(nodes: list[_Node], wanted: list[tuple], signature: Callable[[_Node], tuple]) -> list[_Node] | None:
    """A run of same-class siblings, in creation order, holding exactly ``wanted``."""
    for cls, members in _groups(nodes, _class_key).items():
        if cls is None or len(members) < len(wanted):
            continue
        for start in range(len(members) - len(wanted) + 1):
            run = members[start:start + len(wanted)]
            if [signature(n) for n in run] == wanted:
                return run
    return None


def _loose(node: _Node) -> tuple:
    """A signature blind to layout: kinds, element counts and dtypes (a kernel and its transpose agree)."""
    return tuple(sorted((kind, math.prod(shape), dtype) for kind, shape, dtype in node.signature()))


def _by_name(left: list[_Node], right: list[_Node]) -> Split:
    return _pair_unique(left, right, lambda n: norm(n.name))


def _by_role(left: list[_Node], right: list[_Node]) -> Split:
    """``query`` ↔ ``q_proj``, ``out`` ↔ ``o_proj``: names that give the same role, each unique."""
    lnamed = [n for n in left if role(n.name) is not None]
    rnamed = [n for n in right if role(n.name) is not None]
    if not lnamed or not rnamed:
        return [], left, right
    pairs, _, _ = _pair_unique(lnamed, rnamed, lambda n: role(n.name))
    used = {id(n) for pair in pairs for n in pair}
    return pairs, [n for n in left if id(n) not in used], [n for n in right if id(n) not in used]


def _by_stem(left: list[_Node], right: list[_Node]) -> Split:
    return _pair_unique(left, right, lambda n: stem(n.name))


def _pair_unique(left: list[_Node], right: list[_Node], key: Callable[[_Node], str]) -> Split:
    rkeys: dict[str, list[_Node]] = {}
    for node in right:
        rkeys.setdefault(key(node), []).append(node)
    lkeys: dict[str, int] = {}
    for node in left:
        lkeys[key(node)] = lkeys.get(key(node), 0) + 1
    pairs, lrest, used = [], [], set()
    for node in left:
        k = key(node)
        cands = rkeys.get(k, [])
        if len(cands) == 1 and lkeys[k] == 1:
            pairs.append((node, cands[0]))
            used.add(id(cands[0]))
        else:
            lrest.append(node)
    return pairs, lrest, [n for n in right if id(n) not in used]


def _by_class(left: list[_Node], right: list[_Node], guessed: dict[tuple[int, int], Guess]) -> Split:
    """Modules of the same class, in creation order; unequal counts are aligned by content."""
    lgroups = _groups(left, _class_key)
    rgroups = _groups(right, _class_key)
    pairs: list[tuple[_Node, _Node]] = []
    used: set[int] = set()
    for cls, lnodes in lgroups.items():
        rnodes = rgroups.get(cls)
        if cls is None or not rnodes:
            continue
        found = _pair_same_content(lnodes, rnodes)
        paired = {id(n) for pair in found for n in pair}
        lrest = [n for n in lnodes if id(n) not in paired]
        rrest = [n for n in rnodes if id(n) not in paired]
        found += list(zip(lrest, rrest)) if len(lrest) == len(rrest) else _sequence_pairs(lrest, rrest)
        guessed.update(_guesses(found, lnodes, rnodes))
        pairs.extend(found)
        used.update(id(n) for pair in found for n in pair)
    return pairs, [n for n in left if id(n) not in used], [n for n in right if id(n) not in used]


def _pair_same_content(left: list[_Node], right: list[_Node]) -> list[tuple[_Node, _Node]]:
    """Each left module, in order, with the first unpaired right module holding the same variables."""
    free: dict[tuple, list[_Node]] = {}
    for node in right:
        free.setdefault(node.signature(), []).append(node)
    pairs = []
    for node in left:
        candidates = free.get(node.signature())
        if candidates:
            pairs.append((node, candidates.pop(0)))
    return pairs


def _by_place(anchors: list[tuple[_Node, _Node]], left: list[_Node], right: list[_Node],
              guessed: dict[tuple[int, int], Guess]) -> Split:
    """What is left, paired only within the same place: the same gap between modules already paired
    (by the pair that precedes them on each side), then by content and position inside the gap.

    Without a creation order on a side, position means sorted names: a pair is then a guess
    (noted in ``guessed``) unless content alone makes it (the only one of its kind on each side)."""
    unordered = not all(n.ordered for n in left + right)
    if unordered or not all(n.ordered for pair in anchors for n in pair):
        anchors = []  # sorted names (a checkpoint) say nothing about places: one gap
    lgaps = _gaps(anchors, left, side=0)
    rgaps = _gaps(anchors, right, side=1)
    found: list[tuple[_Node, _Node]] = []
    for gap, lnodes in lgaps.items():
        if gap in rgaps:
            # Sorted names make no sequence to line up: pair by content, and a last one of each by place.
            pairs = _content_pairs(lnodes, rgaps[gap]) if unordered else _sequence_pairs(lnodes, rgaps[gap])
            guessed.update(_guesses(pairs, lnodes, rgaps[gap]))
            found.extend(pairs)
    used = {id(n) for pair in found for n in pair}
    return found, [n for n in left if id(n) not in used], [n for n in right if id(n) not in used]


def _guesses(pairs: list[tuple[_Node, _Node]], left: list[_Node],
             right: list[_Node]) -> dict[tuple[int, int], Guess]:
    """The pairs among ``pairs`` that position alone decided, between orders that do not compare
    (see the module docstring), each with the reason in words."""
    left, right = [n for n in left if n.signature()], [n for n in right if n.signature()]
    if len(left) <= 1 and len(right) <= 1:
        return {}
    lkinds, rkinds = {_order_kind(n) for n in left}, {_order_kind(n) for n in right}
    if len(lkinds) == 1 and lkinds == rkinds and None not in lkinds:
        return {}  # one kind of order on both sides: position is evidence
    kinds_only = None not in lkinds | rkinds
    lcount = collections.Counter(n.signature() for n in left)
    rnames: dict[tuple, list[str]] = {}
    for n in right:
        rnames.setdefault(n.signature(), []).append(str(n.name))
    out = {}
    for a, b in pairs:
        sig = a.signature()
        if sig == b.signature() and lcount[sig] == 1 and len(rnames.get(sig, ())) == 1:
            continue  # the only module holding these variables on either side
        rivals = [name for name in rnames.get(b.signature(), ()) if name != str(b.name)]
        shown = " or ".join(rivals[:3]) + (f" (or {len(rivals) - 3} more)" if len(rivals) > 3 else "")
        also = f"; {a.name} could as well be {shown}" if rivals else ""
        why = "; ".join(_ORDER_WORDS[k].format(side=side) for side, k in (("left", _order_kind(a)),
                                                                         ("right", _order_kind(b))) if k != "use")
        out[(id(a), id(b))] = Guess(
            f"ambiguous pairing: {a.name} ↔ {b.name} by position only ({why}){also}. Prove it with "
            "`port LINEN NNX --weights SOURCE` (`--out DIR` writes the checkpoint it proves), or pin it with "
            "rules (`diff LINEN NNX --write-rules FILE`)", kinds_only)
    return out


_ORDER_WORDS = {None: "the {side} side keeps no creation order",
                "declaration": "the {side} side is in declaration order: no forward pass — give its factory "
                               "example inputs"}


def _order_kind(node: _Node) -> str | None:
    """What the node's rank means. A Linen auto-name (``Dense_3``) carries its order of use, and so
    does a list index (``layers/3``: a list of layers is applied in its order)."""
    if isinstance(node.name, int) or (isinstance(node.name, str) and AUTO_NAME.match(node.name)):
        return "use"
    return node.order_kind


def _gaps(anchors: list[tuple[_Node, _Node]], rest: list[_Node], side: int) -> dict[int, list[_Node]]:
    """Group unpaired nodes by the anchor pair just before them in creation order (-1: none)."""
    marks = sorted((pair[side].rank, i) for i, pair in enumerate(anchors))
    ranks = [rank for rank, _ in marks]
    gaps: dict[int, list[_Node]] = {}
    for node in sorted(rest, key=lambda n: n.rank):
        at = bisect.bisect_left(ranks, node.rank) - 1
        gaps.setdefault(marks[at][1] if at >= 0 else -1, []).append(node)
    return gaps


def _content_pairs(left: list[_Node], right: list[_Node]) -> list[tuple[_Node, _Node]]:
    """Same content first (in rank order); then, if one module is left on each side, the two."""
    left, right = [n for n in left if n.signature()], [n for n in right if n.signature()]
    pairs = _pair_same_content(left, right)
    paired = {id(n) for pair in pairs for n in pair}
    lrest = [n for n in left if id(n) not in paired]
    rrest = [n for n in right if id(n) not in paired]
    return pairs + ([(lrest[0], rrest[0])] if len(lrest) == len(rrest) == 1 else [])


def _sequence_pairs(left: list[_Node], right: list[_Node]) -> list[tuple[_Node, _Node]]:
    """Pair runs with equal content; a run replaced by one of equal length pairs position by position."""
    # A module holding only RNG state (an nnx.Dropout) has nothing Linen could hold: leave it out,
    # so it does not push the modules after it out of place.
    left, right = [n for n in left if n.signature()], [n for n in right if n.signature()]
    lsigs, rsigs = [n.signature() for n in left], [n.signature() for n in right]
    if lsigs == rsigs:  # the common case, and the cheap one
        return list(zip(left, right))
    matcher = difflib.SequenceMatcher(None, lsigs, rsigs, autojunk=False)
    pairs = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            pairs.extend(zip(left[i1:i2], right[j1:j2]))
    return pairs


def _groups(nodes: list[_Node], key: Callable[[_Node], str | None]) -> dict[str | None, list[_Node]]:
    out: dict[str | None, list[_Node]] = {}
    for node in nodes:
        out.setdefault(key(node), []).append(node)
    return out


def _class_key(node: _Node) -> str | None:
    return class_key(node.name, node.cls)
