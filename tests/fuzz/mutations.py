"""Damaged copies of a pristine source, each derived from ``(seed, reader, index)`` alone, so one
case replays without the ones before it."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.corpus import Pristine

KINDS = ("bitflip", "truncate_boundary", "truncate_random", "zero_range", "insert", "garbage", "delete")


@dataclass(frozen=True)
class Mutation:
    """What to do to which file of a source: ``kind`` on ``file`` at ``at`` (with ``size``/``bits``)."""

    case: str
    kind: str
    file: str
    at: int = 0
    size: int = 0
    bits: tuple[int, ...] = ()

    def text(self) -> str:
        extra = f" bits {list(self.bits)}" if self.bits else (f" size {self.size}" if self.size else "")
        return f"{self.kind} {self.file} at {self.at}{extra}"


def case_id(reader: str, seed: int, index: int) -> str:
    return f"{reader}:{seed}:{index}"


def make_mutation(pristine: Pristine, seed: int, index: int, sizes: dict[str, int]) -> Mutation:
    """The ``index``-th mutation of ``pristine`` for ``seed`` (``sizes``: each file's length)."""
    rng = random.Random(f"{seed}/{pristine.reader}/{index}")
    case = case_id(pristine.reader, seed, index)
    names = sorted(pristine.files)
    kinds = KINDS if len(names) > 1 else KINDS[:-1]  # deleting the only file is a missing path
    kind = kinds[index % len(kinds)]
    name = rng.choice(names)
    n = sizes[name]
    if kind == "bitflip":
        return Mutation(case, kind, name, rng.randrange(max(n, 1)), bits=tuple(rng.sample(range(8), rng.randint(1, 3))))
    if kind == "truncate_boundary":
        return Mutation(case, kind, name, rng.choice(pristine.files[name]))
    if kind == "truncate_random":
        return Mutation(case, kind, name, rng.randrange(max(n, 1)))
    if kind == "zero_range":
        return Mutation(case, kind, name, rng.randrange(max(n, 1)), size=rng.choice((1, 4, 8, 64, 512)))
    if kind == "insert":
        return Mutation(case, kind, name, rng.choice(pristine.files[name] + (rng.randrange(n + 1),)),
                        size=rng.choice((1, 3, 8, 100)))
    if kind == "garbage":
        return Mutation(case, kind, name, 0, size=rng.choice((0, 7, n)))
    return Mutation(case, kind, name)


def apply_mutation(mutation: Mutation, src: Path, dst: Path) -> Path:
    """Copy the reader folder ``src`` to ``dst`` and damage ``mutation.file`` there."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    path = dst / mutation.file
    if mutation.kind == "delete":
        path.unlink()
        return path
    data = bytearray(path.read_bytes())
    rng = random.Random(mutation.case)
    at = min(mutation.at, len(data))
    if mutation.kind == "bitflip" and data:
        for bit in mutation.bits:
            data[min(at, len(data) - 1)] ^= 1 << bit
    elif mutation.kind in ("truncate_boundary", "truncate_random"):
        del data[at:]
    elif mutation.kind == "zero_range":
        end = min(at + mutation.size, len(data))
        data[at:end] = bytes(end - at)
    elif mutation.kind == "insert":
        data[at:at] = bytes(rng.randrange(256) for _ in range(mutation.size))
    elif mutation.kind == "garbage":
        data = bytearray(rng.randbytes(mutation.size))
    path.write_bytes(bytes(data))
    return path
