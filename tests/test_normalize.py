"""Normalization of the awkward leaves: typed keys, tuples, boxes, abstract leaves, int keys."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from inspector.normalize import flatten_variables


def records(obj):
    return {(r.collection, r.name): r for r, _ in flatten_variables(obj)}


def test_typed_prng_keys():
    rs = records(nnx.state(nnx.Dropout(0.5, rngs=nnx.Rngs(0))))
    key = rs[None, "rngs/key"]
    assert key.type == "RngKey" and key.dtype == "key<fry>" and key.shape == () and key.nbytes == 8
    assert key.is_rng and rs[None, "rngs/count"].is_rng


def test_tuple_intermediates_give_one_record_per_element():
    rs = records({"intermediates": {"h": (jnp.ones((1, 2)), jnp.ones((3,)))}})
    assert rs["intermediates", "h/0"].shape == (1, 2) and rs["intermediates", "h/1"].shape == (3,)
    assert rs["intermediates", "h/1"].type == "Intermediate"


def test_partitioned_boxes_keep_their_names():
    class D(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
            return nn.Dense(3, kernel_init=init)(x)

    rs = records(D().init(jax.random.key(0), jnp.ones((1, 4))))
    kernel = rs["params", "Dense_0/kernel"]
    assert kernel.shape == (4, 3) and kernel.sharding.names == ("embed", "mlp")


def test_nnx_sharding_names():
    with nnx.use_eager_sharding(False):
        layer = nnx.Linear(4, 8, kernel_init=nnx.with_partitioning(
            nnx.initializers.lecun_normal(), ("embed", "mlp")), rngs=nnx.Rngs(0))
    assert records(layer)[None, "kernel"].sharding.names == ("embed", "mlp")


def test_abstract_leaves():
    abstract = nnx.eval_shape(lambda: nnx.Linear(4, 8, rngs=nnx.Rngs(0)))
    rs = records(abstract)
    assert rs[None, "kernel"].shape == (4, 8) and rs[None, "kernel"].nbytes == 128


def test_list_and_dict_keys():
    class M(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(1, 1, rngs=rngs)])
            self.named = nnx.Dict({"a": nnx.Linear(1, 2, rngs=rngs)})

    rs = flatten_variables(M(nnx.Rngs(0)))
    paths = [r.path for r, _ in rs]
    assert ("layers", 0, "kernel") in paths and ("named", "a", "bias") in paths


def test_python_scalars_and_unregistered_collections():
    rs = records({"params": {"w": jnp.ones(2)}, "counter": {"count": 3}})
    assert rs["counter", "count"].type == "counter" and rs["counter", "count"].dtype == "int32"


def test_records_are_frozen_and_picklable():
    import pickle

    (rec, _), *_ = flatten_variables(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    assert pickle.loads(pickle.dumps(rec)) == rec
    try:
        rec.shape = (1,)
    except AttributeError:
        pass
    else:
        raise AssertionError("records must be frozen")
