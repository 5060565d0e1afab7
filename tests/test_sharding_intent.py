"""Sharding compared for what it means: logical names vs mesh axes, and layouts a checkpoint was written with."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from inspector.diffing import Status, diff_trees
from inspector.errors import InspectorError
from inspector.records import Sharding
from inspector.records import VariableRecord as V
from inspector.sharding import parse_axis_rules
from loaders import load_source
from tests.models import lm1b_sharding

LM = "tests/models/lm1b_sharding.py"


def _diff(axis_rules=None):
    a, b = load_source(f"{LM}:linen"), load_source(f"{LM}:nnx_port")
    rules = parse_axis_rules(json.dumps(axis_rules)) if axis_rules is not None else None
    return diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure, axis_rules=rules)


def test_logical_names_vs_mesh_axes_without_rules_is_info_not_a_mismatch():
    entries = _diff()
    assert [e.status for e in entries] == [Status.MATCH] * 5
    assert all(len(e.info) == 1 and "pass axis rules" in e.info[0] for e in entries)


def test_the_ports_own_rules_diff_clean():
    entries = _diff(lm1b_sharding.RULES)
    assert [e.status for e in entries] == [Status.MATCH] * 5 and not any(e.info for e in entries)


def test_wrong_rules_flag_exactly_the_variables_whose_mesh_axes_differ():
    entries = _diff(lm1b_sharding.WRONG_RULES)
    assert sorted(e.left.full_name for e in entries if e.status is Status.SHARDING) == [
        "params/wi/bias", "params/wi/kernel", "params/wo/kernel"]
    bias = next(e for e in entries if e.left.full_name == "params/wi/bias")
    assert bias.notes == ("mesh axes P('model') ≠ P('data') under the axis rules (names ('mlp',), ('data',))",)


def test_one_side_annotated_stays_a_mismatch_even_when_names_share_nothing():
    left = [V(("w",), "Param", (4, 8), "float32", 32, 128, "params", Sharding(names=("embed", "mlp"))),
            V(("v",), "Param", (4, 8), "float32", 32, 128, "params", Sharding(names=("embed", "mlp")))]
    right = [V(("w",), "Param", (4, 8), "float32", 32, 128, sharding=Sharding(names=("model", None))),
             V(("v",), "Param", (4, 8), "float32", 32, 128)]
    statuses = {e.left.name: e.status for e in diff_trees(left, right)}
    assert statuses == {"w": Status.MATCH, "v": Status.SHARDING}


def test_cli_axis_rules(cli, tmp_path):
    code, out, _ = cli("diff", f"{LM}:linen", f"{LM}:nnx_port", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["mismatches"] == 0 and all(e.get("info") for e in data["entries"])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(lm1b_sharding.WRONG_RULES))
    code, out, _ = cli("diff", f"{LM}:linen", f"{LM}:nnx_port", "--axis-rules", str(rules), "--format", "json")
    assert code == 1 and json.loads(out)["summary"]["sharding_mismatch"] == 3
    rules.write_text('[["embed"]]')
    code, _, err = cli("diff", f"{LM}:linen", f"{LM}:nnx_port", "--axis-rules", str(rules))
    assert code == 2 and err.strip().splitlines()[-1].startswith("error:") and "rule 0" in err


@pytest.mark.parametrize("text", ['{"embed": "model"}', '[["embed", 3]]', "[["],
                         ids=["object", "bad-axis", "not-json"])
def test_bad_axis_rules_are_refused(text):
    with pytest.raises(InspectorError, match="axis rules"):
        parse_axis_rules(text)


def _save(path, tree):
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path.absolute(), tree)
        checkpointer.wait_until_finished()


def test_two_one_device_checkpoints_with_different_written_specs_diff_clean(cli, tmp_path):
    mesh = jax.make_mesh((1, 1), ("fsdp", "tensor"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    w = np.arange(32, dtype=np.float32).reshape(4, 8)
    sharded = {"params": {"w": jax.device_put(w, NamedSharding(mesh, P(("fsdp", "tensor"), None))),
                          "mu": jax.device_put(w, NamedSharding(mesh, P("fsdp", "tensor")))}}
    plain = {"params": {"w": jax.device_put(w, NamedSharding(mesh, P())), "mu": jnp.asarray(w)}}
    _save(tmp_path / "a", sharded)
    _save(tmp_path / "b", plain)
    code, out, _ = cli("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["mismatches"] == 0
    w_entry = next(e for e in data["entries"] if e["left"]["path"].endswith("w"))
    assert any("not compared" in line for line in w_entry["info"])


def test_written_layouts_on_equal_multi_device_meshes_compare_by_shard_shape():
    mesh = (("data", 2), ("model", 4))

    def rec(spec, shard):
        return V(("w",), "Param", (8, 8), "float32", 64, 256,
                 sharding=Sharding(spec=spec, mesh=mesh, shard_shape=shard))

    [differ] = diff_trees([rec(("data", None), (4, 8))], [rec((None, "model"), (8, 2))], sharding_one_sided=False)
    assert differ.status is Status.SHARDING and "shards (4, 8) ≠ (8, 2)" in differ.notes[0]
    other_mesh = dataclasses_replace_mesh(rec((None, "model"), (8, 2)), (("model", 8),))
    [info] = diff_trees([rec(("data", None), (4, 8))], [other_mesh], sharding_one_sided=False)
    assert info.status is Status.MATCH and info.info


def dataclasses_replace_mesh(record, mesh):
    import dataclasses

    return dataclasses.replace(record, sharding=dataclasses.replace(record.sharding, mesh=mesh))
