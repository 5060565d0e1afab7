"""Render a convert plan: a verdict, then every refusal (refused) or every mapped variable."""

from __future__ import annotations

from typing import Any

from inspector.convert_plan import ConvertPlan
from inspector.records import format_bytes
from inspector.report import format_shape, format_table


def convert_json(source: str, target: str, plan: ConvertPlan, out: str | None,
                 emitted: str | None = None) -> dict[str, Any]:
    return {"source": source, "target": target, **plan.to_json(), "out": out, "emitted": emitted}


def verdict(plan: ConvertPlan) -> str:
    counts = (f"{len(plan.moves)} mapped ({len(plan.transformed)} transformed, {len(plan.casts)} cast), "
              f"{len(plan.rng)} RNG state kept from the target, {len(plan.allowed)} allowed, "
              f"{len(plan.not_converted)} not converted")
    if plan.refused:
        guessed = sum(1 for r in plan.refused if r.status == "ambiguous")
        lost = len(plan.refused) - guessed
        what = ([f"{lost} would be dropped or left at init"] if lost else []) + \
            ([f"{guessed} paired by position only"] if guessed else [])
        return f"REFUSED: {len(plan.refused)} variable(s) ({', '.join(what)}); nothing written — {counts}"
    return f"OK: {counts}; {format_bytes(plan.nbytes)} to write"


def convert_table(source: str, target: str, plan: ConvertPlan, out: str | None, emitted: str | None = None) -> str:
    lines = [f"source: {source}", f"target: {target}", verdict(plan), ""]
    if plan.refused:
        rows = [[r.status, r.left.full_name if r.left else "—", r.right.full_name if r.right else "—", r.reason,
                 r.nearest or ""] for r in plan.refused]
        lines.append(format_table(["status", "linen", "nnx", "why", "nearest"], rows))
    else:
        rows = [[" + ".join(p.full_name for p in m.parts), m.right.name, format_shape(m.right.shape),
                 f"{m.source_dtype} → {m.dtype}" if m.cast else m.dtype,
                 m.transform.text if m.transform is not None else ""] for m in plan.moves]
        lines.append(format_table(["linen", "nnx", "shape", "dtype", "transform"], rows))
    extra = [f"allowed ({a.side}): {a.record.full_name}" for a in plan.allowed]
    extra += [f"not converted: {r.full_name} ({r.type})" for r in plan.not_converted]
    if extra:
        lines += [""] + extra
    if out:
        lines += ["", f"NNX checkpoint written to {out}"]
    if emitted:
        lines += [f"converter written to {emitted}"]
    return "\n".join(lines)
