"""Checks that need 8 CPU devices, run by ``test_sharding_devices.py`` in a process of their own.

Not collected by the main run (the name does not start with ``test_``): that process keeps one
device. The layout the records report is compared with what jax itself reports
(``array.addressable_shards``), and the layout planned from logical names with the real one.
"""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path

import jax
import orbax.checkpoint as ocp
import pytest
import streamlit as st
from flax import nnx

from inspector.__main__ import main
from inspector.diffing import Status, diff_trees
from inspector.sharding import device_memory, plan_sharding, shard_blocks
from loaders import load_source
from loaders.mesh import device_ids
from sample_models.sharded_linen import MESH

SOURCES = ["sample:sharded:linen", "sample:sharded:nnx"]
STACK = "tests/models/sharded_stack.py"
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True, scope="module")
def _eight_devices():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


@pytest.mark.parametrize("spec", SOURCES)
def test_records_match_addressable_shards(spec):
    src = load_source(spec)
    for record in src.records:
        s, value = record.sharding, src.value(record)
        assert s is not None and not s.planned and s.mesh == MESH.axes, record.name
        shards = value.addressable_shards
        assert len(shards) == 8
        assert {shard.data.shape for shard in shards} == {s.shard_shape}, record.name
        assert {shard.data.nbytes for shard in shards} == {s.device_bytes}, record.name
        copies = collections.Counter(tuple((sl.start or 0) for sl in shard.index) for shard in shards)
        assert set(copies.values()) == {s.replicas}, record.name
        # which device holds which block: the pure computation against jax's own placement
        where = dict(zip(device_ids(value), shard_blocks(s.spec, s.mesh, len(record.shape))))
        for shard in shards:
            starts = tuple(sl.start or 0 for sl in shard.index)
            assert starts == tuple(b * n for b, n in zip(where[shard.device.id], s.shard_shape)), record.name
        # the layout planned from names on one device is the layout jax gives on eight
        planned = plan_sharding(s.names, record.shape, record.nbytes // record.size, MESH)
        assert (planned.spec, planned.shard_shape, planned.device_bytes, planned.replicas) == \
            (s.spec, s.shard_shape, s.device_bytes, s.replicas), record.name


@pytest.mark.parametrize("spec", SOURCES)
def test_device_memory_is_what_each_device_holds(spec):
    src = load_source(spec)
    held = collections.Counter()
    for record in src.records:
        for shard in src.value(record).addressable_shards:
            held[shard.device.id] += shard.data.nbytes
    mem = device_memory(src.records)
    ids = device_ids(src.value(src.records[0]))
    assert not mem.planned and dict(zip(ids, mem.per_device)) == dict(held)


@pytest.mark.parametrize("spec", SOURCES)
def test_abstract_builds_keep_the_real_layout(spec):
    concrete, abstract = load_source(spec), load_source(spec, abstract=True)
    assert [r.sharding for r in abstract.records] == [r.sharding for r in concrete.records]
    assert all(device_ids(abstract.value(r)) == tuple(range(8)) for r in abstract.records)


def test_samples_diff_clean_and_port():
    from loaders.porting import port_sources

    linen, target = load_source(SOURCES[0]), load_source(SOURCES[1])
    entries = diff_trees(linen.records, target.records)
    assert {e.status for e in entries} == {Status.MATCH} and len(entries) == 16
    report, _ = port_sources(linen, target)
    assert report.ok


def test_dropped_transform_metadata_is_flagged_on_a_mesh():
    linen, good = load_source(f"{STACK}:linen"), load_source(f"{STACK}:nnx_good")
    assert all(e.status is Status.MATCH for e in diff_trees(linen.records, good.records))
    kernel = next(r for r in good.records if r.name == "layers/linear/kernel")
    assert kernel.sharding.spec == (None, "data", "model") and not kernel.sharding.planned
    dropped = load_source(f"{STACK}:nnx_dropped")
    entries = diff_trees(linen.records, dropped.records)
    assert {e.status for e in entries} == {Status.SHARDING}
    assert all(any("without transform_metadata" in n for n in e.notes) for e in entries)


def test_checkpoint_keeps_the_layout_it_was_written_with(tmp_path, capsys):
    src = load_source(SOURCES[1])
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save((tmp_path / "ckpt").absolute(), nnx.state(src.model))
        checkpointer.wait_until_finished()
    disk = {r.path: r.sharding for r in load_source(str(tmp_path / "ckpt")).records}
    for record in src.records:
        live = record.sharding
        assert disk[record.path] is not None and disk[record.path].names is None
        assert (disk[record.path].spec, disk[record.path].mesh, disk[record.path].shard_shape) == \
            (live.spec, live.mesh, live.shard_shape), record.name
    assert main(["diff", str(tmp_path / "ckpt"), SOURCES[1], "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["mismatches"] == 0


def test_cli_devices_flag_accepts_what_jax_has(capsys):
    assert main(["--devices", "8", "show", SOURCES[0], "--format", "json"]) == 0
    variables = json.loads(capsys.readouterr().out)["variables"]
    assert all("planned" not in v["sharding"] and v["sharding"]["mesh"] == [["data", 2], ["model", 4]]
               for v in variables)


def test_app_draws_which_device_holds_which_shard():
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.selectbox(key="right_pick").set_value(SOURCES[1]).run()
    at.switch_page("app_pages/sharding.py").run()
    at.selectbox(key="sharding_variable").set_value("mlp_in/bias").run()
    assert not at.exception and not at.error and not at.info
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bars, heatmap = charts
    assert bars["data"][0]["x"] == [f"device {i}" for i in range(8)]
    cells = [t for row in heatmap["data"][0]["text"] for t in row]
    assert len(cells) == 8 and cells[0] == "device 0<br>shard (0,)" and cells[5] == "device 5<br>shard (1,)"
    assert "4 distinct shards, 2 copies each" in heatmap["layout"]["title"]["text"]
    assert math.prod(n for _, n in MESH.axes) == 8
