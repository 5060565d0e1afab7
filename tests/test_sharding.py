"""Sharding on one device: planned layouts from logical names, the diff's sharding status, and
``--devices`` refusing to act once jax has started. Real meshes: ``test_sharding_devices.py``."""

from __future__ import annotations

import json

import orbax.checkpoint as ocp
import pytest
from flax import nnx

from inspector.__main__ import main
from inspector.devices import simulate_devices
from inspector.diffing import Status, diff_trees
from inspector.errors import InspectorError
from inspector.port_check import plan
from inspector.records import Sharding
from inspector.records import VariableRecord as V
from inspector.sharding import (
    MeshPlan,
    apply_plan,
    device_memory,
    layout_on_mesh,
    normalize_spec,
    shard_blocks,
    spec_from_names,
)
from loaders import load_source

MESH = (("data", 2), ("model", 4))
STACK = "tests/models/sharded_stack.py"


@pytest.mark.parametrize("names,rules,spec", [
    (("embed", "mlp"), (("embed", "data"), ("mlp", "model")), ("data", "model")),
    (("embed", "mlp"), (("mlp", "model"), ("embed", "model")), (None, "model")),
    (("batch", "embed"), (("batch", ("data", "model")),), (("data", "model"), None)),
    (("data", None, "model"), (), ("data", None, "model")),
    (("layers", "embed"), (("layers", None), ("embed", "data")), (None, "data")),
    (("vocab",), (("embed", "data"),), (None,)),
], ids=["rules", "first-rule-wins-axis-taken", "two-mesh-axes", "names-are-mesh-axes", "rule-to-none", "unknown"])
def test_spec_from_names(names, rules, spec):
    assert spec_from_names(names, rules, ("data", "model")) == spec


@pytest.mark.parametrize("spec,shape,shard_shape,device_bytes,replicas", [
    (("data", "model"), (64, 256), (32, 64), 8192, 1),
    (("model",), (64, 256), (16, 256), 16384, 2),
    ((), (64,), (64,), 256, 8),
    ((("data", "model"), None), (16, 3), (2, 3), 24, 1),
    ((None, "model"), (4, 6), (4, 2), 32, 2),
    ((), (), (), 4, 8),
], ids=["both-axes", "one-axis", "replicated", "two-axes-one-dim", "uneven", "scalar"])
def test_layout_on_mesh(spec, shape, shard_shape, device_bytes, replicas):
    s = layout_on_mesh(spec, shape, 4, MESH)
    assert (s.shard_shape, s.device_bytes, s.replicas) == (shard_shape, device_bytes, replicas)


def test_shard_blocks_follow_mesh_order():
    assert shard_blocks(("data", "model"), MESH, 2) == tuple((d, m) for d in range(2) for m in range(4))
    assert shard_blocks(((("data", "model")),), MESH, 1) == tuple((i,) for i in range(8))
    assert set(shard_blocks((None, "model"), MESH, 2)) == {(0, m) for m in range(4)}


@pytest.mark.parametrize("a,b", [(("a", None), ("a",)), ((("a",),), ("a",)), ((None,), ())],
                         ids=["trailing-none", "one-tuple", "all-none"])
def test_equal_specs_normalize_equal(a, b):
    assert normalize_spec(a) == normalize_spec(b)


def test_device_memory_counts_uneven_shards_and_unannotated_variables():
    plan = MeshPlan((("model", 4),))
    uneven = V(("w",), "Param", (6,), "float32", 6, 24, sharding=Sharding(names=("model",)))
    plain = V(("b",), "Param", (3,), "float32", 3, 12)
    mem = device_memory(apply_plan([uneven, plain], plan))
    assert mem.per_device == (8, 8, 8, 0) and mem.planned  # blocks of 2: [0:2] [2:4] [4:6] [6:6]
    assert (mem.other_count, mem.other_bytes, mem.totals) == (1, 12, (20, 20, 20, 12))
    assert device_memory([plain]) is None


def test_sample_is_planned_on_one_device():
    src = load_source("sample:sharded:nnx")
    assert all(r.sharding.planned and r.sharding.mesh == MESH for r in src.records)
    kernel = next(r for r in src.records if r.name == "attn/out/kernel")
    assert kernel.sharding.names == ("heads", "kv", "embed") and kernel.sharding.spec == ("model", None, "data")
    assert kernel.sharding.shard_shape == (1, 16, 32) and kernel.sharding.device_bytes == kernel.nbytes // 8
    mem = device_memory(src.records)
    expected = sum(r.sharding.device_bytes for r in src.records)
    assert mem.per_device == (expected,) * 8 and mem.other_count == 0
    abstract = load_source("sample:sharded:nnx", abstract=True)
    assert [r.sharding for r in abstract.records] == [r.sharding for r in src.records]


def test_a_plan_leaves_placed_and_unannotated_records_alone():
    placed = rec("w", names=("a", "b"), spec=("data",))
    records = [placed, rec("b"), rec("n", names=("embed", "mlp"))]
    planned = apply_plan(records, MeshPlan(MESH, (("embed", "data"),)))
    assert planned[:2] == records[:2] and planned[2].sharding.spec == ("data", None) and planned[2].sharding.planned


def rec(path: str, shape=(4, 8), names=None, spec=None) -> V:
    sharding = Sharding(names=names, spec=spec, mesh=MESH if spec is not None else None) \
        if names or spec is not None else None
    return V((path,), "Param", shape, "float32", 32, 128, sharding=sharding)


@pytest.mark.parametrize("left,right,one_sided,status", [
    (rec("w"), rec("w"), True, Status.MATCH),
    (rec("w", names=("a", "b")), rec("w", names=("a", "b")), True, Status.MATCH),
    (rec("w", names=("a", "b")), rec("w", names=("b", "a")), True, Status.SHARDING),
    (rec("w", spec=("data", None)), rec("w", spec=("data",)), True, Status.MATCH),
    (rec("w", spec=("data",)), rec("w", spec=("model",)), True, Status.SHARDING),
    (rec("w", names=("a", "b")), rec("w"), True, Status.SHARDING),
    (rec("w", names=("a", "b"), spec=("data",)), rec("w"), False, Status.MATCH),
    (rec("w", spec=("data",)), rec("w", names=("a", "b"), spec=("data",)), False, Status.MATCH),
    (rec("w", shape=(3, 4, 8), names=("a", "b")), rec("w", shape=(3, 4, 8), names=("a", "b")), True,
     Status.SHARDING),
    (rec("w", names=("a", "b")), rec("w", shape=(8, 4), names=("b", "a")), True, Status.SHAPE),
], ids=["unannotated", "same-names", "names-differ", "spec-trailing-none", "spec-differs", "dropped",
        "checkpoint-no-names", "checkpoint-spec-equal", "rank-short-both", "shape-wins"])
def test_sharding_status(left, right, one_sided, status):
    [entry] = diff_trees([left], [right], sharding_one_sided=one_sided)
    assert entry.status is status
    assert ("sharding" in entry.differences) == bool(entry.notes)


def test_unpaired_rank_short_variable_keeps_its_note():
    [entry] = diff_trees([rec("w", shape=(3, 4, 8), names=("a", "b"))], [])
    assert entry.status is Status.LEFT_ONLY and entry.notes[0].startswith("left: 2 logical names for a rank-3")


def test_linen_and_nnx_samples_diff_clean(cli):
    code, out, _ = cli("diff", "sample:sharded:linen", "sample:sharded:nnx", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["match"] == 16 and data["summary"]["sharding_mismatch"] == 0


def test_stacked_port_with_transform_metadata_is_clean(cli):
    code, out, _ = cli("diff", f"{STACK}:linen", f"{STACK}:nnx_good", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["mismatches"] == 0


@pytest.mark.parametrize("fmt", ["json", "markdown", "table"])
def test_dropped_transform_metadata_is_flagged(cli, fmt):
    code, out, _ = cli("diff", f"{STACK}:linen", f"{STACK}:nnx_dropped", "--format", fmt)
    assert code == 1
    if fmt == "json":
        data = json.loads(out)
        assert data["summary"]["sharding_mismatch"] == 2 and data["summary"]["mismatches"] == 2
        kernel = next(e for e in data["entries"] if e["right"]["path"] == "layers/linear/kernel")
        assert kernel["differences"] == ["sharding"] and kernel["notes"] == [
            "logical names ('layers', 'embed', 'mlp') ≠ ('embed', 'mlp')",
            "PartitionSpec P(None, 'data', 'model') ≠ P('data', 'model')",
            "right: 2 logical names for a rank-3 array: a stacked layer axis without transform_metadata / "
            "metadata_params?"]
    else:
        assert "sharding_mismatch" in out and "without transform_metadata" in out


def test_checkpoint_without_sharding_info_is_not_noise(cli, tmp_path):
    src = load_source("sample:sharded:nnx")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save((tmp_path / "ckpt").absolute(), nnx.state(src.model))
        checkpointer.wait_until_finished()
    code, out, _ = cli("diff", str(tmp_path / "ckpt"), "sample:sharded:nnx", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["mismatches"] == 0


def test_port_moves_weights_despite_a_layout_difference():
    left, right = rec("w", names=("a", "b")), rec("w", names=("b", "a"))
    [entry] = diff_trees([left], [right])
    assert entry.status is Status.SHARDING and plan([entry]) == ([(left, right)], [])


def test_devices_flag_is_refused_once_jax_has_fewer(cli, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")  # restored after the test
    with pytest.raises(InspectorError, match="already started with 1 device"):
        simulate_devices(8)
    code, _, err = cli("--devices", "8", "show", "sample:block:nnx")
    assert code == 2 and "XLA_FLAGS=--xla_force_host_platform_device_count=8" in err.strip().splitlines()[-1]
    assert main(["--devices", "1", "show", "sample:sharded:nnx", "--format", "json"]) == 0
