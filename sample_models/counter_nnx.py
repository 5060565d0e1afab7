"""Collections and variable types, NNX form: Linear, BatchNorm and a ``Counter`` Variable type."""

import jax
import jax.numpy as jnp
from flax import nnx

from inspector.example import Inputs, NnxExample


class Counter(nnx.Variable):
    pass


class Block(nnx.Module):
    def __init__(self, in_features: int, out_features: int, rngs: nnx.Rngs):
        self.linear = nnx.Linear(in_features, out_features, rngs=rngs)
        self.batchnorm = nnx.BatchNorm(num_features=out_features, momentum=0.99, rngs=rngs)
        self.count = Counter(jnp.array(0))

    def __call__(self, x):
        x = self.linear(x)
        x = self.batchnorm(x)
        self.count[...] += 1
        x = jax.nn.relu(x)
        return x


def example() -> NnxExample:
    return NnxExample(build=lambda: Block(4, 4, rngs=nnx.Rngs(0)),
                      infer=Inputs((jax.random.normal(jax.random.key(0), (2, 4)),)))
