"""Render a port check: a verdict, the output comparison, and every refusal."""

from __future__ import annotations

from typing import Any

from inspector.port_check import PortReport
from inspector.report import format_shape, format_table


def port_json(linen: str, target: str, report: PortReport, out: str | None) -> dict[str, Any]:
    return {"linen": linen, "nnx": target, **report.to_json(), "out": out}


def verdict(report: PortReport) -> str:
    if report.refused:
        return (f"REFUSED: {len(report.refused)} variable(s) cannot be converted "
                f"({report.converted} could)")
    if report.ok:
        return f"MATCH: {report.converted} variables converted; every output within " \
               f"atol={report.tolerance.atol:g}, rtol={report.tolerance.rtol:g}"
    bad = sum(1 for o in report.outputs if not o.allclose)
    return f"DIFFER: {bad} of {len(report.outputs)} output(s) differ after converting {report.converted} variables"


def port_table(linen: str, target: str, report: PortReport, out: str | None) -> str:
    lines = [f"linen: {linen}", f"nnx:   {target}", verdict(report), ""]
    if report.refused:
        rows = [[r.status, r.left.full_name if r.left else "—", r.right.full_name if r.right else "—", r.reason]
                for r in report.refused]
        lines.append(format_table(["status", "linen", "nnx", "why"], rows))
    else:
        rows = [[o.path or "(output)", format_shape(o.shape), f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                 "yes" if o.allclose else "NO", o.note] for o in report.outputs]
        headers = ["output", "shape", "max_abs", "max_rel", "allclose", "note"]
        if not any(o.note for o in report.outputs):
            headers, rows = headers[:-1], [row[:-1] for row in rows]
        lines.append(format_table(headers, rows, right={2, 3}))
    if report.settled:
        lines += ["", "ambiguous layouts settled by running both models:"] + [f"  {line}" for line in report.settled]
    if out:
        lines += ["", f"converted NNX state written to {out}"]
    return "\n".join(lines)
