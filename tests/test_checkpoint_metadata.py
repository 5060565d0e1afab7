"""A _METADATA file that is valid JSON (or bytes) but not Orbax's format is a damaged checkpoint."""

from __future__ import annotations

import orbax.checkpoint as ocp
import pytest
from flax import nnx


@pytest.mark.parametrize("content", [b"[]", b"{}", b'{"tree_metadata": 5}', b'"x"', bytes(range(200, 256))],
                         ids=["list", "empty-object", "wrong-field", "string", "binary"])
def test_damaged_metadata_is_one_clear_error(cli, tmp_path, content):
    path = tmp_path / "ckpt"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0))))
    checkpointer.wait_until_finished()
    (path / "_METADATA").write_bytes(content)
    code, out, err = cli("show", str(path))
    last = err.strip().splitlines()[-1]
    assert code == 2 and out == "" and "Traceback" not in err
    assert last.startswith(f"error: checkpoint '{path}'") and "_METADATA is" in last
    assert (path / "_METADATA").read_bytes() == content


def _save(path):
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0))))
    checkpointer.wait_until_finished()


@pytest.mark.parametrize("command", ["show", "steps"])
def test_a_folder_of_checkpoints_is_not_taken_for_one(cli, tmp_path, command):
    _save(tmp_path / "run_a")
    _save(tmp_path / "run_b")
    code, _, err = cli(command, str(tmp_path))
    assert code == 2 and "is a folder of 2 checkpoints (run_a, run_b), not a checkpoint itself" in err


def test_a_folder_holding_one_checkpoint_points_at_it(cli, tmp_path):
    _save(tmp_path / "run_a")
    (tmp_path / "README").write_text("notes")
    code, _, err = cli("show", str(tmp_path))
    assert code == 2 and f"use '{tmp_path / 'run_a'}' as the source" in err
