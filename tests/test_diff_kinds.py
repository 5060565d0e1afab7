"""Variable subclasses keep their class and compare by kind; list indices compare as written."""

from __future__ import annotations

import json

import pytest

from inspector.diffing import Status, diff_trees, summarize
from inspector.records import VariableRecord as V
from inspector.records import totals_by_kind
from loaders import load_source
from loaders.porting import port_sources

MODELS = "tests/models/subclass_ports.py"


def _diff(left: str, right: str):
    a, b = load_source(left), load_source(right)
    return diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure)


@pytest.mark.parametrize("port, label", [("nnx_port", "ArrayParam (a Param)"), ("lora_port", "LoRAParam (a Param)")],
                         ids=["ArrayParam", "LoRAParam"])
def test_param_subclass_port_diffs_clean(port, label):
    entries = _diff(f"{MODELS}:linen", f"{MODELS}:{port}")
    assert summarize(entries)["mismatches"] == 0
    kernel = next(e for e in entries if e.left.full_name == "params/c_fc/kernel")
    assert kernel.status is Status.MATCH and kernel.right.type_label == label
    assert kernel.right.kind == "Param" and kernel.right.to_json()["kind"] == "Param"
    assert kernel.right.to_json()["type"] == label.split()[0]
    # a direct nnx.Variable subclass is its own kind, paired with the Linen collection of its name
    count = next(e for e in entries if e.left.full_name == "counter/count")
    assert count.status is Status.MATCH and count.right.kind == "Counter"


def test_totals_group_subclasses_under_their_kind():
    totals = totals_by_kind(load_source(f"{MODELS}:nnx_port").records)
    assert totals["Param"].count == 6 and "ArrayParam" not in totals


def test_unrelated_kinds_still_mismatch():
    entries = _diff(f"{MODELS}:linen", f"{MODELS}:wrong_kind")
    assert [(e.status, e.left.full_name) for e in entries if e.is_mismatch] == [
        (Status.TYPE, "params/c_proj/bias")]


def test_param_subclass_port_check_runs():
    report, _ = port_sources(load_source(f"{MODELS}:linen"), load_source(f"{MODELS}:nnx_port"))
    assert not report.refused and report.converted == 7


def test_table_shows_the_subclass_and_its_kind(cli):
    code, out, _ = cli("show", f"{MODELS}:nnx_port")
    assert code == 0 and "ArrayParam (a Param)" in out
    code, out, _ = cli("show", f"{MODELS}:nnx_port", "--format", "json")
    kernels = [v for v in json.loads(out)["variables"] if v["path"] == "c_fc/kernel"]
    assert kernels and kernels[0]["type"] == "ArrayParam" and kernels[0]["kind"] == "Param"


def test_str_and_int_list_index_are_the_same_path():
    left = [V(("layers", "0", "kernel"), "Param", (4, 2), "float32", 8, 32)]
    right = [V(("layers", 0, "kernel"), "Param", (4, 2), "float32", 8, 32)]
    (entry,) = diff_trees(left, right)
    assert entry.status is Status.MATCH
