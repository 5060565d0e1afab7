"""The streaming engine: arrays read in pieces within a memory budget give numpy's numbers on the whole.

Files are written by their real writers (safetensors, numpy, flax msgpack, Orbax) to ``tmp_path``;
the model is an NNX module with BatchNorm, Dropout and a custom Variable, as people write them.
"""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import flax.serialization
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

from inspector.diffing import Tolerance, compare_values, diff_trees, with_value_diffs
from inspector.errors import InspectorError
from inspector.stats import RunningStats, array_stats
from inspector.value_diff import RunningDiff
from loaders import load_source, streaming
from loaders.stream_readers import OrbaxReader, WeightReader

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(7)


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((300, 37)).astype(np.float32) * 3 + 1
    kernel[5, 3], kernel[100, 0], kernel[299, 36] = np.nan, np.inf, -np.inf
    return {"encoder/dense/kernel": kernel,
            "encoder/dense/bias": rng.standard_normal(37).astype(np.float32),
            "embed/embedding": (rng.standard_normal((64, 16)) * 0.02).astype(ml_dtypes.bfloat16),
            "bn/count": np.arange(-40, 60, dtype=np.int32).reshape(10, 10),
            "step": np.array(12345678901, np.int64),
            "mask": rng.random(50) > 0.5}


def _close(got, want) -> None:
    assert (got.nan, got.inf) == (want.nan, want.inf)
    for field in ("min", "max", "mean", "std"):
        g, w = getattr(got, field), getattr(want, field)
        assert g == pytest.approx(w, rel=1e-9, abs=1e-12), field


def _write(kind: str, tmp_path: Path, arrays: dict[str, np.ndarray]) -> str:
    if kind == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file({k.replace("/", "."): v for k, v in arrays.items()}, str(path))
    elif kind in ("npz", "npz-compressed"):
        path = tmp_path / "weights.npz"
        save = np.savez_compressed if kind == "npz-compressed" else np.savez
        save(path, **{k: v for k, v in arrays.items() if v.dtype != ml_dtypes.bfloat16})  # npz keeps bf16 as V2
    elif kind == "msgpack":
        path = tmp_path / "flax_model.msgpack"
        tree: dict = {}
        for name, value in arrays.items():
            node = tree
            *parents, leaf = name.split("/")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        path.write_bytes(flax.serialization.msgpack_serialize(tree))
    else:
        import orbax.checkpoint as ocp

        path = tmp_path / "ckpt"
        tree = {}
        for name, value in arrays.items():
            node = tree
            *parents, leaf = name.split("/")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(path, tree)
        checkpointer.wait_until_finished()
        checkpointer.close()
    return str(path)


@pytest.mark.parametrize("kind", ["safetensors", "npz", "npz-compressed", "msgpack", "orbax"])
@pytest.mark.parametrize("budget", [1024, 256 << 20], ids=["1KiB", "256MiB"])
def test_pieces_give_numpy_statistics_of_the_whole(tmp_path, kind, budget):
    """Slices smaller than one array (1 KiB against a 43 KiB kernel), NaN/Inf, bfloat16, ints, bool."""
    arrays = _arrays()
    src = load_source(_write(kind, tmp_path, arrays), values=True, budget=budget)
    got = {r.name: r.stats for r in src.records}
    for name, array in arrays.items():
        if kind.startswith("npz") and array.dtype == ml_dtypes.bfloat16:
            continue
        _close(got[name], array_stats(array))
    kernel = arrays["encoder/dense/kernel"]
    finite = kernel[np.isfinite(kernel)].astype(np.float64)
    stats = got["encoder/dense/kernel"]
    assert (stats.nan, stats.inf) == (1, 2)
    assert stats.mean == pytest.approx(finite.mean(), rel=1e-12) and stats.std == pytest.approx(finite.std(), rel=1e-12)


def test_a_budget_smaller_than_one_array_reads_it_in_pieces(tmp_path, monkeypatch):
    path = _write("safetensors", tmp_path, _arrays())
    pieces = []
    read = WeightReader.read
    monkeypatch.setattr(WeightReader, "read",
                        lambda self, r, s, t: pieces.append((r.name, s, t)) or read(self, r, s, t))
    load_source(path, values=True, budget=4096)
    kernel = sorted(p for p in pieces if p[0] == "encoder/dense/kernel")
    assert len(kernel) == 300 * 37 * 4 // 1024 + 1  # 1 KiB pieces (budget / 4), the last one short
    assert kernel[0][1] == 0 and kernel[-1][2] == 300 * 37
    assert all(a[2] == b[1] for a, b in zip(kernel, kernel[1:]))  # contiguous, no element twice


def test_orbax_reads_each_stored_chunk_once(tmp_path, monkeypatch):
    """One device: one chunk per array, so one read per array even with a 1 KiB budget."""
    path = _write("orbax", tmp_path, _arrays())
    reads = []
    read = OrbaxReader.read
    monkeypatch.setattr(OrbaxReader, "read", lambda self, r, s, t: reads.append(r.name) or read(self, r, s, t))
    src = load_source(path, values=True, budget=1024)
    assert sorted(reads) == sorted(r.name for r in src.records)


def test_orbax_without_tensorstore_spec_falls_back_to_a_partial_restore(tmp_path, monkeypatch):
    path = _write("orbax", tmp_path, _arrays())
    monkeypatch.setattr(OrbaxReader, "_open", lambda self, record: None)
    got = {r.name: r.stats for r in load_source(path, values=True, budget=1024).records}
    _close(got["encoder/dense/kernel"], array_stats(_arrays()["encoder/dense/kernel"]))


class Counter(nnx.Variable):
    pass


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(24, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.count = Counter(jnp.array(3, jnp.int32))
        self.scale = nnx.Param(jnp.full((4,), 0.5, jnp.bfloat16))


def test_live_model_statistics_equal_array_stats(write_model):
    path = write_model(
        "from flax import nnx\nfrom tests.test_streaming import Net\n\ndef make():\n    return Net(nnx.Rngs(0))\n")
    src = load_source(f"{path}:make", values=True, budget=1024)
    model = Net(nnx.Rngs(0))
    want = {"/".join(map(str, p)): array_stats(v[...]) for p, v in nnx.to_flat_state(nnx.state(model))}
    got = {r.name: r.stats for r in src.records}
    assert got.keys() == want.keys()
    for name in want:
        _close(got[name], want[name])


def test_running_stats_merge_in_any_order_equals_the_whole():
    data = RNG.standard_normal(10_001) * 1e3 + 1e6  # a large mean: the naive sum of squares would cancel
    data[::501] = np.nan
    parts = [RunningStats.of(data[i:i + 997]) for i in range(0, data.size, 997)]
    merged = RunningStats()
    for i in RNG.permutation(len(parts)):
        merged.merge(parts[i])
    finite = data[np.isfinite(data)]
    got = merged.result()
    assert got.nan == 20 and got.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert got.std == pytest.approx(finite.std(), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16, np.int32], ids=str)
def test_running_diff_in_pieces_equals_numpy_on_the_whole(dtype):
    a = (RNG.standard_normal((40, 30)) * 10).astype(dtype)
    b = a.copy()
    b[3, 7] += 1
    b[20, 0] = a[20, 0] + 3
    if np.dtype(dtype).kind == "f" or dtype == ml_dtypes.bfloat16:
        a[0, 0] = b[0, 0] = np.nan  # NaN against NaN is close, and no difference
    x, y = a.astype(np.float64), b.astype(np.float64)
    merged = RunningDiff()
    for start in RNG.permutation(np.arange(0, a.size, 77)):
        piece = slice(int(start), int(start) + 77)
        merged.merge(RunningDiff.of(a.reshape(-1)[piece], b.reshape(-1)[piece], offset=int(start)))
    got = merged.result(a.shape)
    close = np.isclose(x, y, rtol=1e-5, atol=1e-8, equal_nan=True)
    finite = np.isfinite(x - y)
    assert got.allclose == bool(np.allclose(x, y, rtol=1e-5, atol=1e-8, equal_nan=True)) is False
    assert got.n_out_of_tolerance == int((~close).sum()) == 2 and got.first_diff_index == (3, 7)
    assert got.max_abs == np.abs(x - y)[finite].max()
    assert got.tol_ratio == pytest.approx((np.abs(x - y) / (1e-8 + 1e-5 * np.abs(y)))[finite].max())
    assert got == compare_values(a, b)


def test_tol_ratio_explains_the_verdict():
    a = np.array([1.0, 2.0, 3.0])
    within = RunningDiff.of(a, a * (1 + 5e-6)).result((3,))
    beyond = RunningDiff.of(a, a * (1 + 2e-5)).result((3,))
    assert within.allclose and 0 < within.tol_ratio <= 1 and within.n_out_of_tolerance == 0
    assert not beyond.allclose and beyond.tol_ratio > 1 and beyond.n_out_of_tolerance == 3
    nan = RunningDiff.of(np.array([1.0, np.nan]), np.array([1.0, 2.0])).result((2,))
    assert not nan.allclose and nan.tol_ratio == float("inf") and nan.to_json()["tol_ratio"] is None
    assert RunningDiff.of(a, a).result((3,)).first_diff_index is None


@pytest.mark.parametrize("kind", ["safetensors", "orbax"])
def test_streamed_diff_equals_the_in_memory_diff(tmp_path, kind):
    arrays = _arrays()
    left = _write(kind, tmp_path / "a", arrays) if (tmp_path / "a").mkdir() is None else ""
    changed = dict(arrays)
    changed["encoder/dense/bias"] = arrays["encoder/dense/bias"].copy()
    changed["encoder/dense/bias"][30] += 0.5
    changed["bn/count"] = arrays["bn/count"].copy()
    changed["bn/count"][9, 9] = 7
    right = _write(kind, tmp_path / "b", changed) if (tmp_path / "b").mkdir() is None else ""
    a, b = load_source(left), load_source(right)
    tolerance = Tolerance(rtol=1e-5, atol=1e-8)
    whole = diff_trees(a.records, b.records, values=(a.read, b.read), tolerance=tolerance)
    plain = diff_trees(a.records, b.records, tolerance=tolerance)
    streamed = with_value_diffs(plain, streaming.stream_diffs(a, b, plain, tolerance=tolerance, budget=1024))
    assert streamed == whole
    bad = {e.left.name: e.values for e in streamed if e.status == "value_mismatch"}
    assert bad.keys() == {"encoder/dense/bias", "bn/count"}
    assert bad["encoder/dense/bias"].first_diff_index == (30,) and bad["bn/count"].first_diff_index == (9, 9)


def test_stream_values_yields_every_array_in_order(tmp_path):
    src = load_source(_write("orbax", tmp_path, _arrays()))
    seen = []
    out = list(streaming.stream_values(src, src.records, budget=1024, progress=seen.append))
    assert [r for r, _ in out] == list(src.records)
    for record, array in out:
        np.testing.assert_array_equal(np.asarray(array), np.asarray(src.read(record)))
    assert seen[-1].arrays_done == seen[-1].arrays_total == len(src.records)
    assert seen[-1].bytes_done == seen[-1].bytes_total


def test_pieces_in_flight_stay_within_the_budget():
    alive, most, lock = [0], [0], threading.Lock()

    def run():
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        time.sleep(0.005)
        return 1

    tasks = [streaming._Task(i, 0, 100, run) for i in range(30)]
    for _task, _ in streaming._run_ordered(tasks, budget=250):
        with lock:
            alive[0] -= 1
    assert most[0] == 2  # 250 bytes hold two 100-byte pieces, read ahead on two threads
    big = [streaming._Task(0, 0, 1000, run)]
    alive[0] = 0
    assert [r for _, r in streaming._run_ordered(big, budget=250)] == [1]  # larger than the budget: alone


@pytest.mark.parametrize("text, expected", [("256MiB", 256 << 20), ("512 KiB", 512 << 10), ("2GiB", 2 << 30),
                                            ("1.5GiB", 3 << 29), ("65536", 65536)])
def test_parse_budget(text, expected):
    assert streaming.parse_budget(text) == expected


@pytest.mark.parametrize("text, message", [("lots", "not a size"), ("12 parsecs", "not a size"),
                                           ("10", "below 1 KiB")])
def test_bad_budgets(text, message, cli):
    with pytest.raises(InspectorError, match=message):
        streaming.parse_budget(text)
    code, _, err = cli("show", "sample:block:nnx", "--values", "--memory-budget", text)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error:") and message in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal, fmt, shown", [(True, "table", True), (True, "json", False),
                                                  (False, "table", False)], ids=["tty", "tty-json", "pipe"])
def test_progress_only_on_a_terminal_and_not_with_json(tmp_path, monkeypatch, capsys, terminal, fmt, shown):
    from inspector.__main__ import main

    path = _write("safetensors", tmp_path, _arrays())
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["show", path, "--values", "--format", fmt]) == 0
    assert ("reading values: " in stderr.getvalue()) is shown
    if shown:
        assert "arrays" in stderr.getvalue() and stderr.getvalue().endswith("\r\x1b[K")  # erased when done
    out = capsys.readouterr().out
    assert ("reading values" in out) is False


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path):
    """A real process on a terminal: progress starts, SIGINT arrives, exit 130 and one error line."""
    path = tmp_path / "big.safetensors"
    save_file({"w": np.zeros((4096, 2048), np.float32)}, str(path))  # 32 MiB in 1 KiB pieces: many seconds
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "show", str(path), "--values", "--memory-budget",
                             "4KiB"], cwd=ROOT, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while b"reading values" not in seen and time.monotonic() < deadline and proc.poll() is None:
            if select.select([leader], [], [], 0.5)[0]:
                seen += os.read(leader, 4096)
        assert b"reading values" in seen, seen
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert code == 130
    assert seen.decode(errors="replace").strip().splitlines()[-1].strip("\r\x1b[K").endswith("error: interrupted")
    assert b"Traceback" not in seen
