"""The notebook API: live objects and specs in, frozen results out; the caller's objects untouched."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import pathlib
import runpy
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state

import inspector
from inspector import api
from inspector.__main__ import main as cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


class TorchStyleMLP(nnx.Module):
    """Written as a PyTorch user would: layers declared in order, BatchNorm, dropout."""

    def __init__(self, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(8, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.linear2 = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, x):
        return self.linear2(self.dropout(nnx.relu(self.bn(self.linear1(x)))))


class LinenTwin(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(16)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Dropout(0.1, deterministic=not train)(nn.relu(x))
        return nn.Dense(4)(x)


X = jnp.linspace(-1, 1, 24).reshape(3, 8)


def _snapshot(tree):
    def host(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.array(leaf)

    return [host(leaf) for leaf in jax.tree.leaves(tree)]


def _same(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def model():
    return TorchStyleMLP(nnx.Rngs(0))


@pytest.fixture
def variables():
    return LinenTwin().init(jax.random.key(0), X)


def test_every_call_leaves_the_callers_objects_unchanged(model, variables):
    state_before, vars_before = _snapshot(nnx.state(model)), _snapshot(variables)
    keys_before = jax.tree_util.tree_structure(variables)
    inspector.show(model, values=True)
    inspector.show(variables)
    inspector.diff(variables, model, values=True)
    inspector.filter(model, "nnx.BatchStat")
    inspector.split(model, "nnx.Param; ...")
    inspector.port((LinenTwin(), (X,), {}), (model, (X,), {}))
    assert _same(state_before, _snapshot(nnx.state(model)))
    assert _same(vars_before, _snapshot(variables))
    assert jax.tree_util.tree_structure(variables) == keys_before


@pytest.mark.parametrize("make, form, count", [
    (lambda: TorchStyleMLP(nnx.Rngs(0)), "nnx", 10),
    (lambda: nnx.state(TorchStyleMLP(nnx.Rngs(0))), "nnx", 10),
    (lambda: LinenTwin().init(jax.random.key(0), X), "linen", 8),
    (lambda: LinenTwin().init(jax.random.key(0), X)["params"], "linen", 6),
    (lambda: (LinenTwin(), (X,), {}), "linen", 8),
    (lambda: train_state.TrainState.create(apply_fn=None, params=LinenTwin().init(jax.random.key(0), X)["params"],
                                           tx=optax.adam(1e-3)), "linen", None),
], ids=["module", "state", "linen-dict", "bare-params", "example-tuple", "trainstate"])
def test_show_takes_every_live_form(make, form, count):
    result = inspector.show(make())
    assert result.form == form
    if count is not None:
        assert len(result.records) == count
    assert result.to_json()["variables"]
    assert len(result.to_pandas()) == len(result.records)


def test_a_bare_params_tree_is_read_as_the_params_collection():
    params = LinenTwin().init(jax.random.key(0), X)["params"]
    assert {r.collection for r in inspector.show(params).records} == {"params"}


@pytest.mark.parametrize("obj, match", [
    (42, "cannot inspect a builtins.int: pass a spec string"),
    ([1, 2], "cannot inspect a builtins.list"),
    ({}, "empty dict"),
    ("sample:nope:nnx", "nope"),
], ids=["int", "list", "empty-dict", "bad-spec"])
def test_what_cannot_be_inspected_is_named(obj, match):
    with pytest.raises(inspector.InspectorError, match=match):
        inspector.show(obj)


@pytest.mark.parametrize("kwargs, match", [
    ({"rtol": -1}, "tolerance"), ({"atol": float("nan")}, "tolerance"),
    ({"rules": 3}, "rules must be"), ({"rules": "/no/such/rules.json"}, "cannot be read"),
    ({"values": True, "abstract": True}, "drop one"),
], ids=["negative-rtol", "nan-atol", "rules-type", "rules-path", "values-abstract"])
def test_bad_arguments_raise_the_projects_error(kwargs, match, model, variables):
    with pytest.raises(inspector.InspectorError, match=match):
        inspector.diff(variables, model, **kwargs)


def test_diff_and_the_cli_give_the_same_json():
    result = inspector.diff("sample:counter:linen", "sample:counter:nnx")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["diff", "sample:counter:linen", "sample:counter:nnx", "--format", "json"])
    assert code == (0 if result.ok else 1)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(result.to_json()))


def test_rules_as_a_dict_a_json_string_or_a_file(tmp_path, variables, model):
    rules = {"pairs": {"Dense_0": "linear1", "Dense_1": "linear2", "BatchNorm_0": "bn"}}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    for given in (rules, json.dumps(rules), str(path), path):
        result = inspector.diff(variables, model, rules=given)
        assert result.ok, result.to_text()


def test_port_proves_a_live_pair_and_catches_a_wrong_one(model):
    assert inspector.port((LinenTwin(), (X,), {}), (model, (X,), {})).ok

    class OtherActivation(TorchStyleMLP):
        def __call__(self, x):  # another activation: same weights, other function
            return self.linear2(self.dropout(nnx.tanh(self.bn(self.linear1(x)))))

    result = inspector.port((LinenTwin(), (X,), {}), (OtherActivation(nnx.Rngs(0)), (X,), {}))
    assert not result.ok and "DIFFER" in result.to_text()


def test_split_takes_a_string_or_a_list(model):
    a = inspector.split(model, "nnx.Param; nnx.BatchStat; ...")
    b = inspector.split(model, ["nnx.Param", "nnx.BatchStat", "..."])
    assert a.to_json() == b.to_json() and a.ok
    with pytest.raises(inspector.InspectorError, match="one filter per item"):
        inspector.split(model, ["nnx.Param; ..."])
    assert not inspector.split(model, "nnx.Param").ok  # BatchStat and RNG state left over


def test_html_is_self_contained_and_escaped(model, variables):
    results = (inspector.show(model), inspector.diff(variables, model), inspector.filter(model, "nnx.Param"),
               inspector.split(model, "nnx.Param; ..."), inspector.port((LinenTwin(), (X,), {}), (model, (X,), {})))
    for result in results:
        page = result._repr_html_()
        assert "http" not in page and "<script" not in page and "<link" not in page
        assert "<table>" in page
    assert "&lt;nnx.Module TorchStyleMLP&gt;" in inspector.show(model)._repr_html_()


def test_diff_html_opens_the_modules_that_mismatch():
    class Wider(TorchStyleMLP):
        def __init__(self, rngs):
            super().__init__(rngs)
            self.linear2 = nnx.Linear(16, 5, rngs=rngs)

    result = inspector.diff(TorchStyleMLP(nnx.Rngs(0)), Wider(nnx.Rngs(0)))
    page = result._repr_html_()
    assert not result.ok and "<details open><summary><code>linear2</code>" in page
    assert "<details><summary><code>linear1</code>" in page


def test_import_inspector_stays_light_and_star_import_keeps_filter():
    code = ("import sys, inspector; assert 'jax' not in sys.modules and 'loaders' not in sys.modules; "
            "ns = {}; exec('from inspector import *', ns); assert 'filter' not in ns and 'diff' in ns; "
            "assert ns['filter'] is filter if 'filter' in ns else True")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


# The package re-exports the API lazily (its module __getattr__; the light import is tested above).
TOP_LAYERS = {"inspector/__main__.py", "inspector/api.py", "inspector/__init__.py"}


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "inspector").rglob("*.py")
                                        if str(p.relative_to(ROOT)) not in TOP_LAYERS))
def test_the_core_imports_neither_loaders_nor_the_api(path):
    bad = {m for m in _imports(ROOT / path)
           if m.split(".")[0] in ("loaders", "streamlit", "ui") or m in ("inspector.api", "inspector.__main__")}
    assert not bad, f"{path} imports {sorted(bad)}"


def test_the_notebook_example_runs_top_to_bottom(capsys):
    namespace = runpy.run_path(str(ROOT / "examples" / "notebook.py"))
    assert namespace["result"].ok and namespace["port"].ok
    assert "nnx.split(model, nnx.Param, ...)" in capsys.readouterr().out


def test_api_functions_default_like_the_cli():
    import inspect

    assert inspect.signature(api.diff).parameters["rtol"].default == 1e-5
    assert inspect.signature(api.diff).parameters["atol"].default == 1e-8
    assert inspect.signature(api.port).parameters["atol"].default == 1e-5


def test_port_with_the_training_step_check(model):
    result = inspector.port((LinenTwin(), (X,), {}), (model, (X,), {}), train=True, steps=2)
    assert result.ok, result.to_text()
    assert result.to_json()["train"]["loss"]["allclose"]
    assert "TRAINS THE SAME" in result.to_text()


def test_convert_writes_a_checkpoint_the_readme_recipe_restores(tmp_path):
    import orbax.checkpoint as ocp

    from sample_models import SAMPLES

    linen = SAMPLES["block"].module("linen").example()
    variables = linen.module.init(jax.random.key(1), *linen.init.args, **linen.init.kwargs)
    before = _snapshot(variables)
    plan_only = inspector.convert(variables, "sample:block:nnx")
    assert plan_only.ok and plan_only.out is None and not (tmp_path / "ckpt").exists()
    result = inspector.convert(variables, "sample:block:nnx", out=str(tmp_path / "ckpt"))
    assert result.ok and result.out and "<table>" in result._repr_html_()
    assert _same(before, _snapshot(variables))

    make_model = SAMPLES["block"].module("nnx").example().build
    graphdef, abstract = nnx.split(nnx.eval_shape(make_model))
    model = nnx.merge(graphdef, ocp.StandardCheckpointer().restore(tmp_path / "ckpt", abstract))
    model.eval()
    expected = linen.module.apply(variables, *linen.infer.args, **linen.infer.kwargs)
    np.testing.assert_allclose(model(*linen.infer.args), expected, atol=1e-5)

    # the same trained weights through the port check
    assert inspector.port("sample:block:linen", "sample:block:nnx", weights=variables).ok


def test_convert_refuses_a_live_target():
    with pytest.raises(inspector.InspectorError, match="pass it as a spec"):
        inspector.convert({"params": {}}, TorchStyleMLP(nnx.Rngs(0)))


def test_axis_rules_as_a_list_a_json_string_or_a_file(tmp_path):
    from tests.models import lm1b_sharding

    left, right = "tests/models/lm1b_sharding.py:linen", "tests/models/lm1b_sharding.py:nnx_port"
    assert inspector.diff(left, right).ok  # no rules: names not comparable, an info line each
    path = tmp_path / "axis.json"
    path.write_text(json.dumps(lm1b_sharding.WRONG_RULES))
    for given in (lm1b_sharding.WRONG_RULES, json.dumps(lm1b_sharding.WRONG_RULES), str(path)):
        result = inspector.diff(left, right, axis_rules=given)
        assert sorted(e.left.full_name for e in result.mismatches) == [
            "params/wi/bias", "params/wi/kernel", "params/wo/kernel"]
    assert inspector.diff(left, right, axis_rules=lm1b_sharding.RULES).ok
    with pytest.raises(inspector.InspectorError, match="axis_rules must be"):
        inspector.diff(left, right, axis_rules=3)
