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
