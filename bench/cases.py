"""What the benchmark runs: one workload per measure, each timed in a child process of its own.

A workload function does the set-up (building the model, which is not what is measured) and
returns the one call to time. Implementations are named: ``ours`` is this project's code path, the
others are the library doing the same job (``flax``, ``jax``, ``linen``, ``nnx``, ``orbax``,
``treescope``, ``streamlit``). ``bench.run_case`` times the call in a child process
(``bench.protocol``).

Module-level imports stay to the standard library: the parent process never imports jax, and a
child imports only what its workload needs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.protocol import ROOT, Case

SPEC = "bench/models.py"  # relative to ROOT, where every child runs
ARRAYS = 16  # the checkpoint issue's checkpoint: 16 float32 arrays of DIM x DIM
COLD = frozenset({"app"})  # measures of a first call: the parent runs one process per repetition


@dataclasses.dataclass
class Workload:
    """A prepared measurement: the call to time and what the report needs to know about it.

    ``once``: only the first call in a process is the thing measured (a cold first render), so
    the parent runs one process per repetition. ``check`` runs after timing, for correctness
    facts the report states (``same_records``); its memory never counts in the peak.
    """

    run: Callable[[], Any]
    variables: int | None = None
    once: bool = False
    warmup: bool = True
    check: Callable[[], dict[str, Any]] | None = None


WorkloadFn = Callable[[Case], Workload]
WORKLOADS: dict[str, WorkloadFn] = {}


def workload(name: str) -> Callable[[WorkloadFn], WorkloadFn]:
    def register(fn: WorkloadFn) -> WorkloadFn:
        WORKLOADS[name] = fn
        return fn

    return register


def _unknown(case: Case) -> ValueError:
    return ValueError(f"workload {case.workload!r} has no implementation {case.impl!r}")


# --- models ------------------------------------------------------------------------------------

def _nnx_model(variables: int) -> Any:
    from bench import models

    return models.blocks_nnx(models.blocks_for(variables))


def _linen_variables(variables: int) -> dict:
    import jax

    from bench import models

    module, args = models.blocks_linen(models.blocks_for(variables))
    return dict(module.init(jax.random.key(0), *args))


def _count(obj: Any) -> int:
    from flax import nnx

    return len(nnx.to_flat_state(nnx.state(obj)))


# --- normalize, diff, filter, split --------------------------------------------------------------

@workload("normalize-nnx")
def normalize_nnx(case: Case) -> Workload:
    """Records of an NNX model against flax's own flat state of it."""
    from flax import nnx

    from inspector.normalize import flatten_variables

    model = _nnx_model(case.size)
    if case.impl == "ours":
        return Workload(lambda: flatten_variables(model), _count(model))
    if case.impl == "flax":
        return Workload(lambda: nnx.to_flat_state(nnx.state(model)), _count(model))
    raise _unknown(case)


@workload("normalize-linen")
def normalize_linen(case: Case) -> Workload:
    """Records of a Linen variables dict against ``jax.tree_util.tree_flatten_with_path``."""
    import jax

    from inspector.normalize import flatten_variables

    variables = _linen_variables(case.size)
    count = len(jax.tree.leaves(variables))
    if case.impl == "ours":
        return Workload(lambda: flatten_variables(variables), count)
    if case.impl == "jax":
        return Workload(lambda: jax.tree_util.tree_flatten_with_path(variables), count)
    raise _unknown(case)


@workload("diff-rename")
def diff_rename(case: Case) -> Workload:
    """A Linen model against its NNX twin: every path differs, so alignment pairs all of them.

    No library does this job, so there is no reference: the goal is absolute (under a second).
    """
    from inspector.align.structure import structure_of
    from inspector.diffing import diff_trees
    from inspector.normalize import flatten_variables

    if case.impl != "ours":
        raise _unknown(case)
    linen, model = _linen_variables(case.size), _nnx_model(case.size)
    left, right = [r for r, _ in flatten_variables(linen)], [r for r, _ in flatten_variables(model)]
    ls, rs = structure_of(linen), structure_of(model)
    return Workload(lambda: diff_trees(left, right, left_structure=ls, right_structure=rs), len(right))


@workload("diff-transform")
def diff_transform(case: Case) -> Workload:
    """The renamed twin again, with every tenth variable of the NNX side stored in another layout
    (a kernel's heads split out, ``(d, d)`` → ``(d, 4, d/4)``, a bias as ``(4, d/4)``), so one pair in
    ten needs a layout transform. The reference is the plain renamed twin, in the same run.
    """
    import dataclasses as dc

    from inspector.align.structure import structure_of
    from inspector.diffing import diff_trees
    from inspector.normalize import flatten_variables

    linen, model = _linen_variables(case.size), _nnx_model(case.size)
    left, right = [r for r, _ in flatten_variables(linen)], [r for r, _ in flatten_variables(model)]
    ls, rs = structure_of(linen), structure_of(model)
    if case.impl == "ours":
        right = [dc.replace(r, shape=r.shape[:-1] + (4, r.shape[-1] // 4))
                 if i % 10 == 0 and r.shape and r.shape[-1] % 4 == 0 and r.shape[-1] > 4 else r
                 for i, r in enumerate(right)]
    elif case.impl != "rename":
        raise _unknown(case)
    return Workload(lambda: diff_trees(left, right, left_structure=ls, right_structure=rs), len(right))


@workload("diff-tree")
def diff_tree(case: Case) -> Workload:
    """The Diff page's two module trees, built from the entries of the Linen-vs-NNX-twin diff.

    The reference is that diff itself (``diff_trees``): the tree is drawn after it, on every new
    diff, so its cost is read against the step the user already waits for.
    """
    from inspector.align.structure import structure_of
    from inspector.diff_tree import build_diff_tree
    from inspector.diffing import diff_trees
    from inspector.normalize import flatten_variables

    linen, model = _linen_variables(case.size), _nnx_model(case.size)
    left, right = [r for r, _ in flatten_variables(linen)], [r for r, _ in flatten_variables(model)]
    ls, rs = structure_of(linen), structure_of(model)
    if case.impl == "diff":
        return Workload(lambda: diff_trees(left, right, left_structure=ls, right_structure=rs), len(right))
    if case.impl == "ours":
        entries = diff_trees(left, right, left_structure=ls, right_structure=rs)
        return Workload(lambda: build_diff_tree(entries, left=ls, right=rs), len(right))
    raise _unknown(case)


@workload("diff-same")
def diff_same(case: Case) -> Workload:
    """Two NNX trees with the same paths and one shape changed, against Orbax's ``tree_difference``.

    Each side starts from what it naturally takes: our records (computed once by ``normalize``),
    Orbax's nested dicts (``nnx.to_pure_dict``); neither conversion is timed.
    """
    import dataclasses as dc

    from inspector.align.structure import structure_of
    from inspector.diffing import diff_trees
    from inspector.normalize import flatten_variables

    model = _nnx_model(case.size)
    if case.impl == "ours":
        left = [r for r, _ in flatten_variables(model)]
        right = list(left)
        right[-1] = dc.replace(right[-1], shape=right[-1].shape + (1,))
        structure = structure_of(model)
        return Workload(lambda: diff_trees(left, right, left_structure=structure, right_structure=structure,
                                           rng_one_sided=False), len(left))
    if case.impl == "orbax":
        import numpy as np
        import orbax.checkpoint as ocp
        from flax import nnx

        a = nnx.to_pure_dict(nnx.state(model))
        b = nnx.to_pure_dict(nnx.state(model))
        b["blocks"][0]["norm"]["scale"] = np.zeros((1,), np.float32)
        same = lambda x, y: x.shape == y.shape and x.dtype == y.dtype  # noqa: E731
        return Workload(lambda: ocp.tree.tree_difference(a, b, leaves_equal=same), _count(model))
    raise _unknown(case)


FILTER_TEXT = "Param & PathContains('kernel')"


def _subject_inputs(case: Case) -> tuple[Any, list]:
    """The model and its ``(record, value)`` leaves, as a loaded source holds them."""
    from inspector.normalize import flatten_variables

    model = _nnx_model(case.size)
    return model, flatten_variables(model)


@workload("filter")
def filter_(case: Case) -> Workload:
    """One filter query on a loaded model (parse, subject, select) against ``nnx.state(model, f)``."""
    from flax import nnx

    from inspector.filters import parse_filter
    from inspector.splitmerge import select, subject_of

    model, leaves = _subject_inputs(case)
    if case.impl == "ours":
        def run() -> Any:
            subject = subject_of(model, leaves=leaves)
            return select(subject, parse_filter(FILTER_TEXT, subject.variable_types))
        return Workload(run, len(leaves))
    if case.impl == "flax":
        flt = parse_filter(FILTER_TEXT, {}).filter
        return Workload(lambda: nnx.state(model, flt), len(leaves))
    raise _unknown(case)


@workload("split")
def split(case: Case) -> Workload:
    """Grouping as ``nnx.split`` would (no merge check) against ``nnx.split(model, f, ...)``."""
    return _split(case, merge_check=False)


@workload("split-merge")
def split_merge(case: Case) -> Workload:
    """``split`` as the CLI runs it, with its merge round-trip check, against split + merge."""
    return _split(case, merge_check=True)


def _split(case: Case, *, merge_check: bool) -> Workload:
    from flax import nnx

    from inspector.filters import parse_filters
    from inspector.splitmerge import split_groups, subject_of

    model, leaves = _subject_inputs(case)
    text = f"{FILTER_TEXT}; ..."
    if case.impl == "ours":
        def run() -> Any:
            subject = subject_of(model, leaves=leaves)
            if not merge_check:  # without a graph node split_groups skips merge_roundtrip
                subject = dataclasses.replace(subject, node=None)
            return split_groups(subject, parse_filters(text, subject.variable_types))
        return Workload(run, len(leaves))
    if case.impl == "flax":
        filters = [f.filter for f in parse_filters(text, {})]
        if merge_check:
            return Workload(lambda: nnx.merge(*nnx.split(model, *filters), copy=True), len(leaves))
        return Workload(lambda: nnx.split(model, *filters), len(leaves))
    raise _unknown(case)


# --- abstract builds -----------------------------------------------------------------------------

@workload("abstract")
def abstract(case: Case) -> Workload:
    """N blocks shapes-only: ``show --abstract`` (our loader) against ``nnx.eval_shape`` and Linen.

    ``nnx.eval_shape`` runs without our work-around, so it shows what a user of flax alone waits.
    """
    from bench.sizes import VARIABLES_PER_BLOCK

    return _abstract(case, f"{SPEC}:blocks_nnx_{case.size}", f"blocks_linen_{case.size}",
                     f"blocks_nnx_{case.size}", case.size * VARIABLES_PER_BLOCK)


@workload("llama")
def llama(case: Case) -> Workload:
    """The 7B Llama-like model shapes-only (size is unused: there is one such model)."""
    from bench.models import LLAMA_7B

    return _abstract(case, f"{SPEC}:llama_nnx", "llama_linen", "llama_nnx", LLAMA_7B.variables)


def _abstract(case: Case, spec: str, linen_name: str, nnx_name: str, variables: int) -> Workload:
    from bench import models

    if case.impl == "ours":
        from loaders import load_source

        check = None
        if case.param("check") == "concrete":
            def check() -> dict[str, Any]:
                abstract_records = load_source(spec, abstract=True).records
                return {"same_records": abstract_records == load_source(spec).records}
        return Workload(lambda: load_source(spec, abstract=True), variables, warmup=False, check=check)
    if case.impl == "linen":
        import jax

        module, args = models.factory(linen_name)()
        return Workload(lambda: jax.eval_shape(module.init, jax.random.key(0), *args), variables, warmup=False)
    if case.impl == "nnx":
        from flax import nnx

        build = models.factory(nnx_name)
        return Workload(lambda: nnx.eval_shape(build), variables, warmup=False)
    raise _unknown(case)


# --- checkpoints ---------------------------------------------------------------------------------

def checkpoint_bytes(dim: int) -> int:
    """Bytes of the benchmark checkpoint whose arrays are ``dim`` x ``dim`` float32."""
    return ARRAYS * dim * dim * 4


@workload("checkpoint-write")
def checkpoint_write(case: Case) -> Workload:
    """Set-up, not a measure: write 16 random ``size`` x ``size`` float32 arrays with Orbax."""
    import numpy as np
    import orbax.checkpoint as ocp

    rng = np.random.default_rng(0)
    tree = {f"w{i:02d}": rng.standard_normal((case.size, case.size), dtype=np.float32) for i in range(ARRAYS)}

    def run() -> None:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(Path(case.param("dir")).resolve(), tree)
        checkpointer.wait_until_finished()
        checkpointer.close()
    return Workload(run, ARRAYS, once=True, warmup=False)


@workload("checkpoint")
def checkpoint(case: Case) -> Workload:
    """``show DIR`` (metadata only) against a full Orbax restore of the same checkpoint."""
    directory = Path(case.param("dir")).resolve()
    if case.impl == "ours":
        from loaders import load_source

        return Workload(lambda: load_source(str(directory)), ARRAYS, warmup=False)
    if case.impl == "orbax":
        import orbax.checkpoint as ocp

        def run() -> Any:
            checkpointer = ocp.StandardCheckpointer()
            try:
                return checkpointer.restore(directory)
            finally:
                checkpointer.close()
        return Workload(run, ARRAYS, warmup=False)
    raise _unknown(case)


# --- convert ---------------------------------------------------------------------------------------

@workload("convert-write")
def convert_write(case: Case) -> Workload:
    """Set-up, not a measure: a Linen checkpoint of 16 ``Dense(size)`` (``params/Dense_i/{kernel,bias}``)."""
    import numpy as np
    import orbax.checkpoint as ocp

    rng = np.random.default_rng(0)
    tree = {"params": {f"Dense_{i}": {"kernel": rng.standard_normal((case.size, case.size), dtype=np.float32),
                                      "bias": np.zeros((case.size,), np.float32)} for i in range(ARRAYS)}}

    def run() -> None:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(Path(case.param("dir")).resolve(), tree)
            checkpointer.wait_until_finished()
    return Workload(run, 2 * ARRAYS, once=True, warmup=False)


@workload("convert")
def convert(case: Case) -> Workload:
    """``convert DIR bench/models.py:dense_nnx_N --out OUT`` (one array at a time) against Orbax restoring
    the whole Linen tree, renaming it in memory and saving it (the whole model in memory)."""
    import shutil

    source = Path(case.param("dir")).resolve()
    out = source.parent / f"{source.name}-nnx"
    target = f"{SPEC}:dense_nnx_{case.size}"

    def fresh() -> None:
        shutil.rmtree(out, ignore_errors=True)

    if case.impl == "ours":
        from loaders import load_source
        from loaders.convert import model_factory, plan_sources, write_converted

        def run() -> Any:
            fresh()
            linen, nnx_target = load_source(str(source)), load_source(target, abstract=True)
            plan, _, _ = plan_sources(linen, nnx_target)
            assert plan.ok, [r.to_json() for r in plan.refused]
            return write_converted(plan, linen, nnx_target, str(out), make_model=model_factory(target))
        return Workload(run, 2 * ARRAYS, warmup=False, check=lambda: (fresh(), {})[1])
    if case.impl == "orbax":
        import orbax.checkpoint as ocp

        def run() -> Any:
            fresh()
            with ocp.StandardCheckpointer() as checkpointer:
                tree = checkpointer.restore(source)
                state = {"layers": {str(i): {k: {"value": v} for k, v in tree["params"][f"Dense_{i}"].items()}
                                    for i in range(ARRAYS)}}
                checkpointer.save(out, state)
                checkpointer.wait_until_finished()
        return Workload(run, 2 * ARRAYS, warmup=False, check=lambda: (fresh(), {})[1])
    raise _unknown(case)


# --- weight files --------------------------------------------------------------------------------

@workload("weights-write")
def weights_write(case: Case) -> Workload:
    """Set-up, not a measure: write 16 random ``size`` x ``size`` float32 arrays with the format's
    own writer (``safetensors.numpy.save_file``, ``flax.serialization.to_bytes``)."""
    import numpy as np

    rng = np.random.default_rng(0)
    tree = {f"w{i:02d}": rng.standard_normal((case.size, case.size), dtype=np.float32) for i in range(ARRAYS)}
    path = Path(case.param("dir")).resolve()

    def run() -> None:
        if case.impl == "safetensors":
            from safetensors.numpy import save_file

            save_file(tree, str(path), metadata={"format": "np"})
        elif case.impl == "msgpack":
            from flax.serialization import msgpack_serialize

            path.write_bytes(msgpack_serialize(tree, in_place=True))
        else:
            raise _unknown(case)
    return Workload(run, ARRAYS, once=True, warmup=False)


@workload("weights-safetensors")
def weights_safetensors(case: Case) -> Workload:
    """``show FILE.safetensors`` (the header only)."""
    from loaders import load_source

    path = str(Path(case.param("dir")).resolve())
    if case.impl == "ours":
        return Workload(lambda: load_source(path), ARRAYS, warmup=False)
    raise _unknown(case)


@workload("weights-msgpack")
def weights_msgpack(case: Case) -> Workload:
    """``show FILE.msgpack`` (the header walk) against flax reading the file the usual way."""
    path = Path(case.param("dir")).resolve()
    if case.impl == "ours":
        from loaders import load_source

        return Workload(lambda: load_source(str(path)), ARRAYS, warmup=False)
    if case.impl == "flax":
        from flax.serialization import msgpack_restore

        def run() -> Any:
            with open(path, "rb") as f:
                return msgpack_restore(f.read())
        return Workload(run, ARRAYS, warmup=False)
    raise _unknown(case)


# --- training-step port check ------------------------------------------------------------------

@workload("port-train")
def port_train(case: Case) -> Workload:
    """``port --train``'s training check against the train steps a user writes by hand for both sides.

    Both sides start from the same converted weights (the port check is set-up, not timed) and do
    one step on each side as one CLI run does: ours runs a Linen and an NNX ``value_and_grad`` step
    op by op (``EAGER_STEPS``) plus the SGD update, then maps every gradient, state and weight
    through the alignment and compares them; the reference is the step a user writes, a jitted
    Linen ``jax.value_and_grad`` step and an ``nnx.jit``/``nnx.value_and_grad`` step with the same
    SGD update, compiled afresh on every call and compared with nothing.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from bench import models
    from inspector.example import Inputs, LinenExample
    from inspector.port_check import check_port

    module, args = models.blocks_linen(models.blocks_for(case.size))
    variables = dict(module.init(jax.random.key(0), *args))
    example = LinenExample(module, Inputs(args), Inputs(args))
    report, state = check_port(example, variables, models.blocks_nnx(models.blocks_for(case.size)), None)
    if not report.ok:
        raise RuntimeError("the bench port does not convert cleanly")
    model = models.blocks_nnx(models.blocks_for(case.size))
    nnx.update(model, state)
    count = _count(model)
    if case.impl == "ours":
        from inspector.training import check_training

        def run() -> Any:
            trained = check_training(example, variables, model, None, report.entries)
            if not trained.ok:
                raise RuntimeError("the bench port does not train the same")
            return trained
        return Workload(run, count, warmup=False)  # every call traces anew: a warm-up only doubles the cost
    if case.impl == "handwritten":
        def run() -> Any:
            @jax.jit
            def linen_step(params):
                loss = lambda p: jnp.mean(module.apply({"params": p}, *args) ** 2)  # noqa: E731
                value, grads = jax.value_and_grad(loss)(params)
                return value, grads, jax.tree.map(lambda p, g: p - 1e-2 * g, params, grads)

            @nnx.jit
            def nnx_step(m):
                value, grads = nnx.value_and_grad(lambda m: jnp.mean(m(*args) ** 2))(m)
                _, params, rest = nnx.split(m, nnx.Param, ...)
                nnx.update(m, nnx.merge_state(jax.tree.map(lambda p, g: p - 1e-2 * g, params, grads), rest))
                return value, grads

            m = nnx.clone(model)
            m.train()
            return jax.block_until_ready((linen_step(variables["params"]), nnx_step(m)))
        return Workload(run, count, warmup=False)
    raise _unknown(case)


# --- values at bandwidth (issue 17) -------------------------------------------------------------

PLANTED = (("w03", (17, -1), 0.5), ("w11", (-96, 5), 1e-3))  # (array, index, relative change) on the right


@workload("values-write")
def values_write(case: Case) -> Workload:
    """Set-up, not a measure: 16 random ``size`` x ``size`` float32 arrays as two Orbax checkpoints
    ``DIR/left`` and ``DIR/right`` that differ in two planted values, or as one safetensors file."""
    import numpy as np

    rng = np.random.default_rng(0)
    tree = {f"w{i:02d}": rng.standard_normal((case.size, case.size), dtype=np.float32) for i in range(ARRAYS)}
    path = Path(case.param("dir")).resolve()

    def run() -> None:
        if case.impl == "safetensors":
            from safetensors.numpy import save_file

            save_file(tree, str(path), metadata={"format": "np"})
            return
        import orbax.checkpoint as ocp

        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(path / "left", tree)
        checkpointer.wait_until_finished()
        for name, index, change in PLANTED:
            tree[name][index] *= 1 + change
        checkpointer.save(path / "right", tree)
        checkpointer.wait_until_finished()
        checkpointer.close()
    return Workload(run, ARRAYS, once=True, warmup=False)


def _quietly(fn: Callable[[], Any]) -> Callable[[], Any]:
    """The CLI's call with its output dropped; what it imports is imported now, outside the timing."""
    import orbax.checkpoint  # noqa: F401
    import tensorstore  # noqa: F401

    import inspector.diff_report  # noqa: F401
    import loaders.checkpoint  # noqa: F401
    import loaders.stream_readers  # noqa: F401
    import loaders.streaming  # noqa: F401
    import loaders.weights  # noqa: F401

    def run() -> Any:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return fn()
    return run


@workload("values-diff")
def values_diff(case: Case) -> Workload:
    """``diff LEFT RIGHT --values`` (the CLI's code path, in process) against restoring both with Orbax
    and comparing every array with numpy (max |a − b| and ``np.allclose``)."""
    directory = Path(case.param("dir")).resolve()
    left, right = str(directory / "left"), str(directory / "right")
    if case.impl == "ours":
        from inspector.__main__ import main

        def check() -> dict[str, Any]:
            import contextlib
            import io
            import json

            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                main(["diff", left, right, "--values", "--format", "json"])
            bad = [e["left"]["path"] for e in json.loads(out.getvalue())["entries"] if e["status"] != "match"]
            return {"mismatches": ", ".join(bad)}
        return Workload(_quietly(lambda: main(["diff", left, right, "--values"])), ARRAYS, warmup=False, check=check)
    if case.impl == "orbax":
        import numpy as np
        import orbax.checkpoint as ocp

        def run() -> Any:
            checkpointer = ocp.StandardCheckpointer()
            try:
                a, b = checkpointer.restore(left), checkpointer.restore(right)
            finally:
                checkpointer.close()
            return {k: (float(np.abs(a[k] - b[k]).max()), bool(np.allclose(a[k], b[k]))) for k in a}
        return Workload(run, ARRAYS, warmup=False)
    raise _unknown(case)


@workload("values-show")
def values_show(case: Case) -> Workload:
    """``show DIR --values`` of a 1 GiB Orbax checkpoint against reading every array whole with
    TensorStore (decompression only) and a plain sequential read of its files."""
    directory = Path(case.param("dir")).resolve() / "left"
    if case.impl == "ours":
        from inspector.__main__ import main

        return Workload(_quietly(lambda: main(["show", str(directory), "--values"])), ARRAYS, warmup=False)
    if case.impl == "tensorstore":
        import tensorstore as ts

        def run() -> Any:
            base = {"driver": "file", "path": str(directory) + "/"}
            stores = [ts.open({"driver": "zarr", "kvstore": {"driver": "ocdbt", "base": base, "path": f"w{i:02d}"}},
                              open=True, read=True).result() for i in range(ARRAYS)]
            return [store.read().result().shape for store in stores]
        return Workload(run, ARRAYS, warmup=False)
    if case.impl == "read":
        return Workload(lambda: _read_files(directory), ARRAYS, warmup=False)
    raise _unknown(case)


@workload("values-safetensors")
def values_safetensors(case: Case) -> Workload:
    """``show FILE.safetensors --values`` against a plain sequential read of the file."""
    path = Path(case.param("dir")).resolve()
    if case.impl == "ours":
        from inspector.__main__ import main

        return Workload(_quietly(lambda: main(["show", str(path), "--values"])), ARRAYS, warmup=False)
    if case.impl == "read":
        return Workload(lambda: _read_files(path), ARRAYS, warmup=False)
    raise _unknown(case)


def _read_files(root: Path) -> int:
    """Every byte of a file or of the files under a folder, in 16 MiB reads into one buffer."""
    buffer = bytearray(16 << 20)
    total = 0
    for file in sorted(root.rglob("*")) if root.is_dir() else [root]:
        if file.is_file():
            with open(file, "rb", buffering=0) as f:
                while got := f.readinto(buffer):
                    total += got
    return total


# --- rendering -----------------------------------------------------------------------------------

@workload("treescope")
def treescope_(case: Case) -> Workload:
    """The treescope view the app shows against treescope rendering the whole model.

    Beyond ``ui.treeview.WHOLE_MODEL_LIMIT`` variables the app renders only the module holding the
    selected variable (the first row by default); below it both sides render the same thing.
    """
    import treescope

    from inspector.normalize import flatten_variables
    from ui import treeview

    model = _nnx_model(case.size)
    records = [r for r, _ in flatten_variables(model)]
    if case.impl == "ours":
        path = () if len(records) <= treeview.WHOLE_MODEL_LIMIT else records[0].path[:-1]
        target = treeview.subtree(model, path)
        return Workload(lambda: treescope.render_to_html(target, ignore_exceptions=True), len(records))
    if case.impl == "treescope":
        return Workload(lambda: treescope.render_to_html(model, ignore_exceptions=True), len(records))
    raise _unknown(case)


@workload("app")
def app(case: Case) -> Workload:
    """The app's first render (AppTest, cold process) against a page that only imports jax and flax.

    Both scripts import jax and flax themselves, so the ratio is the app's own cost: loading the
    model, its tables, charts and tree view.
    """
    from streamlit.testing.v1 import AppTest

    from bench.sizes import VARIABLES_PER_BLOCK, blocks_for

    blocks = blocks_for(case.size)
    if case.impl == "ours":
        spec = f"{SPEC}:blocks_nnx_{blocks}"
        sys.argv = ["app.py", "--left", spec, "--right", spec, "--root", str(ROOT)]
        script = ROOT / "app.py"
    elif case.impl == "streamlit":
        script = ROOT / "bench" / "minimal_page.py"
    else:
        raise _unknown(case)
    if "jax" in sys.modules:
        raise RuntimeError("jax was imported before the first render, which must include importing it")
    test = AppTest.from_file(str(script), default_timeout=600)

    def check() -> dict[str, Any]:
        problems = [str(e.value) for e in test.exception] + [str(e.value) for e in test.error]
        return {"problems": problems[:3]}
    return Workload(test.run, blocks * VARIABLES_PER_BLOCK, once=True, warmup=False, check=check)


# --- forward-pass trace (dataflow alignment) -----------------------------------------------------

@workload("trace-linen")
def trace_linen(case: Case) -> Workload:
    """N Linen blocks with example inputs: our trace (``loaders.trace``) vs the abstract build."""
    return _trace(case, lambda: __import__("bench.models", fromlist=["blocks_linen"]).blocks_linen(case.size),
                  case.size * _variables_per_block())


@workload("trace-nnx")
def trace_nnx(case: Case) -> Workload:
    """N NNX blocks given example inputs: our trace vs our abstract build (flax alone is quadratic)."""
    def build():
        import jax.numpy as jnp

        from bench import models

        return models.blocks_nnx(case.size), (jnp.ones((1, models.FEATURES)),)

    return _trace(case, build, case.size * _variables_per_block())


@workload("trace-llama")
def trace_llama(case: Case) -> Workload:
    """The Llama-7B-like Linen model with a token batch (the NNX twin has no forward pass)."""
    from bench.models import LLAMA_7B, llama_linen

    return _trace(case, llama_linen, LLAMA_7B.variables)


def _variables_per_block() -> int:
    from bench.sizes import VARIABLES_PER_BLOCK

    return VARIABLES_PER_BLOCK


def _trace(case: Case, factory: Callable[[], Any], variables: int) -> Workload:
    """``ours``: trace the forward pass of the abstract source; ``abstract``: build that source."""
    from loaders.source import from_factory

    def build():
        return from_factory(f"bench:{case.workload}:{case.size}", factory, abstract=True)

    if case.impl == "abstract":
        return Workload(build, variables, warmup=False)
    if case.impl == "ours":
        from loaders.trace import trace_source

        src = build()

        def check() -> dict[str, Any]:
            return {"traced": len(trace_source(src).flow.uses)}

        return Workload(lambda: trace_source(src), variables, warmup=False, check=check)
    raise _unknown(case)
