"""Pairing without a forward pass on one side: a weight file or checkpoint against a live model.

Position is evidence only where a side keeps its creation order. A file whose order is just its
names sorted keeps none: same-shape layers paired by position there are said to be ambiguous, and
the converter refuses them instead of writing swapped layers. Names that give a role
(``query`` ↔ ``q_proj``), a file's own unsorted order, and an ``nnx.List``'s content pair them
instead; each verdict below is checked against the outputs of the restored model.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx, serialization

from loaders import load_source
from loaders.weights import file_order
from tests.models import file_ports
from tests.weight_writers import write_safetensors

PORTS = "tests/models/file_ports.py"


def linen_variables(factory: str) -> dict:
    module, args, _ = getattr(file_ports, factory)()
    return module.init(jax.random.key(7), *args)  # as init made it (a tree.map would sort the keys)


def restore_and_run(out_dir: Path, factory: str) -> np.ndarray:
    def make():
        return getattr(file_ports, factory)()[0]

    graphdef, abstract = nnx.split(nnx.eval_shape(make))
    model = nnx.merge(graphdef, ocp.StandardCheckpointer().restore(out_dir, abstract))
    return np.asarray(model(file_ports.X))


def linen_output(linen: str, variables: dict) -> np.ndarray:
    module, args, _ = getattr(file_ports, linen)()
    return np.asarray(module.apply(variables, *args))


def sorted_tree(tree):
    """What an optimizer update (``jax.tree.map``) leaves behind: every dict's keys sorted."""
    return jax.tree.map(lambda x: x, tree)


def module_pairs(entries: list[dict]) -> dict[str, str]:
    return {e["left"]["path"].split("/")[0]: e["right"]["path"].split("/")[0]
            for e in entries if e["left"] and e["right"]}


def test_a_sorted_file_pairs_same_shape_layers_only_as_a_guess_and_convert_refuses(cli, tmp_path):
    variables = linen_variables("linen_stack")
    weights = tmp_path / "stack.msgpack"
    weights.write_bytes(serialization.to_bytes(sorted_tree(variables)))  # embed, head, proj
    code, out, _ = cli("diff", str(weights), f"{PORTS}:nnx_stack", "--format", "json")
    entries = json.loads(out)["entries"]
    guessed = {e["left"]["path"] for e in entries if (e.get("evidence") or {}).get("pairing") == "position only"}
    assert guessed == {"embed/kernel", "embed/bias", "head/kernel", "head/bias", "proj/kernel", "proj/bias"}
    assert all(any(line.startswith("ambiguous pairing") for line in e["info"]) for e in entries)
    code, text, _ = cli("diff", str(weights), f"{PORTS}:nnx_stack")
    assert "6 paired by position only (ambiguous, see info)" in text.splitlines()[2]

    out_dir = tmp_path / "nnx"
    code, out, _ = cli("convert", str(weights), f"{PORTS}:nnx_stack", "--out", str(out_dir), "--format", "json")
    report = json.loads(out)
    assert code == 1 and not out_dir.exists()
    assert {r["status"] for r in report["refused"]} == {"ambiguous"} and len(report["refused"]) == 6
    code, text, _ = cli("convert", str(weights), f"{PORTS}:nnx_stack", "--out", str(out_dir))
    assert "REFUSED: 6 variable(s) (6 paired by position only); nothing written" in text


def test_a_file_in_creation_order_pairs_by_that_order_and_converts_right(cli, tmp_path):
    variables = linen_variables("linen_stack")
    weights = tmp_path / "stack.msgpack"
    weights.write_bytes(serialization.to_bytes(variables))  # as init made it: embed, proj, head
    assert file_order(load_source(str(weights)).obj).order  # not sorted: the file's order counts
    code, out, _ = cli("diff", str(weights), f"{PORTS}:nnx_stack", "--format", "json")
    data = json.loads(out)
    assert code == 0 and module_pairs(data["entries"]) == {"embed": "w_in", "proj": "w_mid", "head": "w_last"}
    info = [line for e in data["entries"] for line in e.get("info", [])]
    assert info and all("only the right side was traced" in line for line in info)

    out_dir = tmp_path / "nnx"
    code, _, err = cli("convert", str(weights), f"{PORTS}:nnx_stack", "--out", str(out_dir))
    assert code == 0, err
    got = restore_and_run(out_dir, "nnx_stack")
    assert float(np.max(np.abs(got - linen_output("linen_stack", variables)))) <= 1e-5


def test_file_order_counts_only_for_formats_that_keep_it(tmp_path):
    tensors = {"b.weight": np.ones((2, 2), np.float32), "a.weight": np.ones((2, 2), np.float32)}
    safetensors = load_source(str(write_safetensors(tmp_path / "m.safetensors", tensors)))
    assert not file_order(safetensors.obj).order  # its writer reorders: no evidence
    np.savez(tmp_path / "m.npz", **{"b/w": np.ones(2), "a/w": np.ones(2)})
    assert file_order(load_source(str(tmp_path / "m.npz")).obj).order
    layers = {f"layers_{i}": {"w": np.ones(2)} for i in (2, 10)}  # jax sorts keys as text: layers_10 first
    (tmp_path / "s.msgpack").write_bytes(serialization.to_bytes({"params": sorted_tree(layers)}))
    assert not file_order(load_source(str(tmp_path / "s.msgpack")).obj).order


def test_role_names_pair_attention_projections_of_a_checkpoint_and_values_agree(cli, tmp_path):
    variables = linen_variables("linen_attention")
    weights = tmp_path / "attn.msgpack"
    weights.write_bytes(serialization.to_bytes(variables))
    out_dir = tmp_path / "nnx"
    code, _, err = cli("convert", str(weights), f"{PORTS}:nnx_attention", "--out", str(out_dir))
    assert code == 0, err
    got = restore_and_run(out_dir, "nnx_attention")
    assert float(np.max(np.abs(got - linen_output("linen_attention", variables)))) <= 1e-5
    # The Linen file against the NNX checkpoint written from it (sorted names, no classes), with values:
    # no forward pass on either side, the role names pair the projections.
    code, out, err = cli("diff", str(weights), str(out_dir), "--values", "--format", "json")
    data = json.loads(out)
    assert module_pairs(data["entries"]) == {"query": "q_proj", "key": "k_proj", "value": "v_proj",
                                             "out": "o_proj", "ln": "norm"}
    assert data["summary"]["mismatches"] == 0


def test_values_of_a_guessed_pair_are_not_compared(cli, tmp_path):
    variables = linen_variables("linen_stack")
    a = tmp_path / "a.msgpack"
    a.write_bytes(serialization.to_bytes(sorted_tree(variables)))
    nnx_state = {"params": {name: variables["params"][linen] for name, linen in
                            (("w_in", "embed"), ("w_mid", "proj"), ("w_last", "head"))}}
    b = tmp_path / "b.msgpack"
    b.write_bytes(serialization.to_bytes(nnx_state))
    code, out, _ = cli("diff", str(a), str(b), "--values", "--format", "json")
    entries = json.loads(out)["entries"]
    assert code == 0 and all("max_abs" not in e for e in entries)
    assert all((e.get("evidence") or {}).get("pairing") == "position only" for e in entries)


def test_pytorch_style_layers_in_an_nnx_list_pair_with_their_transpose(cli):
    code, out, err = cli("diff", f"{PORTS}:linen_mlp", f"{PORTS}:torch_mlp", "--format", "json")
    data = json.loads(out)
    assert code == 0, err
    kernels = {e["left"]["path"]: (e["right"]["path"], e["status"], e["transform"]["op"])
               for e in data["entries"] if e["left"]["path"].endswith("kernel")}
    assert kernels == {f"Dense_{i}/kernel": (f"layers/{i}/weight", "transformed", "transpose") for i in range(3)}
    code, out, err = cli("port", f"{PORTS}:linen_mlp", f"{PORTS}:torch_mlp", "--format", "json")
    assert code == 0, err


@pytest.mark.parametrize("name,expected", [("query", "q"), ("q_proj", "q"), ("wq", "q"), ("to_v", "v"),
                                           ("out", "o"), ("o_proj", "o"), ("gate_proj", "gate"),
                                           ("down_proj", "down"), ("w1", None), ("norm", None), ("qkv", None)])
def test_role_of_a_name(name, expected):
    from inspector.align.naming import role

    assert role(name) == expected


def test_convert_pairs_by_the_forward_pass_like_diff(cli, tmp_path):
    """An NNX port declaring its layers backwards: converted by order of use, not of declaration."""
    from tests.models import dataflow_ports

    out_dir = tmp_path / "nnx"
    code, out, err = cli("convert", "tests/models/dataflow_ports.py:compact_mlp",
                         "tests/models/dataflow_ports.py:backwards_mlp", "--out", str(out_dir), "--format", "json")
    assert code == 0, err
    assert {m["left"]: m["right"] for m in json.loads(out)["mapped"]}["params/Dense_0/kernel"] == "encoder/kernel"
    graphdef, abstract = nnx.split(nnx.eval_shape(dataflow_ports.backwards_mlp))
    model = nnx.merge(graphdef, ocp.StandardCheckpointer().restore(out_dir, abstract))
    module, args, _ = dataflow_ports.compact_mlp()
    variables = module.init(jax.random.key(0), *args)
    expected = np.asarray(module.apply(variables, *args))
    assert float(np.max(np.abs(np.asarray(model(*args)) - expected))) <= 1e-5


def test_sorted_layer_like_names_are_no_order_of_use(cli, tmp_path):
    """``dense1, dense2, dense3`` from an Orbax checkpoint, called 1 → 3 → 2: sorted names say nothing."""
    variables = linen_variables("linen_numbered")
    source = tmp_path / "linen"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(source, variables)
    out_dir = tmp_path / "nnx"
    code, out, _ = cli("convert", str(source), f"{PORTS}:nnx_lettered", "--out", str(out_dir), "--format", "json")
    report = json.loads(out)
    assert code == 1 and not out_dir.exists()
    guessed = {r["left"].split("/")[1] for r in report["refused"] if r["status"] == "ambiguous"}
    assert guessed == {"dense1", "dense2", "dense3"}
    # The way out the refusal names: the port check on the live Linen model writes what it proves.
    code, _, err = cli("port", f"{PORTS}:linen_numbered", f"{PORTS}:nnx_lettered", "--weights", str(source),
                       "--out", str(out_dir))
    assert code == 0, err
    got = restore_and_run(out_dir, "nnx_lettered")
    assert float(np.max(np.abs(got - linen_output("linen_numbered", variables)))) <= 1e-5


def test_a_declaration_order_is_no_order_of_use(cli, tmp_path):
    """An NNX factory without inputs is not traced: its declaration order cannot pair it with a file."""
    from tests.models import dataflow_ports

    module, args, _ = dataflow_ports.compact_mlp()
    weights = tmp_path / "mlp.msgpack"
    weights.write_bytes(serialization.to_bytes(module.init(jax.random.key(0), *args)))
    target = "tests/models/dataflow_ports.py:backwards_mlp"  # head, hidden, encoder; applied the other way
    code, out, _ = cli("convert", str(weights), target, "--out", str(tmp_path / "nnx"), "--format", "json")
    reasons = {r["reason"] for r in json.loads(out)["refused"]}
    assert code == 1 and reasons and all("the right side is in declaration order" in r for r in reasons)


def test_port_out_writes_only_what_it_proved(cli, tmp_path):
    out_dir = tmp_path / "nnx"
    code, _, err = cli("port", "tests/models/port_cases.py:linen", "tests/models/port_cases.py:wrong_activation",
                       "--out", str(out_dir))
    assert code == 1 and not out_dir.exists() and "nothing written" in err


def test_sorted_names_pair_by_content_not_by_a_sequence():
    """Two LayerNorms beside two Dense of unique shapes, from a sorted file: the Dense pair for sure,
    the LayerNorms only as a guess — never as orphans on both sides."""
    from inspector.align import Guess
    from inspector.diffing import diff_trees
    from inspector.records import VariableRecord as V

    def rec(path, shape, collection=None):
        return V(tuple(path.split("/")), "Param", shape, "float32", int(np.prod(shape)), 4 * int(np.prod(shape)),
                 collection)

    left = [rec(p, s, "params") for p, s in (("fc1/kernel", (16, 64)), ("fc2/kernel", (64, 16)),
                                              ("ln1/scale", (16,)), ("ln2/scale", (16,)))]
    right = [rec(p, s) for p, s in (("norm1/scale", (16,)), ("norm2/scale", (16,)),
                                    ("linear1/kernel", (16, 64)), ("linear2/kernel", (64, 16)))]
    entries = {e.left.name: e for e in diff_trees(left, right) if e.left is not None}
    assert all(e.right is not None for e in entries.values())
    assert entries["fc1/kernel"].right.name == "linear1/kernel" and entries["fc1/kernel"].evidence is None
    assert isinstance(entries["ln1/scale"].evidence, Guess) and isinstance(entries["ln2/scale"].evidence, Guess)


def test_no_suspects_when_every_pair_is_named_alike(cli, write_model):
    path = write_model("""
        import jax, jax.numpy as jnp
        import flax.linen as nn
        from flax import nnx
        X = jnp.ones((2, 8))
        class L(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(8, name="second")(nn.relu(nn.Dense(8, name="first")(x)))
        class N(nnx.Module):
            def __init__(self, rngs):
                self.first, self.second = nnx.Linear(8, 8, rngs=rngs), nnx.Linear(8, 8, rngs=rngs)
            def __call__(self, x):
                return self.second(self.first(x))  # the relu left out
        def linen():
            return L(), (X,), {}
        def port():
            return N(nnx.Rngs(0)), (X,), {}
    """)
    code, out, err = cli("port", f"{path}:linen", f"{path}:port", "--format", "json")
    data = json.loads(out)
    assert code == 1 and "suspects" not in data
    assert any("not the pairing" in note for note in data["notes"]) and "not the pairing" in err
