"""``python -m inspector filter`` and ``split``: JSON shapes, text output, exit codes, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_filter_json_shape(cli):
    code, out, err = cli("filter", "sample:counter:nnx", "Param & PathContains('batchnorm')",
                         "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["filter"] == "nnx.All(nnx.Param, nnx.PathContains('batchnorm'))"
    assert [m["path"] for m in data["matches"]] == ["batchnorm/bias", "batchnorm/scale"]
    assert data["matches"][0] == {**data["matches"][0], "type": "Param", "shape": [4], "dtype": "float32"}
    assert data["totals"] == {"Param": {"count": 2, "size": 8, "nbytes": 32}}
    assert "note: '|', '&' and '~' are shorthands" in err


def test_filter_linen_source(cli):
    code, out, _ = cli("filter", "sample:counter:linen", "BatchStat", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["filter"] == "nnx.BatchStat"
    assert [(m["collection"], m["path"]) for m in data["matches"]] == [
        ("batch_stats", "batchnorm/mean"), ("batch_stats", "batchnorm/var")]


def test_filter_table(cli):
    code, out, err = cli("filter", "sample:block:nnx", "nnx.RngState")
    assert code == 0 and err == ""
    assert out.startswith("filter  nnx.RngState\n")
    assert "block/dropout/rngs/key" in out and "RngCount" in out and "total" in out


def test_filter_nothing_matches_is_exit_0_with_a_note(cli):
    code, out, err = cli("filter", "sample:block:nnx", "'params'", "--format", "json")
    assert code == 0 and json.loads(out)["matches"] == []
    assert err.startswith("note: 'params' is a tag in NNX") and "did you mean Param?" in err
    code, out, _ = cli("filter", "sample:block:nnx", "'params'")
    assert code == 0 and "no variable matches 'params'" in out


def test_filter_user_type_of_the_model(cli):
    code, out, _ = cli("filter", "sample:counter:nnx", "Counter", "--format", "json")
    assert code == 0 and [m["path"] for m in json.loads(out)["matches"]] == ["count"]


def test_filter_abstract(cli):
    code, out, _ = cli("filter", "sample:scan_mlp:nnx", "Param", "--abstract", "--format", "json")
    assert code == 0 and {m["path"]: m["shape"] for m in json.loads(out)["matches"]}["blocks/linear/kernel"] == [
        5, 64, 64]


@pytest.mark.parametrize("argv,message", [
    (("filter", "sample:block:nnx", "Parm"), "error: Unknown name 'Parm'. Did you mean 'Param'? (column 1)"),
    (("filter", "sample:block:nnx", "__import__('os').system('true')"),
     "error: only filter constructors can be called"),
    (("filter", "sample:block:nnx", "lambda p, v: True"), "error: a lambda is not allowed"),
    (("filter", "sample:block:nnx", "x" * 3000), "error: filter text too long"),
    (("filter", "sample:blok:nnx", "Param"), "error: source 'sample:blok:nnx'"),
    (("split", "sample:block:nnx", "...; Param"), "error: ... matches everything, so it can only be the last"),
    (("split", "sample:block:nnx", "Param; Parm"), "error: Unknown name 'Parm'. Did you mean 'Param'? (column 8)"),
    (("split", "sample:counter:nnx", "Param;;..."), "error: empty filter"),
], ids=["misspelled", "hostile", "lambda", "too-long", "bad-source", "ellipsis-first", "split-misspelled",
        "empty-piece"])
def test_refusals_exit_2(cli, argv, message):
    code, out, err = cli(*argv, "--format", "json")
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in err


def test_split_json_exhaustive(cli):
    code, out, _ = cli("split", "sample:counter:nnx", "Param; BatchStat; ...", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["filters"] == ["nnx.Param", "nnx.BatchStat", "..."]
    assert [g["filter"] for g in data["groups"]] == data["filters"]
    assert [[v["path"] for v in g["variables"]] for g in data["groups"]] == [
        ["batchnorm/bias", "batchnorm/scale", "linear/bias", "linear/kernel"],
        ["batchnorm/mean", "batchnorm/var"], ["count"]]
    assert data["remainder"] == [] and data["exhaustive"] is True and data["merge_roundtrip"] is True
    assert data["python"] == "graphdef, params, batch_stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)"


def test_split_json_not_exhaustive_is_exit_0(cli):
    code, out, _ = cli("split", "sample:counter:nnx", "Param; BatchStat", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["exhaustive"] is False and data["merge_roundtrip"] is None
    assert [v["path"] for v in data["remainder"]] == ["count"]
    assert data["python_fixed"].endswith("nnx.split(model, nnx.Param, nnx.BatchStat, ...)")


def test_split_table_not_exhaustive_says_so_briefly(cli):
    code, out, _ = cli("split", "sample:block:nnx", "Param")
    assert code == 0
    assert "not exhaustive: 2 variables match no filter: block/dropout/rngs/count, block/dropout/rngs/key" in out
    assert "nnx.split would raise ValueError" in out and "add ... as the last filter" in out
    assert "Array(" not in out and len(out) < 4000
    assert "graphdef, params, rest = nnx.split(model, nnx.Param, ...)" in out


def test_split_table_exhaustive(cli):
    code, out, _ = cli("split", "sample:sow:nnx", "Param")
    assert code == 0
    assert "state 1: nnx.Param  (4 variables" in out and "exhaustive: every variable is in one state" in out
    assert "captured outside the model (nnx.capture), not split: hidden/0" in out
    assert "merge: nnx.merge(graphdef, *states) rebuilds a model whose state equals the original" in out
    assert "graphdef, params = nnx.split(model, nnx.Param)" in out


def test_split_linen_source(cli):
    code, out, err = cli("split", "sample:counter:linen", "'params'; Counter; ...", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["merge_roundtrip"] is None and data["exhaustive"] is True
    assert data["groups"][0]["variables"] == [] and [v["path"] for v in data["groups"][1]["variables"]] == ["count"]
    assert "note: 'params' is a tag in NNX" in err


def test_cli_process_refusal_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "inspector", "split", "sample:block:nnx", "Param; nnx.Parm"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: Unknown name 'nnx.Parm'. Did you mean 'nnx.Param'? (column 8)")
