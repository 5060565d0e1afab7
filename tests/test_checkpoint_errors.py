"""Bad checkpoints: exit 2 with one ``error:`` line naming the path, no Orbax noise, and the
directory byte-for-byte unchanged afterwards (the tool never writes into a checkpoint)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from inspector.__main__ import main
from inspector.errors import CheckpointError
from loaders import load_source
from loaders.checkpoint import load_checkpoint
from loaders.spec import SourceSpec

ROOT = Path(__file__).resolve().parent.parent
NOISE = ("Traceback", "Event loop is closed", "Exception ignored", "WARNING", "Warning")


def write_good(path: Path) -> Path:
    """A small NNX-style checkpoint whose kernel is big enough to live in a data file."""
    tree = {"linear": {"kernel": {"value": np.random.default_rng(0).standard_normal((64, 64), np.float32)},
                       "bias": {"value": np.zeros(64, np.float32)}}}
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path.absolute(), tree)
    return path


def write_manager(root: Path, steps=(0, 1)) -> Path:
    with ocp.CheckpointManager(root.absolute()) as manager:
        for step in steps:
            manager.save(step, args=ocp.args.StandardSave({"w": np.full(3, step, np.float32)}))
    return root


def data_files(path: Path) -> list[Path]:
    return sorted((path / "ocdbt.process_0" / "d").iterdir())


def largest_data_file(path: Path) -> Path:
    return max(data_files(path), key=lambda f: f.stat().st_size)


def delete_data(path: Path) -> None:
    for file in data_files(path):
        file.unlink()


def truncate_data(path: Path) -> None:
    file = largest_data_file(path)
    with open(file, "r+b") as handle:
        handle.truncate(file.stat().st_size // 2)


def corrupt_data(path: Path) -> None:
    file = largest_data_file(path)
    with open(file, "r+b") as handle:
        handle.seek(file.stat().st_size // 3)
        handle.write(bytes(range(256)) * 4)


def unfinished(path: Path) -> Path:
    tmp = path.parent / "ckpt.orbax-checkpoint-tmp-1234"
    shutil.move(path, tmp)
    return tmp


def only_unfinished_steps(root: Path) -> Path:
    shutil.rmtree(root / "0")
    shutil.move(root / "1", root / "1.orbax-checkpoint-tmp-77")
    return root


# name: (prepare(tmp_path) -> path to pass, extra CLI args, message fragment)
Case = tuple[Callable[[Path], Path], tuple[str, ...], str]
CASES: dict[str, Case] = {
    "missing": (lambda t: t / "nope", (), "does not exist"),
    "empty": (lambda t: (t / "empty").mkdir() or t / "empty", (), "is an empty directory"),
    "garbled-metadata": (lambda t: _edit(write_good(t / "ckpt"), lambda p: (p / "_METADATA").write_text('{"tree')),
                         (), "_METADATA is garbled"),
    "deleted-metadata": (lambda t: _edit(write_good(t / "ckpt"), lambda p: (p / "_METADATA").unlink()),
                         (), "missing its _METADATA"),
    "deleted-data": (lambda t: _edit(write_good(t / "ckpt"), delete_data), (), "'linear.kernel.value' is missing"),
    "deleted-index-data": (lambda t: _edit(write_good(t / "ckpt"), lambda p: shutil.rmtree(p / "d")),
                           (), "a data file is missing"),
    "deleted-manifest": (lambda t: _edit(write_good(t / "ckpt"), lambda p: (p / "manifest.ocdbt").unlink()),
                         (), "missing manifest.ocdbt"),
    "truncated-data": (lambda t: _edit(write_good(t / "ckpt"), truncate_data), (), "is truncated or corrupt"),
    "corrupt-data-values": (lambda t: _edit(write_good(t / "ckpt"), corrupt_data), ("--values",),
                            "reading 'linear/kernel' failed: a data file is truncated or corrupt"),
    "unfinished-save": (lambda t: unfinished(write_good(t / "ckpt")), (), "is an unfinished save"),
    "manager-no-steps": (lambda t: only_unfinished_steps(write_manager(t / "mgr")), (),
                         "has no finished step, only unfinished saves (1.orbax-checkpoint-tmp-77)"),
    "unknown-step": (lambda t: Path(f"{write_manager(t / 'mgr')}@7"), (), "has no step 7; its steps are 0, 1"),
    "not-a-checkpoint": (lambda t: _edit(t / "other", lambda p: p.mkdir() or (p / "notes.txt").write_text("x")),
                         (), "is not an Orbax checkpoint: no _METADATA file"),
}


def _edit(path: Path, change: Callable[[Path], object]) -> Path:
    change(path)
    return path


def snapshot(path: Path) -> dict[str, str]:
    """Every file's content hash and every directory, by relative path."""
    root = Path(str(path).split("@")[0])
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_checkpoint_exits_2_with_one_line(tmp_path, capsys, case):
    prepare, extra, message = CASES[case]
    path = prepare(tmp_path)
    before = snapshot(path)
    code = main(["show", str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert str(path).split("@")[0] in lines[0] and message in lines[0], lines[0]
    assert not any(noise in err for noise in NOISE)
    assert snapshot(path) == before


def test_load_checkpoint_reports_a_missing_directory(tmp_path):
    spec = SourceSpec(str(tmp_path / "gone"), "checkpoint", str(tmp_path / "gone"))
    with pytest.raises(CheckpointError, match="gone' does not exist"):
        load_checkpoint(spec, abstract=False)


def test_steps_of_bad_roots_exit_2(tmp_path, capsys):
    root = only_unfinished_steps(write_manager(tmp_path / "mgr"))
    assert main(["steps", str(root)]) == 2
    assert "no finished step" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["steps", str(tmp_path / "empty")]) == 2
    assert "empty directory" in capsys.readouterr().err


def test_reading_leaves_every_byte_unchanged(tmp_path, capsys):
    root = write_manager(tmp_path / "mgr", steps=(0, 5, 10))
    single = write_good(tmp_path / "single")
    before = snapshot(root), snapshot(single)
    for argv in (["show", str(root)], ["show", f"{root}@5", "--values", "--format", "json"],
                 ["steps", str(root), "--format", "json"], ["show", str(root / "10")],
                 ["show", str(single), "--values"]):
        assert main(argv) == 0, capsys.readouterr().err
    src = load_source(str(single))
    for record in src.records:
        src.read(record)
    capsys.readouterr()
    assert (snapshot(root), snapshot(single)) == before


def test_real_cli_keeps_orbax_noise_off_stderr(tmp_path):
    """Failures run in real processes: Orbax's thread tracebacks would reach the terminal here."""
    names = ("deleted-data", "deleted-index-data", "truncated-data", "corrupt-data-values", "garbled-metadata")
    argvs = []
    for i, (prepare, extra, _) in enumerate(CASES[name] for name in names):
        (tmp_path / str(i)).mkdir()
        argvs.append(["show", str(prepare(tmp_path / str(i))), *extra])
    driver = ("import json, sys\nfrom inspector.__main__ import main\n"
              "codes = [main(argv) for argv in json.loads(sys.argv[1])]\n"
              "import gc, time; gc.collect(); time.sleep(0.5)\nprint(codes)\n")
    proc = subprocess.run([sys.executable, "-c", driver, json.dumps(argvs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.stdout.strip() == str([2] * len(argvs))
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(argvs) and all(line.startswith("error: checkpoint") for line in lines), proc.stderr
    single = subprocess.run([sys.executable, "-m", "inspector", "show", argvs[0][1]], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert single.returncode == 2 and single.stderr.startswith("error:") and single.stderr.count("\n") == 1
