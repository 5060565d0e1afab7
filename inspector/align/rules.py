r"""Alignment rules: a small JSON file a person can read, fix one line of, and reuse.

``{"rename": [["<python regex>", "<replacement>"], ...], "pairs": {"<left path>": "<right path>"},
"transforms": [{"left": ["<left path>", ...], "right": ["<right path>"], "steps": [<transform>, ...]}],
"dtype": {"<left path>": "<dtype the port casts it to>"}}``

A transform rule pairs its left variable(s) (several for a ``concat``) with one right variable
through the steps (``inspector.align.transforms``), before anything else is paired.

Left paths are written without the Linen collection (``Block_0/Dense_0/kernel``); a pair may name a
module (``"Block_0": "block"``), which pairs everything below it. ``pairs`` win over ``rename``;
renames apply in order, each to the result of the previous one. Rules override the automatic
alignment; ``rules_from_entries`` writes the alignment found as rules.

>>> rules = parse_rules('{"rename": [["^Dense_(\\\\d+)", "linear\\\\1"]], "pairs": {"Block_0": "block"}}')
>>> target_path(rules, "Block_0/Dense_0/kernel"), target_path(rules, "Dense_1/bias")
('block/Dense_0/kernel', 'linear1/bias')
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from inspector.align.layouts import Link
from inspector.align.transforms import Transform, TransformError
from inspector.errors import RulesError
from inspector.kinds import same_kind
from inspector.records import VariableRecord

_KEYS = ("rename", "pairs", "transforms", "dtype")


@dataclasses.dataclass(frozen=True)
class TransformRule:
    left: tuple[str, ...]
    right: str
    transform: Transform
    where: str


@dataclasses.dataclass(frozen=True)
class RuleEvidence:
    """Why a pair exists: a rule said so (and, with a ``dtype`` rule, the dtype the port casts to)."""

    rule: str
    dtype: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule} | ({"dtype": self.dtype} if self.dtype else {})


@dataclasses.dataclass(frozen=True)
class Rules:
    rename: tuple[tuple[re.Pattern[str], str], ...] = ()
    pairs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    transforms: tuple[TransformRule, ...] = ()
    dtype: Mapping[str, str] = dataclasses.field(default_factory=dict)


def parse_rules(text: str, *, origin: str = "rules") -> Rules:
    """Parse a rules file's text; ``RulesError`` names the file, the place and the fix."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RulesError(f"{origin}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise RulesError(f"{origin}: nested too deeply to be a rules file; expected "
                         "{\"rename\": [[\"<regex>\", \"<replacement>\"]], \"pairs\": {...}}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{origin}: expected a JSON object with keys 'rename' and 'pairs', "
                         f"got {type(data).__name__}")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise RulesError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}; "
                         "a rules file has only 'rename', 'pairs', 'transforms' and 'dtype'")
    renames = []
    if not isinstance(data.get("rename", []), list):
        raise RulesError(f"{origin}: 'rename' must be a list of [\"<regex>\", \"<replacement>\"], "
                         f"got {type(data['rename']).__name__}")
    for i, item in enumerate(data.get("rename", [])):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise RulesError(f"{origin}: rename[{i}] must be [\"<regex>\", \"<replacement>\"], got {item!r}")
        try:
            renames.append((re.compile(item[0]), item[1]))
        except (re.error, RecursionError, OverflowError) as err:
            raise RulesError(f"{origin}: rename[{i}]: bad regular expression {item[0]!r}: "
                             f"{err or type(err).__name__}") from None
    pairs = data.get("pairs", {})
    if not isinstance(pairs, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in pairs.items()):
        raise RulesError(f"{origin}: 'pairs' must map left paths to right paths, both strings")
    dtypes = data.get("dtype", {})
    if not isinstance(dtypes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in dtypes.items()):
        raise RulesError(f"{origin}: 'dtype' must map left paths to dtype names, e.g. {{\"Dense_0/kernel\": "
                         "\"bfloat16\"}")
    for path, name in dtypes.items():
        _check_dtype(name, f"{origin}: dtype[{path!r}]")
    return Rules(rename=tuple(renames), pairs=dict(pairs), transforms=_transform_rules(data, origin),
                 dtype=dict(dtypes))


def _check_dtype(name: str, where: str) -> None:
    import numpy as np

    try:
        import ml_dtypes  # noqa: F401  (registers bfloat16 and friends with numpy)

        np.dtype(name)
    except TypeError:
        raise RulesError(f"{where}: unknown dtype {name!r}; use a numpy name like 'float32' or 'bfloat16'") from None


def _transform_rules(data: Mapping[str, Any], origin: str) -> tuple[TransformRule, ...]:
    items = data.get("transforms", [])
    if not isinstance(items, list):
        raise RulesError(f"{origin}: 'transforms' must be a list of {{\"left\": [...], \"right\": [...], "
                         "\"steps\": [...]}} entries")
    out = []
    for i, item in enumerate(items):
        where = f"{origin}: transforms[{i}]"
        if not isinstance(item, dict) or set(item) - {"left", "right", "steps", "text"} or not {
                "left", "right", "steps"} <= set(item):
            raise RulesError(f"{where} must be {{\"left\": [paths], \"right\": [path], \"steps\": [transforms]}}, "
                             f"got {item!r}")
        left = [item["left"]] if isinstance(item["left"], str) else item["left"]
        right = [item["right"]] if isinstance(item["right"], str) else item["right"]
        if not (isinstance(left, list) and left and all(isinstance(x, str) for x in left)):
            raise RulesError(f"{where}: 'left' must be a non-empty list of left paths")
        if not (isinstance(right, list) and len(right) == 1 and isinstance(right[0], str)):
            raise RulesError(f"{where}: 'right' must be one right path (a split gives one entry per piece)")
        steps = item["steps"]
        if not isinstance(steps, list) or not steps:
            raise RulesError(f"{where}: 'steps' must be a non-empty list of transforms")
        try:
            transform = Transform.from_json({"op": "chain", "steps": steps}, where)
        except TransformError as err:
            raise RulesError(str(err)) from None
        if (transform.parts is None) != (len(left) > 1):
            raise RulesError(f"{where}: {len(left)} left path(s) need " + (
                "a first step 'concat'" if len(left) > 1 else "no 'concat' (it joins several left variables)"))
        out.append(TransformRule(tuple(left), right[0], transform, where))
    return tuple(out)


def target_path(rules: Rules, left: str) -> str | None:
    """Where the rules send a left path, or None when no rule applies."""
    best = max((k for k in rules.pairs if left == k or left.startswith(k + "/")), key=len, default=None)
    if best is not None:
        return rules.pairs[best] + left[len(best):]
    new = left
    for pattern, replacement in rules.rename:
        try:
            new = pattern.sub(replacement, new)
        except (re.error, IndexError) as err:
            raise RulesError(f"rename {pattern.pattern!r} → {replacement!r} fails on {left!r}: {err}") from None
    return new if new != left else None


def forced_pairs(rules: Rules, left: Sequence[VariableRecord], right: Sequence[VariableRecord]
                 ) -> tuple[list[tuple[VariableRecord, VariableRecord]], list[str]]:
    """Pairs the rules dictate, and a note for each rule that pairs nothing.

    A left path may be written with its Linen collection too (``params/fc2``), as the diff shows it.
    """
    by_name: dict[str, list[VariableRecord]] = {}
    for record in right:
        by_name.setdefault(record.name, []).append(record)
        by_name.setdefault(record.full_name, []).append(record)
    pairs, notes, taken = _transform_links(rules, left, by_name)
    done = {id(p.left) for p in pairs} | {id(x) for p in pairs for x in p.left_parts}
    for record in left:
        if id(record) in done:
            continue
        target = _target_of(rules, record)
        if target is None:
            continue
        candidates = [r for r in by_name.get(target, []) if id(r) not in taken]
        found = next((r for r in candidates if same_kind(record.kind_name, r.kind_name)), None) or next(
            iter(candidates), None)
        if found is None:
            notes.append(f"rule sends {record.full_name!r} to {target!r}, which the right side does not have")
            continue
        taken.add(id(found))
        pairs.append((record, found))
    notes += _unused(rules, left)
    return pairs, notes


def _dtype_of(rules: Rules, record: VariableRecord) -> str | None:
    return rules.dtype.get(record.full_name) or rules.dtype.get(record.name)


def _transform_links(rules: Rules, left: Sequence[VariableRecord], by_name: dict[str, list[VariableRecord]]
                     ) -> tuple[list, list[str], set[int]]:
    lefts: dict[str, VariableRecord] = {}
    for record in left:
        lefts.setdefault(record.name, record)
        lefts.setdefault(record.full_name, record)
    links, notes, taken = [], [], set()
    for rule in rules.transforms:
        parts = [lefts.get(p) for p in rule.left]
        targets = [r for r in by_name.get(rule.right, []) if id(r) not in taken]
        missing = [p for p, r in zip(rule.left, parts) if r is None]
        if missing or not targets:
            notes.append(f"{rule.where} pairs nothing: " + (f"no left variable {missing[0]!r}" if missing
                                                             else f"no right variable {rule.right!r}"))
            continue
        target = targets[0]
        try:
            shape = rule.transform.output_shape([p.shape for p in parts])
        except TransformError as err:
            raise RulesError(f"{rule.where}: {err}") from None
        if shape != target.shape:
            raise RulesError(f"{rule.where}: the steps give {shape} from {', '.join(rule.left)}, but "
                             f"{rule.right!r} is {target.shape}; fix the steps")
        taken.add(id(target))
        cast = _dtype_of(rules, parts[0])
        links.append(Link(parts[0], target, rule.transform, tuple(parts) if len(parts) > 1 else (),
                          evidence=RuleEvidence(rule.where.rpartition(": ")[2], cast)))
    return links, notes, taken


def _target_of(rules: Rules, record: VariableRecord) -> str | None:
    if record.collection:
        best = max((k for k in rules.pairs if record.full_name == k or record.full_name.startswith(k + "/")),
                   key=len, default=None)
        if best is not None:
            return rules.pairs[best] + record.full_name[len(best):]
    return target_path(rules, record.name)


def _unused(rules: Rules, left: Sequence[VariableRecord]) -> list[str]:
    """Rules that apply to no left variable: most often a typo or a path from the other side."""
    names = [n for r in left for n in {r.name, r.full_name}]
    notes = [f"rule pair {key!r} matches no left variable (left paths look like {left[0].name!r})"
             for key in rules.pairs if left and not any(n == key or n.startswith(key + "/") for n in names)]
    notes += [f"rename {pattern.pattern!r} matches no left variable"
              for pattern, _ in rules.rename if not any(pattern.search(r.name) for r in left)]
    return notes


def rules_from_entries(pairs: Sequence[tuple[VariableRecord, VariableRecord]],
                       transformed: Sequence[Any] = ()) -> dict[str, Any]:
    """The alignment found, as rules: module-level pairs where a whole module was renamed, and a
    ``transforms`` entry for every pair found through a layout change (``transformed``: diff entries)."""
    transforms = [{"left": [p.name for p in (e.left_parts or (e.left,))], "right": [e.right.name],
                   "steps": [s.to_json() for s in (e.transform.steps if e.transform.op == "chain" else (e.transform,))]}
                  for e in transformed if e.transform is not None and e.left is not None and e.right is not None]
    moved = {id(e.right) for e in transformed if e.transform is not None}
    pairs = [(a, b) for a, b in pairs if id(b) not in moved]
    mapping: dict[str, str] = {}
    for a, b in pairs:
        if tuple(map(str, a.path)) == tuple(map(str, b.path)):
            continue
        tail = 0
        while tail < min(len(a.path), len(b.path)) and a.path[-1 - tail] == b.path[-1 - tail]:
            tail += 1
        lp, rp = a.path[:len(a.path) - tail], b.path[:len(b.path) - tail]
        if lp:
            mapping["/".join(map(str, lp))] = "/".join(map(str, rp))
        else:
            mapping[a.name] = b.name
    # Drop pairs their parent's pair already implies (``Block_0/Dense_0`` under ``Block_0``).
    kept = {}
    for left, right in sorted(mapping.items()):
        parent_l, _, last_l = left.rpartition("/")
        parent_r, _, last_r = right.rpartition("/")
        if parent_l and mapping.get(parent_l) == parent_r and last_l == last_r:
            continue
        kept[left] = right
    return {"rename": [], "pairs": kept} | ({"transforms": transforms} if transforms else {})
