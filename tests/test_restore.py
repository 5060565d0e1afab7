"""The restore verdict agrees with what Orbax really does with StandardCheckpointer().restore."""

from __future__ import annotations

import gc
import json

import orbax.checkpoint as ocp
import pytest
from flax import nnx

from inspector.__main__ import main
from tests.models import restore_cases

CASES = "tests/models/restore_cases.py"
# Orbax's own failing restores (the reference this test compares with) leave coroutines behind.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("restore") / "base"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.state(restore_cases.base()))
    checkpointer.wait_until_finished()
    return path


def orbax_outcome(path, factory) -> str:
    """What Orbax does: 'ok', 'casts' (loads, dtypes changed) or 'fails' (raises)."""
    graphdef, abstract = nnx.split(nnx.eval_shape(factory))
    try:
        restored = ocp.StandardCheckpointer().restore(path, abstract)
    except Exception:  # Orbax raises ValueError and others; any failure counts
        gc.collect()  # collect Orbax's abandoned reads here, under this module's warning filter
        return "fails"
    wanted = {tuple(p): v.get_value().dtype for p, v in nnx.to_flat_state(abstract)}
    got = {tuple(p): v.get_value().dtype for p, v in nnx.to_flat_state(restored)}
    return "ok" if wanted == got and all(str(d) == "float32" or "key" in str(d) or "uint32" in str(d)
                                         for d in wanted.values()) else "casts"


def verdict(capsys, path, case) -> tuple[int, dict]:
    try:
        code = main(["diff", str(path), f"{CASES}:{case}", "--format", "json"])
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("case,expected,reason", [
    ("base", "ok", None),
    ("bf16", "casts", "first/kernel float32 → bfloat16"),
    ("extra", "fails", "missing from the checkpoint: third/kernel"),
    ("missing", "fails", "in the checkpoint but not in the model: second/kernel"),
    ("wider", "fails", "shape differs: first/kernel (4, 8) in the checkpoint, (4, 16) in the model"),
])
def test_verdict_matches_orbax(capsys, saved, case, expected, reason):
    assert orbax_outcome(saved, getattr(restore_cases, case)) == expected
    code, data = verdict(capsys, saved, case)
    assert data["restore"] == expected
    assert (reason is None and data["restore_reasons"] == []) or any(reason in r for r in data["restore_reasons"])
    assert code == (1 if expected == "fails" or data["summary"]["mismatches"] else 0)


def test_renamed_variables_are_named_in_the_reasons(capsys, tmp_path):
    from loaders import load_source

    path = tmp_path / "linen"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, load_source("sample:block:linen").variables)
    checkpointer.wait_until_finished()
    code = main(["diff", str(path), "sample:block:nnx", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["restore"] == "fails"
    assert "missing from the checkpoint: linear/kernel (the checkpoint has it as params/Dense_0/kernel)" \
        in data["restore_reasons"]


def test_no_restore_check_between_live_sources(capsys):
    main(["diff", "sample:block:linen", "sample:block:nnx", "--format", "json"])
    assert "restore" not in json.loads(capsys.readouterr().out)
