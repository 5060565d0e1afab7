"""One test per failure the fuzzer found, written out by hand so it holds without the fuzzer's
corpus (its replay id is in the test's id)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def npz_member_without_name(tmp: Path) -> Path:
    """The central directory's name length zeroed (its bytes read as the member's comment)."""
    path = tmp / "w.npz"
    np.savez(path, w=np.zeros(3, np.float32))
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    name, extra = struct.unpack_from("<HH", data, at + 28)
    struct.pack_into("<HHH", data, at + 28, 0, 0, name + extra)
    path.write_bytes(bytes(data))
    return path


# replay id: (write(tmp) -> path, message fragment)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "npz_compressed:1:15": (npz_member_without_name, "a member of the zip directory has an empty name"),
}


@pytest.mark.parametrize("write,message", CASES.values(), ids=CASES)
def test_fuzz_finding_is_one_error_line(tmp_path, cli, write, message):
    path = write(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    code, out, err = cli("show", str(path), "--values")
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("error:") and str(path) in lines[0] and message in lines[0], lines[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
