"""Intermediates, NNX form: ``sow`` an activation, captured by ``nnx.capture(model, nnx.Intermediate)``."""

import jax
import jax.numpy as jnp
from flax import nnx

from inspector.example import Inputs, NnxExample


class Model(nnx.Module):
    def __init__(self, din: int, hidden: int, out: int, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(din, hidden, rngs=rngs)
        self.linear2 = nnx.Linear(hidden, out, rngs=rngs)

    def __call__(self, x):
        x = self.linear1(x)
        self.sow(nnx.Intermediate, "hidden", x)
        x = jax.nn.relu(x)
        return self.linear2(x)


def example() -> NnxExample:
    return NnxExample(build=lambda: Model(8, 16, 4, rngs=nnx.Rngs(0)),
                      infer=Inputs((jnp.ones((1, 8)),)), capture=(nnx.Intermediate,))
