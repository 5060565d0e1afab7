"""Render a port check: a verdict, the output comparison, and every refusal."""

from __future__ import annotations

from typing import Any

from inspector.port_check import PortReport
from inspector.report import format_shape, format_table
from inspector.training import TrainReport


def port_json(linen: str, target: str, report: PortReport, out: str | None,
              trained: TrainReport | None = None) -> dict[str, Any]:
    data = {"linen": linen, "nnx": target, **report.to_json(), "out": out}
    if trained is not None:
        data["train"] = trained.to_json()
    return data


def verdict(report: PortReport) -> str:
    if report.refused:
        return (f"REFUSED: {len(report.refused)} variable(s) cannot be converted "
                f"({report.converted} could)")
    if report.ok:
        return f"MATCH: {report.converted} variables converted; every output within " \
               f"atol={report.tolerance.atol:g}, rtol={report.tolerance.rtol:g}"
    bad = sum(1 for o in report.outputs if not o.allclose)
    return f"DIFFER: {bad} of {len(report.outputs)} output(s) differ after converting {report.converted} variables"


def train_verdict(trained: TrainReport) -> str:
    if trained.ok:
        return (f"TRAINS THE SAME: loss, {len(trained.gradients)} gradient(s), {len(trained.state)} state "
                f"variable(s) and the weights after {trained.steps} SGD step(s) agree")
    differ = trained.differing()
    counts = [f"{n} {label}" for n, label in (
        (sum(1 for d in trained.gradients if not d.allclose), "gradient(s)"),
        (sum(1 for d in trained.state if not d.allclose), "state variable(s)"),
        (sum(1 for d in trained.weights if not d.allclose), f"weight(s) after {trained.steps} step(s)")) if n]
    parts = (["the loss"] if not trained.loss.allclose else []) + counts
    what = ", ".join(f"{section} {d.path}" for section, d in differ[:3]) + (" …" if len(differ) > 3 else "")
    return f"TRAINS DIFFERENTLY: {', '.join(parts)} differ" + (f"; largest: {what}" if what else "")


def train_table(trained: TrainReport) -> str:
    lines = [train_verdict(trained), "",
             f"loss ({trained.loss_kind}): linen {trained.loss.linen:.6g}, nnx {trained.loss.nnx:.6g}, "
             f"max_abs {trained.loss.max_abs:.3g}" + ("" if trained.loss.allclose else "  DIFFERS")]
    for title, diffs in (("gradients", trained.gradients), ("state after the step", trained.state),
                         (f"weights after {trained.steps} SGD step(s), lr={trained.lr:g}", trained.weights)):
        if not diffs:
            continue
        bad = sorted((d for d in diffs if not d.allclose), key=lambda d: -d.max_abs)
        lines.append(f"{title}: {len(diffs) - len(bad)} of {len(diffs)} agree")
        if not bad:
            continue
        rows = [[d.path, d.linen, f"{d.max_abs:.3g}", f"{d.max_rel:.3g}", d.note] for d in bad]
        headers = ["differs (nnx)", "linen", "max_abs", "max_rel", "note"]
        if not any(d.note for d in bad):
            headers, rows = headers[:-1], [row[:-1] for row in rows]
        lines += [format_table(headers, rows, right={2, 3}), ""]
    lines += [f"note: {n}" for n in trained.notes]
    return "\n".join(lines)


def port_table(linen: str, target: str, report: PortReport, out: str | None,
               trained: TrainReport | None = None) -> str:
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
    if report.suspects:
        lines += ["", "suspects (the pairs with the weakest evidence; a swap or transpose hides here first):"]
        lines += [f"  {e.left.full_name} → {e.right.full_name}  ({_evidence_text(e.evidence)})"
                  for e in report.suspects]
    if trained is not None:
        lines += ["", train_table(trained)]
    if out:
        lines += ["", f"converted NNX state written to {out}"]
    return "\n".join(lines)


def _evidence_text(evidence: Any) -> str:
    if evidence is None:
        return "no evidence but the alignment passes"
    order = "no forward-pass order" if evidence.dataflow is None else f"first use #{evidence.dataflow}"
    return f"names {evidence.names}, {order}"
