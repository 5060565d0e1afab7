"""``python -m inspector diff``: exit codes like diff(1), report formats, rules files."""

from __future__ import annotations

import json

import pytest

MODELS = "tests/models/"


def test_clean_port_exits_0_with_json(cli):
    code, out, _ = cli("diff", "sample:block:linen", "sample:block:nnx", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["mismatches"] == 0
    assert data["summary"]["renamed"] == 4 and data["summary"]["rng_only"] == 2
    assert set(data["summary"]) >= {"match", "renamed", "type_mismatch", "shape_mismatch", "dtype_mismatch",
                                    "value_mismatch", "left_only", "right_only", "rng_only", "mismatches"}
    entry = next(e for e in data["entries"] if e["left"] and e["left"]["path"] == "Block_0/Dense_0/kernel")
    assert entry["status"] == "renamed" and entry["right"]["path"] == "block/linear/kernel"


def test_broken_port_exits_1_and_markdown_shows_only_what_is_wrong(cli):
    code, out, _ = cli("diff", f"{MODELS}broken_ports.py:linen", f"{MODELS}broken_ports.py:wrong_dtype",
                       "--format", "markdown")
    assert code == 1
    assert "**2 mismatches**" in out and "dtype float32 ≠ bfloat16" in out
    assert "`params/Dense_2/kernel`" in out and "`params/Dense_0/kernel`" not in out


def test_table_lists_mismatches_first(cli):
    code, out, _ = cli("diff", f"{MODELS}broken_ports.py:linen", f"{MODELS}broken_ports.py:missing_bias")
    rows = [line for line in out.splitlines() if line.startswith(("left_only", "renamed"))]
    assert code == 1 and rows[0].startswith("left_only")


def test_values_and_tolerances(cli):
    code, out, _ = cli("diff", "sample:counter:linen", "sample:counter:nnx", "--values", "--format", "json")
    data = json.loads(out)
    count = next(e for e in data["entries"] if e["left"]["path"] == "count")
    assert count["status"] == "value_mismatch" and count["max_abs"] == 1.0  # Linen's init counted once
    assert code == 1
    code, out, _ = cli("diff", "sample:counter:linen", "sample:counter:nnx", "--values", "--atol", "2",
                       "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["value_mismatch"] == 0


def test_values_refuse_abstract(cli):
    code, _, err = cli("diff", "sample:block:linen", "sample:block:nnx", "--values", "--abstract")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: --values compares arrays")


def test_write_rules_then_reuse(cli, tmp_path):
    rules = tmp_path / "rules.json"
    code, _, _ = cli("diff", "sample:sow:linen", "sample:sow:nnx", "--write-rules", str(rules))
    assert code == 0 and json.loads(rules.read_text())["pairs"]["Dense_0"] == "linear1"
    text = rules.read_text().replace('"Dense_0": "linear1"', '"Dense_0": "linear2"').replace(
        '"Dense_1": "linear2"', '"Dense_1": "linear1"')
    rules.write_text(text)
    code, out, _ = cli("diff", "sample:sow:linen", "sample:sow:nnx", "--rules", str(rules),
                       "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["summary"]["shape_mismatch"] == 4


@pytest.mark.parametrize("argv,message", [
    (["diff", "sample:block:linen", "sample:nope:nnx"], "unknown sample 'nope'"),
    (["diff", "sample:block:linen", "sample:block:nnx", "--rules", "missing.json"], "rules file 'missing.json'"),
    (["diff", "sample:block:linen"], "the following arguments are required: RIGHT"),
], ids=["bad-source", "missing-rules", "missing-argument"])
def test_bad_input_exits_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("error:") and message in err


def test_bad_rules_file_exits_2(cli, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"rename": [["(", "x"]]}')
    code, _, err = cli("diff", "sample:block:linen", "sample:block:nnx", "--rules", str(rules))
    assert code == 2 and "bad regular expression" in err.strip().splitlines()[-1]
