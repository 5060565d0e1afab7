"""The module trees of a diff: rows, counts, worst status, partners, links, filters, opening depth.

Real ports (the guide's block, a transformer port with planted mistakes, flax's layers) and, for
layout changes the aligner does not make yet, entries built by hand with a stand-in transform.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from inspector.diff_tree import STATUS_RANK, build_diff_tree, entries_below, worst_status
from inspector.diffing import DiffEntry, Status, diff_trees
from loaders import load_source
from tests.handmade import StandInTransform, rec

PORT = "tests/models/transformer_port.py"


def entry(status: Status, left: str | None, right: str | None, **kwargs) -> DiffEntry:
    return DiffEntry(status, rec(left, collection="params") if left else None, rec(right) if right else None,
                     **kwargs)


def diff_of(left_spec: str, right_spec: str):
    a, b = load_source(left_spec), load_source(right_spec)
    entries = diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure)
    return entries, build_diff_tree(entries, left=a.structure, right=b.structure)


def row(tree, side: str, name: str):
    index = tree.find(side, name)
    assert index is not None, f"no {side} row {name!r}"
    return tree.rows(side)[index]


@pytest.fixture(scope="module")
def port():
    return diff_of(f"{PORT}:small_linen", f"{PORT}:small_nnx")


@pytest.fixture(scope="module")
def block():
    return diff_of("sample:block:linen", "sample:block:nnx")


@pytest.mark.parametrize("statuses,worst", [
    ((Status.VALUE, Status.TYPE), Status.TYPE),
    ((Status.SHARDING, Status.VALUE), Status.SHARDING),
    ((Status.LEFT_ONLY, Status.VALUE), Status.VALUE),
    ((Status.TRANSFORMED, Status.RIGHT_ONLY), Status.RIGHT_ONLY),
    ((Status.RENAMED, Status.TRANSFORMED), Status.TRANSFORMED),
    ((Status.MATCH, Status.RENAMED), Status.RENAMED),
    ((Status.RNG_ONLY, Status.MATCH), Status.MATCH),
    ((Status.RNG_ONLY, Status.COUNTER_ONLY), Status.COUNTER_ONLY),
], ids=["type>value", "sharding>value", "value>left-only", "right-only>transformed", "transformed>renamed",
        "renamed>match", "match>rng-only", "counter>rng"])
def test_worst_status_follows_the_reviewers_ranking(statuses, worst):
    assert worst_status(statuses) == worst


def test_every_status_is_ranked():
    assert sorted(STATUS_RANK) == sorted(Status)


def test_block_sample_rows_classes_and_counts(block):
    entries, tree = block
    assert [(r.name, r.cls) for r in tree.left] == [("", None), ("Block_0", "Block"), ("Block_0/Dense_0", "Dense"),
                                                     ("Dense_0", "Dense")]
    assert [r.cls_guessed for r in tree.left[1:]] == [True, True, True]
    assert [(r.name, r.cls) for r in tree.right] == [
        ("", "Model"), ("block", "Block"), ("block/linear", "Linear"), ("block/dropout", "Dropout"),
        ("block/dropout/rngs", None), ("linear", "Linear")]
    root = tree.left[0]
    assert (root.variables, root.parameters, root.end) == (4, 784 * 256 + 256 + 256 * 10 + 10, 4)
    assert row(tree, "left", "Block_0/Dense_0").parameters == 784 * 256 + 256
    dropout = row(tree, "right", "block/dropout")
    assert dropout.status == Status.RNG_ONLY and dropout.unpaired
    assert row(tree, "right", "block").status == Status.RENAMED  # RNG state below does not count as worse


def test_block_sample_links_and_partners(block):
    _, tree = block
    names = {(tree.left[k.left].name, tree.right[k.right].name, k.nested) for k in tree.links}
    assert names == {("Block_0/Dense_0", "block/linear", False), ("Dense_0", "linear", False),
                     ("", "", True), ("Block_0", "block", True)}
    assert tree.right[row(tree, "left", "Block_0").partner].name == "block"
    assert tree.left[row(tree, "right", "block/linear").partner].name == "Block_0/Dense_0"
    assert row(tree, "right", "block/dropout").partner == -1


def test_planted_mistakes_surface_at_every_level(port):
    _, tree = port
    wo = row(tree, "left", "layers_1/mlp/wo")
    assert (wo.status, wo.mismatches) == (Status.SHAPE, 1)
    assert [row(tree, "left", n).status for n in ("layers_1/mlp", "layers_1", "")] == [Status.SHAPE] * 3
    assert row(tree, "left", "layers_1/attention").status == Status.RENAMED
    out = row(tree, "left", "layers_2/attention/out")
    assert out.status == Status.LEFT_ONLY and not out.unpaired  # the kernel still has its counterpart
    adapter = row(tree, "right", "layers/5/adapter")
    assert adapter.status == Status.RIGHT_ONLY and adapter.unpaired and adapter.partner == -1
    assert row(tree, "right", "layers/4/norm2").status == Status.DTYPE
    assert tree.left[0].mismatches == 4 and tree.right[0].mismatches == 5
    assert row(tree, "right", "layers/3/mlp/wo").cls == "Linear"
    assert row(tree, "right", "layers/1/mlp/wo").cls == "TorchLinear"


def test_rows_follow_creation_order_not_the_alphabet(port):
    _, tree = port
    top = [r.label for r in tree.left if r.depth == 1]
    assert top == ["embed"] + [f"layers_{i}" for i in range(6)] + ["final_norm", "head"]
    block = [r.label for r in tree.right if r.depth == 3 and r.path[:2] == ("layers", 0)]
    assert block == ["norm1", "attn", "norm2", "mlp", "dropout"]


def test_port_partners_pair_blocks_across_naming_styles(port):
    _, tree = port
    for i in range(6):
        assert tree.right[row(tree, "left", f"layers_{i}").partner].name == f"layers/{i}"
    assert tree.right[row(tree, "left", "layers_0/pre_mlp_norm").partner].name == "layers/0/norm2"
    assert row(tree, "right", "layers").partner == -1  # no Linen module holds every block


def test_preorder_ends_bound_each_subtree(port):
    _, tree = port
    for rows in (tree.left, tree.right):
        for i, r in enumerate(rows):
            below = rows[i + 1:r.end]
            assert all(b.path[:len(r.path)] == r.path and len(b.path) > len(r.path) for b in below)
            children = [b for b in below if b.parent == i]
            assert r.variables >= sum(c.variables for c in children)
            assert r.parameters >= sum(c.parameters for c in children)
            if r.parent >= 0:
                assert rows[r.parent].path == r.path[:-1]


def test_join_draws_two_left_modules_into_one():
    concat = StandInTransform("concat", "concat along axis 1", lambda a, b: np.concatenate([a, b], 1))
    joined = DiffEntry(Status.TRANSFORMED, rec("mlp/wi_0/kernel", collection="params"), rec("mlp/wi/kernel", (4, 8)),
                       transform=concat, left_parts=(rec("mlp/wi_0/kernel", collection="params"),
                                                     rec("mlp/wi_1/kernel", collection="params")))
    tree = build_diff_tree([joined, entry(Status.RENAMED, "mlp/wo/kernel", "mlp/out/kernel")])
    direct = sorted((tree.left[k.left].name, tree.right[k.right].name, k.kind, k.transform)
                    for k in tree.links if not k.nested)
    assert direct == [("mlp/wi_0", "mlp/wi", "join", "concat along axis 1"),
                      ("mlp/wi_1", "mlp/wi", "join", "concat along axis 1"),
                      ("mlp/wo", "mlp/out", "pair", None)]
    assert row(tree, "left", "mlp/wi_1").status == Status.TRANSFORMED
    assert row(tree, "left", "mlp").status == Status.TRANSFORMED  # worse than the rename beside it
    assert row(tree, "left", "mlp").variables == 3
    wi = tree.find("right", "mlp/wi")
    assert {tree.left[i].partner for i in (tree.find("left", "mlp/wi_0"), tree.find("left", "mlp/wi_1"))} == {wi}


def test_split_draws_one_left_module_into_two():
    gating = rec("mlp/gating_einsum", (2, 4, 8), collection="params")
    halves = [DiffEntry(Status.TRANSFORMED, gating, rec(f"mlp/{name}/kernel", (4, 8)),
                        transform=StandInTransform("split", f"split axis 0, part {i} of 2"))
              for i, name in enumerate(("gate_proj", "up_proj"))]
    tree = build_diff_tree(halves)
    assert sorted((tree.left[k.left].name, tree.right[k.right].name, k.kind) for k in tree.links if not k.nested) == \
        [("mlp", "mlp/gate_proj", "split"), ("mlp", "mlp/up_proj", "split")]
    mlp = row(tree, "left", "mlp")
    assert (mlp.variables, mlp.parameters, mlp.pairs) == (1, 64, 2)  # one array, cut in two


def test_info_and_rng_marks():
    noted = entry(Status.RENAMED, "a/w", "x/w", info=("ambiguous: same shape as a/v",))
    tree = build_diff_tree([noted, entry(Status.RNG_ONLY, None, "x/dropout/rngs/key"),
                            entry(Status.COUNTER_ONLY, "bn/num_batches_tracked", None)])
    assert row(tree, "left", "a").info == 1 and row(tree, "right", "x").info == 1
    assert row(tree, "right", "x/dropout").status == Status.RNG_ONLY
    assert row(tree, "left", "bn").status == Status.COUNTER_ONLY and row(tree, "left", "bn").mismatches == 0


@pytest.mark.parametrize("side,name,expected", [
    ("left", "Block_0", ["params/Block_0/Dense_0/bias", "params/Block_0/Dense_0/kernel"]),
    ("left", "Block_0/Dense_0", ["params/Block_0/Dense_0/bias", "params/Block_0/Dense_0/kernel"]),
    ("right", "block", ["block/dropout/rngs/count", "block/dropout/rngs/key", "block/linear/bias",
                        "block/linear/kernel"]),
    ("right", "linear", ["linear/bias", "linear/kernel"]),
    ("left", "Dense", []),
], ids=["left-module", "left-leaf-module", "right-with-rng", "right-top-level", "name-prefix-is-not-a-module"])
def test_entries_below_a_module(block, side, name, expected):
    entries, _ = block
    found = entries_below(entries, side, name)
    assert sorted((e.left if side == "left" else e.right).full_name for e in found) == expected


def test_entries_below_integer_keys_and_join_parts(port):
    entries, _ = port
    assert len(entries_below(entries, "right", "layers/3")) == 18  # 16 pairs + the dropout's RNG state
    assert len(entries_below(entries, "left", "")) == sum(1 for e in entries if e.left is not None)
    joined = DiffEntry(Status.TRANSFORMED, rec("a/kernel"), rec("c/kernel"), transform=StandInTransform("concat", "c"),
                       left_parts=(rec("a/kernel"), rec("b/kernel")))
    assert entries_below([joined], "left", "b") == [joined]  # the second part lives in b


@pytest.mark.parametrize("layers,budget,depth", [
    (2, 28, 4),
    (4, 12, 2),
    (40, 28, 1),
    (2, 5, 2),
    (2, 3, 1),
], ids=["small-opens-fully", "medium-opens-blocks", "deep-stack-opens-one-level", "tight-budget", "tighter"])
def test_open_depth_fits_the_screen(layers, budget, depth):
    entries = [entry(Status.RENAMED, f"layers_{i}/attention/{p}/kernel", f"layers/{i}/attn/{p}/kernel")
               for i in range(layers) for p in ("query", "key")]
    assert build_diff_tree(entries).open_depth(budget) == depth


def test_find_holder_and_signature(block):
    entries, tree = block
    assert tree.find("left", "/Block_0/") == 1 and tree.find("left", "nope") is None and tree.find("right", "") == 0
    kernel = next(e for e in entries if e.right is not None and e.right.name == "block/linear/kernel")
    assert tree.holder("right", kernel.right) == tree.find("right", "block/linear")
    changed = build_diff_tree([dataclasses.replace(e, status=Status.SHAPE) if e is kernel else e for e in entries])
    assert build_diff_tree(entries).signature == build_diff_tree(list(entries)).signature != changed.signature


def test_json_is_columns_of_equal_length(port):
    _, tree = port
    data = json.loads(json.dumps(tree.to_json()))
    for side in ("left", "right"):
        lengths = {key: len(values) for key, values in data[side].items()}
        assert set(lengths.values()) == {len(tree.rows(side))}, lengths
    assert len(set(map(len, data["links"].values()))) == 1
    assert data["statuses"][data["left"]["status"][0]] == "shape_mismatch"


def test_empty_diff_has_two_root_rows():
    tree = build_diff_tree([])
    assert [r.label for r in tree.left] == ["(model)"] and [r.label for r in tree.right] == ["(model)"]
    assert tree.links == () and tree.open_depth() == 1


@pytest.mark.parametrize("name", ["cnn", "transformer", "lstm", "setup_list", "loop"])
def test_flax_layers_every_module_holding_pairs_has_a_partner(name):
    _, tree = diff_of(f"tests/models/flax_layers.py:{name}_linen", f"tests/models/flax_layers.py:{name}_nnx")
    for side in ("left", "right"):
        for r in tree.rows(side):
            container = r.cls in ("List", "Dict")  # nnx.List of blocks: Linen has no such module
            if r.pairs and r.variables == r.pairs and r.path and not container:
                assert r.partner >= 0, (side, r.name)
    assert all(r.status in (Status.MATCH, Status.RENAMED, Status.RNG_ONLY) for r in tree.left + tree.right)
