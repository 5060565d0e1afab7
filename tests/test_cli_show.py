"""``python -m inspector show``: output shapes, and every kind of bad input as exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_show_json_shape(cli):
    code, out, _ = cli("show", "sample:block:nnx", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["source"] == "sample:block:nnx"
    kernel = next(v for v in data["variables"] if v["path"] == "block/linear/kernel")
    assert kernel == {**kernel, "type": "Param", "collection": None, "shape": [784, 256],
                      "dtype": "float32", "size": 200704, "nbytes": 802816}
    assert data["totals"]["Param"] == {"count": 4, "size": 203530, "nbytes": 814120}
    assert set(data["totals"]) == {"Param", "RngKey", "RngCount"}


def test_show_table_has_rows_and_totals(cli):
    code, out, _ = cli("show", "sample:counter:linen")
    assert code == 0
    assert "batch_stats  batchnorm/mean" in out and "BatchStat" in out
    assert "total" in out and "counter" in out


def test_show_abstract(cli):
    code, out, _ = cli("show", "sample:scan_mlp:nnx", "--abstract", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert {v["path"]: v["shape"] for v in data["variables"]}["blocks/linear/kernel"] == [5, 64, 64]


@pytest.mark.parametrize("spec,message", [
    ("sample:blok:nnx", "unknown sample 'blok'; did you mean 'block'?"),
    ("sample:block:torch", "unknown form 'torch'"),
    ("sample:block", "a sample is 'sample:NAME:linen'"),
    ("missing/model.py:make", "file 'missing/model.py' not found"),
    ("no_such_package.models:make", "no module named 'no_such_package'"),
    ("does-not-exist", "does not exist"),
    ("", "empty source"),
], ids=["unknown-sample", "unknown-form", "short-sample", "missing-file", "missing-module",
        "missing-dir", "empty"])
def test_bad_specs_exit_2(cli, spec, message):
    code, out, err = cli("show", spec)
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last


BAD_FACTORIES = {
    "missing-factory": ("def make_model():\n    return 1\n", "make", "has no factory 'make'"),
    "raises": ("import jax\n\ndef make_model():\n    x = 1\n    raise ValueError('width must be positive')\n",
               "make_model", "model.py:5: ValueError: width must be positive"),
    "wrong-type": ("def make_model():\n    return 42\n", "make_model", "returned int"),
    "takes-args": ("def make_model(width):\n    return width\n", "make_model", "takes arguments (width)"),
    "syntax": ("def make_model(:\n    pass\n", "make_model", "model.py:1: SyntaxError"),
    "import-error": ("import not_a_real_dependency\n", "make_model",
                     "model.py:1: ModuleNotFoundError: No module named 'not_a_real_dependency'"),
    "not-callable": ("make_model = 3\n", "make_model", "is an int, not a function"),
    "bad-tuple": ("def make_model():\n    return (1, 2)\n", "make_model", "returned a tuple of (int, int)"),
}


@pytest.mark.parametrize("case", list(BAD_FACTORIES), ids=list(BAD_FACTORIES))
def test_bad_factories_exit_2(cli, write_model, case):
    source, attr, message = BAD_FACTORIES[case]
    path = write_model(source)
    code, out, err = cli("show", f"{path}:{attr}")
    last = err.strip().splitlines()[-1]
    assert code == 2 and out == ""
    assert last.startswith("error:") and message in last, last
    assert "Traceback" not in err


def test_traceback_flag_shows_user_frames(cli, write_model):
    path = write_model("def make_model():\n    raise RuntimeError('boom')\n")
    code, _, err = cli("show", f"{path}:make_model", "--traceback")
    assert code == 2 and "Traceback" in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1].startswith("error:")


def test_user_prints_go_to_stderr(cli, write_model):
    path = write_model("""
        from flax import nnx
        print("building the model")
        def make_model():
            print("inside the factory")
            return nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    """)
    code, out, err = cli("show", f"{path}:make_model", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["Param"]["size"] == 9
    assert "building the model" in err and "inside the factory" in err


def test_cli_process_exit_code_and_last_line():
    """The real process: exit status 2 and a last stderr line starting with 'error:'."""
    proc = subprocess.run([sys.executable, "-m", "inspector", "show", "sample:nope:nnx"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("error: source 'sample:nope:nnx'")


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "show" in out


def test_unknown_option_ends_with_error_line(cli):
    code, _, err = cli("show", "sample:block:nnx", "--format", "xml")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error:")


def test_a_variable_that_is_not_an_array_is_bad_input(cli, write_model):
    path = write_model('def make():\n    return {"params": {"w": "hello"}}\n')
    code, out, err = cli("show", f"{path}:make")
    assert code == 2 and out == "" and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: source '{path}:make': variable 'params/w' holds a str ('hello')")
