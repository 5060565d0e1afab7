"""Rules carry layout transforms and dtype casts: written by --write-rules, applied by --rules."""

from __future__ import annotations

import json
import re

import pytest

from inspector.align.rules import forced_pairs, parse_rules
from inspector.diffing import Status, diff_trees
from inspector.errors import RulesError
from inspector.records import VariableRecord as V

M = "tests/models/layout_ports.py"


def test_written_rules_carry_the_transforms_and_give_the_same_diff(cli, tmp_path):
    rules = tmp_path / "rules.json"
    code, out, _ = cli("diff", f"{M}:linen_gemma_transposed", f"{M}:nnx_gemma", "--write-rules", str(rules),
                       "--format", "json")
    assert code == 0
    written = json.loads(rules.read_text())
    gate = next(t for t in written["transforms"] if t["right"] == ["mlp/gate_proj/kernel"])
    assert gate["left"] == ["mlp/gating_einsum"] and [s["op"] for s in gate["steps"]] == [
        "split", "reshape", "transpose"]
    code, again, _ = cli("diff", f"{M}:linen_gemma_transposed", f"{M}:nnx_gemma", "--rules", str(rules),
                         "--format", "json")
    assert code == 0
    before = {(e["left"] and e["left"]["path"], e["right"] and e["right"]["path"], e["status"],
               e.get("transform", {}).get("text")) for e in json.loads(out)["entries"]}
    after = {(e["left"] and e["left"]["path"], e["right"] and e["right"]["path"], e["status"],
              e.get("transform", {}).get("text")) for e in json.loads(again)["entries"]}
    assert before == after


def test_a_rule_settles_an_ambiguous_square_weight(cli, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"transforms": [
        {"left": ["fc1/kernel"], "right": ["fc1/weight"], "steps": [{"op": "transpose", "axes": [1, 0]}]}]}))
    code, out, _ = cli("port", f"{M}:linen_square", f"{M}:nnx_square", "--rules", str(rules), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["match"] and "settled" not in data


def test_concat_rule_joins_its_parts(cli, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"transforms": [{
        "left": ["attn/query/kernel", "attn/key/kernel", "attn/value/kernel"], "right": ["attn/qkv/kernel"],
        "steps": [{"op": "concat", "axis": 1}]}]}))
    code, out, _ = cli("diff", f"{M}:linen_fused", f"{M}:nnx_fused", "--rules", str(rules), "--format", "json")
    entry = next(e for e in json.loads(out)["entries"] if e["right"] and e["right"]["path"] == "attn/qkv/kernel")
    assert code == 0 and entry["status"] == "transformed" and entry["evidence"] == {"rule": "transforms[0]"}
    assert entry["left_parts"] == ["params/attn/query/kernel", "params/attn/key/kernel", "params/attn/value/kernel"]


@pytest.mark.parametrize("entry, message", [
    ({"left": ["a"], "right": ["b"], "steps": [{"op": "rotate"}]}, "step 1: unknown op 'rotate'"),
    ({"left": ["a"], "right": ["b"], "steps": [{"op": "transpose", "axes": [0, 0]}]}, "not a permutation"),
    ({"left": ["a"], "right": ["b"], "steps": [{"op": "split", "axis": 0}]}, "missing index, sections"),
    ({"left": ["a", "b"], "right": ["c"], "steps": [{"op": "reshape", "shape": [4]}]}, "need a first step 'concat'"),
    ({"left": ["a"], "steps": []}, " must be"),
], ids=["unknown-op", "bad-axes", "missing-params", "parts-without-concat", "no-right"])
def test_bad_transform_rules_name_the_entry(entry, message):
    with pytest.raises(RulesError, match=re.escape("rules.json: transforms[0]") + ".*" + re.escape(message)):
        parse_rules(json.dumps({"transforms": [entry]}), origin="rules.json")


def test_bad_transform_rule_exits_2(cli, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"transforms": [{"left": ["fc1/kernel"], "right": ["fc1/weight"],
                                                 "steps": [{"op": "flip"}]}]}))
    code, _, err = cli("diff", f"{M}:linen_torch", f"{M}:nnx_torch", "--rules", str(rules))
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error:") and "transforms[0]" in last and "'flip'" in last


def test_dtype_rule_makes_an_intended_cast_no_mismatch():
    left = [V(("Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")]
    right = [V(("linear", "kernel"), "Param", (4, 2), "bfloat16", 8, 16)]
    [plain] = diff_trees(left, right)
    assert plain.status is Status.DTYPE
    rules = parse_rules(json.dumps({"dtype": {"Dense_0/kernel": "bfloat16"}}))
    forced, notes = forced_pairs(rules, left, right)
    [entry] = diff_trees(left, right, forced=forced, casts=rules.dtype)
    assert entry.status is Status.RENAMED and entry.info == ("cast float32 → bfloat16 by rule",) and not notes
    with pytest.raises(RulesError, match="unknown dtype 'bf17'"):
        parse_rules(json.dumps({"dtype": {"Dense_0/kernel": "bf17"}}))
