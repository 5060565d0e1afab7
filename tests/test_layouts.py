"""Layout transforms found by the alignment, and proven by the port check, on ports written like real ones."""

from __future__ import annotations

import json

import pytest

from inspector.align.layouts import link_pair, piece_of, regroups
from inspector.diffing import Status, diff_trees, summarize
from inspector.records import VariableRecord as V
from loaders import load_source
from loaders.porting import port_sources

M = "tests/models/layout_ports.py"


def _diff(left: str, right: str, **kwargs):
    a, b = load_source(f"{M}:{left}"), load_source(f"{M}:{right}")
    return diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure, **kwargs)


def _transforms(entries):
    return {(e.left.name, e.right.name): e.transform.text for e in entries if e.transform is not None}


CASES = [
    ("linen_heads", "nnx_heads", {("attn/query/kernel", "attn/q_proj/kernel"): "reshape (16, 16)",
                                  ("attn/out/kernel", "attn/o_proj/kernel"): "reshape (16, 16)",
                                  ("attn/value/bias", "attn/v_proj/bias"): "reshape (16,)"}),
    ("linen_fused", "nnx_fused", {("attn/query/kernel", "attn/qkv/kernel"): "concat on axis 1",
                                  ("attn/query/bias", "attn/qkv/bias"): "concat on axis 0"}),
    ("linen_gemma", "nnx_gemma", {
        ("mlp/gating_einsum", "mlp/gate_proj/kernel"): "split axis 0 into 2, piece 0 → reshape (16, 24)",
        ("mlp/gating_einsum", "mlp/up_proj/kernel"): "split axis 0 into 2, piece 1 → reshape (16, 24)"}),
    ("linen_gemma_transposed", "nnx_gemma", {
        ("mlp/gating_einsum", "mlp/gate_proj/kernel"): "split axis 0 into 2, piece 0 → reshape (24, 16) → transpose",
        ("mlp/gating_einsum", "mlp/up_proj/kernel"): "split axis 0 into 2, piece 1 → reshape (24, 16) → transpose"}),
    ("linen_torch", "nnx_torch", {("fc1/kernel", "fc1/weight"): "transpose",
                                  ("fc2/kernel", "fc2/weight"): "transpose"}),
]
CASES.append(("linen_qkv", "nnx_split", {("qkv/kernel", "key/kernel"): "split axis 1 into 3, piece 1",
                                         ("qkv/bias", "value/bias"): "split axis 0 into 3, piece 2"}))
IDS = ["flattened-heads", "fused-qkv", "gate-up-depth", "gate-up-transposed-depth", "torch-weight",
       "qkv-split"]


@pytest.mark.parametrize("left, right, expected", CASES, ids=IDS)
def test_layout_is_found_and_the_port_check_proves_it(left, right, expected):
    entries = _diff(left, right)
    assert summarize(entries)["mismatches"] == 0
    found = _transforms(entries)
    assert {k: found.get(k) for k in expected} == expected
    assert all(e.status is Status.TRANSFORMED for e in entries if e.transform is not None)
    report, state = port_sources(load_source(f"{M}:{left}"), load_source(f"{M}:{right}"))
    assert report.ok and state is not None and all(o.max_abs <= 1e-5 for o in report.outputs)


def test_fused_qkv_lists_its_parts_in_order():
    kernel = next(e for e in _diff("linen_fused", "nnx_fused") if e.right.name == "attn/qkv/kernel")
    assert [p.name for p in kernel.left_parts] == ["attn/query/kernel", "attn/key/kernel", "attn/value/kernel"]
    assert kernel.to_json()["left_parts"] == ["params/attn/query/kernel", "params/attn/key/kernel",
                                             "params/attn/value/kernel"]


def test_depth_change_pairs_the_only_weight_of_its_shape():
    down = next(e for e in _diff("linen_gemma", "nnx_gemma") if e.right.name == "mlp/down_proj/kernel")
    assert down.left.name == "mlp/linear" and down.status is Status.RENAMED and down.transform is None


def test_square_weight_is_ambiguous_and_settled_only_by_the_port_check():
    entries = _diff("linen_square", "nnx_square")
    fc1 = next(e for e in entries if e.right.name == "fc1/weight")
    assert fc1.transform is None and fc1.status is Status.RENAMED
    assert fc1.info and fc1.info[0].startswith("ambiguous:")
    report, _ = port_sources(load_source(f"{M}:linen_square"), load_source(f"{M}:nnx_square"), trace=False)
    assert report.ok and report.settled == (
        "params/fc1/kernel → fc1/weight: transpose (of 2 plausible layouts, the only one giving equal outputs)",)
    # With the forward pass traced, the contraction axes prove the transpose: nothing left to settle.
    report, _ = port_sources(load_source(f"{M}:linen_square"), load_source(f"{M}:nnx_square"))
    fc1 = next(e for e in report.entries if e.right.name == "fc1/weight")
    assert report.ok and not report.settled and fc1.status is Status.TRANSFORMED
    assert fc1.transform.text == "transpose" and not any(line.startswith("ambiguous") for line in fc1.info)


def test_values_are_compared_after_the_transform():
    a, b = load_source(f"{M}:linen_torch"), load_source(f"{M}:nnx_torch")
    entries = diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure,
                         values=(a.read, b.read))
    # Different random weights: compared (after the transpose), and they differ.
    weights = [e for e in entries if e.right.name.endswith("weight")]
    assert all(e.values is not None and e.status is Status.VALUE for e in weights)
    assert all(e.transform is not None and e.transform.text == "transpose" for e in weights)


def test_cli_json_and_table_show_transforms(cli):
    code, out, _ = cli("diff", f"{M}:linen_gemma_transposed", f"{M}:nnx_gemma", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["transformed"] == 2
    gate = next(e for e in data["entries"] if e["right"] and e["right"]["path"] == "mlp/gate_proj/kernel")
    assert gate["transform"]["op"] == "chain" and [s["op"] for s in gate["transform"]["steps"]] == [
        "split", "reshape", "transpose"]
    code, out, _ = cli("diff", f"{M}:linen_gemma_transposed", f"{M}:nnx_gemma")
    assert code == 0 and "split axis 0 into 2, piece 0 → reshape (24, 16) → transpose" in out
    code, out, _ = cli("diff", f"{M}:linen_square", f"{M}:nnx_square", "--format", "markdown", "--no-trace")
    assert "ambiguous:" in out
    code, out, _ = cli("diff", f"{M}:linen_square", f"{M}:nnx_square", "--format", "markdown")
    assert "ambiguous:" not in out and "| transformed | `params/fc1/kernel` | `fc1/weight` |" in out


@pytest.mark.parametrize("a, b, text", [
    ((4, 2), (2, 4), None),  # kernel ↔ kernel: no name signal, a transpose is not guessed
    ((8, 2, 4), (8, 8), "reshape (8, 8)"),
    ((6,), (3, 2), "reshape (3, 2)"),
    ((4, 6), (6, 4), None),
], ids=["kernel-transpose-unsignalled", "merge-heads", "split-bias", "not-adjacent"])
def test_single_pair_layouts(a, b, text):
    link = link_pair(V(("m", "kernel"), "Param", a, "float32", 24, 96),
                     V(("m", "kernel"), "Param", b, "float32", 24, 96))
    assert (link.transform.text if link.transform else None) == text


def test_piece_names_and_regrouping():
    assert [piece_of(n) for n in ("query", "k_proj", "wv", "gate_proj", "up", "out")] == ["q", "k", "v", "gate",
                                                                                           "up", None]
    assert regroups((2, 3, 4), (6, 4)) and not regroups((2, 3, 4), (2, 4, 3))


def test_port_refusal_names_the_nearest_candidate():
    from inspector.port_check import plan

    left = [V(("mlp", "linear"), "Param", (32, 16), "float32", 512, 2048, "params"),
            V(("norm", "scale"), "Param", (16,), "float32", 16, 64, "params")]
    right = [V(("ffn", "down", "kernel"), "Param", (32, 16), "float32", 512, 2048),
             V(("ffn", "gate", "kernel"), "Param", (32, 16), "float32", 512, 2048),
             V(("ln", "scale"), "Param", (16,), "float32", 16, 64)]
    entries = diff_trees(left, right)  # two (32, 16) weights one level deeper: no guess
    assert sorted(e.status.value for e in entries) == ["left_only", "renamed", "right_only", "right_only"]
    _, refused = plan(entries)
    reasons = {r.right.name if r.right else r.left.name: r.reason for r in refused}
    assert reasons["ffn/down/kernel"] == (
        "no Linen variable gives it a value; nearest candidate: `params/mlp/linear` (32, 16), the only (32, 16) "
        "Param left unpaired (in `mlp`); pair it with a rule")
    assert "one of 2 unpaired (32, 16) Params" in reasons["mlp/linear"]
