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
