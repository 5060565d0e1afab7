"""User factories: every accepted return type, abstract builds, and name isolation."""

from __future__ import annotations

import jax
import pytest

from loaders import load_source

FACTORIES = {
    "nnx-module": ("""
        from flax import nnx
        def make_model():
            return nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    """, "nnx", {"kernel": ("Param", (4, 3)), "bias": ("Param", (3,))}),
    "linen-tuple": ("""
        import jax.numpy as jnp
        import flax.linen as nn
        class MLP(nn.Module):
            @nn.compact
            def __call__(self, x, training: bool):
                x = nn.Dense(5)(x)
                x = nn.Dropout(0.5, deterministic=not training)(x)
                return nn.BatchNorm(use_running_average=not training)(x)
        def make_model():
            return MLP(), (jnp.ones((2, 3)),), {"training": True}
    """, "linen", {"params/Dense_0/kernel": ("Param", (3, 5)), "params/Dense_0/bias": ("Param", (5,)),
                   "params/BatchNorm_0/scale": ("Param", (5,)), "params/BatchNorm_0/bias": ("Param", (5,)),
                   "batch_stats/BatchNorm_0/mean": ("BatchStat", (5,)),
                   "batch_stats/BatchNorm_0/var": ("BatchStat", (5,))}),
    "linen-variables": ("""
        import jax, jax.numpy as jnp
        import flax.linen as nn
        def make_model():
            return nn.Dense(2).init(jax.random.key(0), jnp.ones((1, 3)))
    """, "linen", {"params/kernel": ("Param", (3, 2)), "params/bias": ("Param", (2,))}),
    "nnx-state": ("""
        from flax import nnx
        def make_model():
            return nnx.state(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.Param)
    """, "nnx", {"kernel": ("Param", (2, 2)), "bias": ("Param", (2,))}),
    "nnx-tuple": ("""
        import jax.numpy as jnp
        from flax import nnx
        def make_model():
            return nnx.Linear(4, 2, rngs=nnx.Rngs(0)), (jnp.ones((1, 4)),), {}
    """, "nnx", {"kernel": ("Param", (4, 2)), "bias": ("Param", (2,))}),
    "nnx-list": ("""
        from flax import nnx
        class Stack(nnx.Module):
            def __init__(self, rngs):
                self.layers = nnx.List([nnx.Linear(2, 2, rngs=rngs) for _ in range(2)])
        def make_model():
            return Stack(nnx.Rngs(0))
    """, "nnx", {f"layers/{i}/{p}": ("Param", s) for i in range(2)
                 for p, s in (("kernel", (2, 2)), ("bias", (2,)))}),
}


@pytest.mark.parametrize("case", list(FACTORIES), ids=list(FACTORIES))
@pytest.mark.parametrize("abstract", [False, True], ids=["concrete", "abstract"])
def test_factory_results(write_model, case, abstract):
    source, form, expected = FACTORIES[case]
    src = load_source(f"{write_model(source)}:make_model", abstract=abstract)
    assert src.form == form
    assert {r.full_name: (r.type, r.shape) for r in src.records} == expected
    if abstract:
        assert all(isinstance(v, jax.ShapeDtypeStruct) for v in src.values.values())


def test_same_file_name_in_two_folders_does_not_collide(write_model):
    old = write_model("from flax import nnx\ndef make():\n    return nnx.Linear(2, 3, rngs=nnx.Rngs(0))\n",
                      "old/model.py")
    new = write_model("from flax import nnx\ndef make():\n    return nnx.Linear(5, 7, rngs=nnx.Rngs(0))\n",
                      "new/model.py")
    shapes = lambda spec: {r.name: r.shape for r in load_source(spec).records}  # noqa: E731
    assert shapes(f"{old}:make")["kernel"] == (2, 3)
    assert shapes(f"{new}:make")["kernel"] == (5, 7)


def test_model_file_may_import_its_siblings(write_model):
    write_model("WIDTH = 6\n", "pkg/settings.py")
    path = write_model("from flax import nnx\nfrom settings import WIDTH\n"
                       "def make():\n    return nnx.Linear(2, WIDTH, rngs=nnx.Rngs(0))\n", "pkg/model.py")
    assert {r.name: r.shape for r in load_source(f"{path}:make").records}["kernel"] == (2, 6)


@pytest.mark.parametrize("abstract", [False, True], ids=["concrete", "abstract"])
def test_factory_may_import_siblings_inside_and_two_helpers_never_collide(write_model, abstract):
    """``from helpers import build`` inside the factory runs after the file loaded: its folder must
    be on ``sys.path`` then too, and ``a/helpers.py`` must not answer for ``b/helpers.py``."""
    import sys

    specs = []
    for folder, width in (("a", 3), ("b", 7)):
        write_model(f"from flax import nnx\nWIDTH = {width}\n"
                    "def build():\n    return nnx.Linear(2, WIDTH, rngs=nnx.Rngs(0))\n", f"{folder}/helpers.py")
        path = write_model("def make():\n    from helpers import build\n    return build()\n", f"{folder}/model.py")
        specs.append(f"{path}:make")
    for _ in range(2):  # and again, each folder with its own helpers
        widths = [{r.name: r.shape for r in load_source(s, abstract=abstract).records}["bias"] for s in specs]
        assert widths == [(3,), (7,)]
    assert "helpers" not in sys.modules and not any(str(p).endswith(("/a", "/b")) for p in sys.path)


def test_user_variable_types_are_known(write_model):
    path = write_model("""
        import jax.numpy as jnp
        from flax import nnx
        class Counter(nnx.Variable):
            pass
        class Unused(nnx.Variable):
            pass
        class M(nnx.Module):
            def __init__(self):
                self.count = Counter(jnp.array(0))
        def make():
            return M()
    """)
    src = load_source(f"{path}:make")
    assert {"Counter", "Unused"} <= set(src.variable_types)
    assert [r.type for r in src.records] == ["Counter"]


def test_module_spec_imports_normally():
    src = load_source("sample_models.block_nnx:example")
    assert any(r.name == "block/linear/kernel" for r in src.records)


def test_example_inputs_the_model_does_not_take_are_blamed_not_the_model(write_model, cli):
    path = write_model("""
        import jax.numpy as jnp
        import flax.linen as nn
        class M(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(3)(x)
        def make_model():
            return M(), (jnp.ones((2, 4)), jnp.ones(3)), {}
    """)
    code, _, err = cli("show", f"{path}:make_model")
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error:") and "takes 2 positional arguments but 3 were given" in last
    assert "check the example inputs the factory returns (module, args, kwargs)" in last
