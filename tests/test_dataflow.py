"""Dataflow alignment: same-shape layers paired by the forward pass, proven by the port check."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from inspector.align.dataflow import analyze_jaxpr, transpose_between
from loaders import load_source
from loaders.porting import port_sources

PORTS = "tests/models/dataflow_ports.py"

# (linen factory, nnx factory, expected pairs of modules: linen → nnx)
CASES = [
    ("compact_mlp", "backwards_mlp", {"Dense_0": "encoder", "Dense_1": "hidden", "Dense_2": "head"}),
    ("setup_mlp", "third_order_mlp", {"encoder": "in_proj", "hidden": "mid_proj", "head": "out_proj"}),
    ("nested", "nested_port", {"Dense_2": "inner", "Dense_1": "middle", "Dense_0": "outer"}),
    ("residual", "residual_port", {"Dense_0": "branch2", "Dense_1": "branch1", "LayerNorm_0": "norm"}),
    ("attention", "attention_port", {"query": "w3", "key": "w1", "value": "w2"}),
    ("two_dense", "torch_style", {"Dense_1": "fc1", "Dense_0": "fc2"}),  # Dense_0 is the outer call
]
IDS = ["declared-backwards", "setup-vs-call-order", "nested-expression", "residual-branches", "qkv",
       "square-kernel-transposed"]


def module_pairs(entries: list[dict]) -> dict[str, str]:
    return {e["left"]["path"].split("/")[0]: e["right"]["path"].split("/")[0]
            for e in entries if e["left"] and e["right"]}


@pytest.mark.parametrize("linen,port,expected", CASES, ids=IDS)
def test_paired_by_the_forward_pass_and_proven_by_the_port_check(cli, linen, port, expected):
    code, out, err = cli("diff", f"{PORTS}:{linen}", f"{PORTS}:{port}", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["mismatches"] == 0 and "note:" not in err
    assert module_pairs(data["entries"]) == expected
    report, state = port_sources(load_source(f"{PORTS}:{linen}"), load_source(f"{PORTS}:{port}"))
    assert report.ok and state is not None and not report.suspects
    assert report.outputs and all(o.max_abs <= 1e-5 for o in report.outputs)


@pytest.mark.parametrize("linen,port,expected", CASES, ids=IDS)
def test_without_the_trace_these_ports_differ_and_the_report_names_suspects(linen, port, expected):
    report, _ = port_sources(load_source(f"{PORTS}:{linen}"), load_source(f"{PORTS}:{port}"), trace=False)
    assert not report.ok and not report.refused
    assert 0 < len(report.suspects) <= 5
    assert report.to_json()["suspects"][0]["evidence"].get("dataflow") is None  # or a position-only guess


def test_evidence_says_names_dataflow_and_contraction(cli):
    _, out, _ = cli("diff", f"{PORTS}:attention", f"{PORTS}:attention_port", "--format", "json")
    by_left = {e["left"]["path"]: e for e in json.loads(out)["entries"]}
    assert by_left["query/kernel"]["evidence"] == {"names": "disagree", "dataflow": 0, "contraction": [[0], [0]]}
    assert by_left["value/kernel"]["evidence"]["dataflow"] == 2
    assert any("paired by the forward pass" in line for line in by_left["key/kernel"]["info"])
    _, out, _ = cli("diff", f"{PORTS}:compact_mlp", f"{PORTS}:backwards_mlp", "--format", "json")
    bias = next(e for e in json.loads(out)["entries"] if e["left"]["path"] == "Dense_1/bias")
    assert bias["evidence"] == {"names": "none", "dataflow": 3, "contraction": None}


def test_table_says_where_names_and_dataflow_disagree(cli):
    _, out, _ = cli("diff", f"{PORTS}:setup_mlp", f"{PORTS}:third_order_mlp")
    line = next(row for row in out.splitlines() if "params/head/kernel" in row)
    assert "out_proj/kernel" in line and "names differ (head ≠ out_proj): paired by the forward pass" in line


def test_a_square_kernel_used_transposed_is_a_transpose_not_an_ambiguity(cli):
    _, out, _ = cli("diff", f"{PORTS}:two_dense", f"{PORTS}:torch_style", "--format", "json")
    kernels = [e for e in json.loads(out)["entries"] if e["left"]["path"].endswith("kernel")]
    assert [e["status"] for e in kernels] == ["transformed", "transformed"]
    assert all(e["transform"] == {"op": "transpose", "axes": [1, 0], "text": "transpose"} for e in kernels)
    assert all(e["evidence"]["contraction"] == [[0], [1]] for e in kernels)


@pytest.mark.parametrize("port", ["swapped", "transposed"])
def test_the_old_wrong_looking_ports_are_right_once_the_forward_pass_is_read(cli, port):
    code, out, _ = cli("port", "tests/models/port_cases.py:linen", f"tests/models/port_cases.py:{port}",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["match"] and data["outputs"][0]["max_abs"] <= 1e-5


def test_a_model_that_needs_real_data_falls_back_with_one_note(cli):
    code, out, err = cli("diff", f"{PORTS}:compact_mlp", f"{PORTS}:data_dependent", "--format", "json")
    data = json.loads(out)
    assert code in (0, 1) and len(data["notes"]) == 1 and "forward pass not traced" in data["notes"][0]
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "ConcretizationTypeError" in notes[0] and "Traceback" not in err
    code, _, err = cli("diff", f"{PORTS}:compact_mlp", f"{PORTS}:data_dependent", "--no-trace")
    assert "note:" not in err


def test_sources_without_inputs_keep_todays_behaviour(cli):
    # An NNX factory returning only a module is traced on the Linen inputs when they fit ...
    code, out, err = cli("diff", f"{PORTS}:compact_mlp", f"{PORTS}:backwards_mlp", "--format", "json")
    assert code == 0 and "notes" not in json.loads(out) and not err.strip()
    # ... and two sources without inputs are not traced at all, silently.
    code, out, err = cli("diff", "tests/models/port_cases.py:good", f"{PORTS}:backwards_mlp", "--format", "json")
    assert "notes" not in json.loads(out) and "note:" not in err
    assert all("evidence" not in e for e in json.loads(out)["entries"])


def test_abstract_builds_are_traced_too_and_keep_creation_order(cli):
    port = "tests/models/transformer_port.py"
    summaries = []
    for extra in (["--abstract"], ["--abstract", "--no-trace"]):  # concrete: tests/test_diff_tree.py
        _, out, _ = cli("diff", f"{port}:small_linen", f"{port}:small_nnx", "--format", "json", *extra)
        summary = json.loads(out)["summary"]
        summaries.append((summary["left_only"], summary["right_only"]))
    assert summaries == [(1, 2)] * 2  # as concrete: the head/lm_head pair is found, with or without the trace


# -- the jaxpr analysis, on what jnp functions and transforms produce ----------------------------
def first_uses(fn, *shapes):
    args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    names = [("", (f"w{i}",)) for i in range(len(shapes) - 1)] + [None]
    flow = analyze_jaxpr(jax.make_jaxpr(fn)(*args), names)
    return {k[1][0]: (u.index, u.contraction) for k, u in flow.uses.items()}


def test_jit_remat_and_custom_vjp_are_followed():
    @jax.custom_vjp
    def project(x, w):
        return x @ w

    project.defvjp(lambda x, w: (x @ w, (x, w)), lambda res, g: (g @ res[1].T, res[0].T @ g))

    def fn(w0, w1, w2, x):
        h = jax.jit(lambda x: jnp.matmul(x, w1.T))(x)
        h = jax.checkpoint(lambda h: project(h, w0))(h)
        return jnp.einsum("bd,ed->be", h, w2)

    assert first_uses(fn, (4, 4), (4, 4), (4, 4), (2, 4)) == {"w1": (0, (1,)), "w0": (1, (0,)), "w2": (2, (1,))}


def test_scan_orders_stacked_layers_and_keeps_their_axes():
    def fn(stack, head, x):
        x, _ = jax.lax.scan(lambda h, w: (jnp.tanh(h @ w), None), x, stack)
        return x @ head

    assert first_uses(fn, (3, 4, 4), (4, 5), (2, 4)) == {"w0": (0, (1,)), "w1": (1, (0,))}


def test_cond_branches_are_alternatives_at_one_position():
    def fn(a, b, head, x):
        return jax.lax.cond(x.sum() > 0, lambda x: x @ a, lambda x: x @ b.T, x) @ head

    uses = first_uses(fn, (4, 4), (4, 4), (4, 4), (2, 4))
    assert {k: v[1] for k, v in uses.items()} == {"w0": (0,), "w1": (1,), "w2": (0,)}
    assert sorted(uses[k][0] for k in ("w0", "w1")) == [0, 1] and uses["w2"][0] == 2


def test_conv_kernels_report_input_and_spatial_axes():
    conv = nn.Conv(8, (3, 3))
    x = jnp.ones((1, 8, 8, 4))
    params = jax.eval_shape(conv.init, jax.random.key(0), x)
    leaves, treedef = jax.tree.flatten(params)
    jaxpr = jax.make_jaxpr(lambda leaves, x: conv.apply(jax.tree.unflatten(treedef, leaves), x))(leaves, x)
    keys = [("params", tuple(k.key for k in p)[1:]) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    flow = analyze_jaxpr(jaxpr, keys)
    kernel = flow.uses[("params", ("kernel",))]
    assert kernel.contraction == (2, 0, 1) and kernel.roles == ("s0", "s1", "c0", "o")
    pytorch_like = dataclasses_replace_roles(kernel, ("o", "c0", "s0", "s1"))
    assert transpose_between(kernel, pytorch_like) == (3, 2, 0, 1)


def dataclasses_replace_roles(use, roles):
    import dataclasses

    return dataclasses.replace(use, roles=roles)


def test_nnx_variables_of_a_custom_type_are_traced():
    class Scale(nnx.Variable):
        pass

    class Scaled(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(4, 4, rngs=rngs)
            self.scale = Scale(jnp.ones((4,)))

        def __call__(self, x):
            return self.linear(x * self.scale[...])

    from inspector.example import Inputs
    from loaders.trace import trace_nnx

    flow = trace_nnx(Scaled(nnx.Rngs(0)), Inputs((jnp.ones((2, 4)),)))
    assert [k[1] for k, _ in sorted(flow.uses.items(), key=lambda kv: kv[1].index)] == [
        ("scale",), ("linear", "kernel"), ("linear", "bias")]
