"""Would ``StandardCheckpointer().restore(dir, abstract_state)`` succeed, and would it cast?

Orbax restores into a target by exact path: a variable the target has and the checkpoint lacks,
one the checkpoint has and the target lacks, or one of another shape makes the restore fail
(``Structure mismatch`` or a shape error). A dtype difference does not fail: Orbax silently
converts, which is worth knowing (``casts``). Typed PRNG keys are stored as their ``uint32`` key
data and restore fine. Where the alignment paired a missing variable with one stored under
another name, the reason says so: that is usually a rename the port needs.

>>> from inspector.records import VariableRecord as V
>>> ckpt = [V(("kernel",), None, (2, 3), "float32", 6, 24)]
>>> live = [V(("kernel",), "Param", (2, 3), "bfloat16", 6, 12), V(("bias",), "Param", (3,), "float32", 3, 12)]
>>> check_restore(ckpt, live).verdict
'fails'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from inspector.diffing import DiffEntry, same_key_data
from inspector.records import VariableRecord, format_path
from inspector.report import format_shape

OK, CASTS, FAILS = "ok", "casts", "fails"
_SHOWN = 20


@dataclasses.dataclass(frozen=True)
class RestoreCheck:
    verdict: str
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    shapes: tuple[str, ...] = ()
    casts: tuple[str, ...] = ()

    @property
    def reasons(self) -> list[str]:
        out = [f"missing from the checkpoint: {m}" for m in self.missing]
        out += [f"in the checkpoint but not in the model: {e}" for e in self.extra]
        out += [f"shape differs: {s}" for s in self.shapes]
        out += [f"Orbax would cast silently: {c}" for c in self.casts]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"restore": self.verdict, "restore_reasons": self.reasons}

    def headline(self) -> str:
        return {OK: "restore: ok — StandardCheckpointer().restore(dir, abstract_state) would load every variable",
                CASTS: "restore: casts — it would load, but Orbax would silently convert dtypes",
                FAILS: "restore: fails — StandardCheckpointer().restore(dir, abstract_state) would raise"
                }[self.verdict]

    def shown_reasons(self) -> list[str]:
        """The first reasons, and how many more there are."""
        reasons = self.reasons
        return reasons[:_SHOWN] + ([f"and {len(reasons) - _SHOWN} more"] if len(reasons) > _SHOWN else [])

    def summary(self) -> str:
        """The verdict, then one reason per line."""
        return "\n".join([self.headline()] + [f"  - {r}" for r in self.shown_reasons()])


def check_restore(checkpoint: Sequence[VariableRecord], target: Sequence[VariableRecord],
                  entries: Sequence[DiffEntry] = (), *, checkpoint_is_left: bool = True) -> RestoreCheck:
    """Compare a checkpoint's records with a live target's, path by path, as Orbax would.

    ``entries`` (the diff of the two) only improve the reasons: a target variable the alignment
    paired with a checkpoint variable under another path is named with it.
    """
    stored = {r.key: r for r in checkpoint}
    wanted = {r.key: r for r in target}
    renamed = _renames(entries, checkpoint_is_left)
    missing = [_name(r) + renamed.get(r.key, "") for k, r in wanted.items() if k not in stored]
    extra = [_name(r) for k, r in stored.items() if k not in wanted]
    shapes, casts = [], []
    for key in wanted.keys() & stored.keys():
        live, disk = wanted[key], stored[key]
        if same_key_data(live, disk) or (live.shape == disk.shape and live.dtype == disk.dtype):
            continue
        if live.shape != disk.shape:
            shapes.append(f"{_name(live)} {format_shape(disk.shape)} in the checkpoint, "
                          f"{format_shape(live.shape)} in the model")
        elif live.dtype != disk.dtype:
            casts.append(f"{_name(live)} {disk.dtype} → {live.dtype}")
    verdict = FAILS if missing or extra or shapes else CASTS if casts else OK
    return RestoreCheck(verdict, tuple(sorted(missing)), tuple(sorted(extra)), tuple(sorted(shapes)),
                        tuple(sorted(casts)))


def _renames(entries: Sequence[DiffEntry], checkpoint_is_left: bool) -> dict[tuple[str, Any], str]:
    out = {}
    for e in entries:
        if e.left is None or e.right is None or e.left.key == e.right.key:
            continue
        disk, live = (e.left, e.right) if checkpoint_is_left else (e.right, e.left)
        out[live.key] = f" (the checkpoint has it as {disk.full_name})"
    return out


def _name(record: VariableRecord) -> str:
    return record.full_name or format_path(record.path)
