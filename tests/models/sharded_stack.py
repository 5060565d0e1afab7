"""Layers stacked on a leading axis and annotated for a 2×4 mesh (test fixtures).

Linen stacks with ``nn.scan(..., metadata_params={nn.PARTITION_NAME: 'layers'})``, which puts the
``layers`` name in front of every Variable's logical names. The NNX port stacks with ``nnx.vmap``:
with ``transform_metadata={nnx.PARTITION_NAME: 'layers'}`` it does the same; without it the names
stay one short of the rank, a mistake flax accepts under ``nnx.use_eager_sharding(False)``.
"""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

from inspector.example import Inputs, LinenExample, NnxExample
from inspector.sharding import MeshPlan

LAYERS, WIDTH = 3, 16
MESH = MeshPlan(axes=(("data", 2), ("model", 4)), rules=(("layers", None), ("embed", "data"), ("mlp", "model")))


class Layer(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        dense = nn.Dense(WIDTH, name="linear",
                         kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp")),
                         bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)))
        return dense(x), None


class Stack(nn.Module):
    @nn.compact
    def __call__(self, x):
        scan = nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=LAYERS,
                       metadata_params={nn.PARTITION_NAME: "layers"})
        return scan(name="layers")(x, None)[0]


def linen() -> LinenExample:
    x = jnp.ones((1, WIDTH))
    return LinenExample(Stack(), init=Inputs((x,)), infer=Inputs((x,)), mesh=MESH)


class NnxLayer(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(
            WIDTH, WIDTH, rngs=rngs,
            kernel_init=nnx.with_partitioning(nnx.initializers.lecun_normal(), ("embed", "mlp")),
            bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("mlp",)))


class NnxStack(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, transform_metadata: dict):
        @nnx.split_rngs(splits=LAYERS)
        @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata=transform_metadata)
        def create(rngs: nnx.Rngs) -> NnxLayer:
            return NnxLayer(rngs)

        self.layers = create(rngs)


def nnx_good() -> NnxExample:
    return NnxExample(build=lambda: NnxStack(nnx.Rngs(0), {nnx.PARTITION_NAME: "layers"}), infer=Inputs(),
                      mesh=MESH)


def nnx_dropped() -> NnxExample:
    def build() -> NnxStack:
        with nnx.use_eager_sharding(False):
            return NnxStack(nnx.Rngs(0), {})

    return NnxExample(build=build, infer=Inputs(), mesh=MESH)
