"""NNX models that differ from a saved one in the ways that decide an Orbax restore (test fixtures)."""

import jax.numpy as jnp
from flax import nnx


class Net(nnx.Module):
    def __init__(self, *, width=8, dtype=jnp.float32, extra=False, skip=False):
        rngs = nnx.Rngs(0)
        self.first = nnx.Linear(4, width, param_dtype=dtype, rngs=rngs)
        if not skip:
            self.second = nnx.Linear(width, 2, rngs=rngs)
        if extra:
            self.third = nnx.Linear(2, 2, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)


def base():
    return Net()


def bf16():
    return Net(dtype=jnp.bfloat16)


def extra():
    return Net(extra=True)


def missing():
    return Net(skip=True)


def wider():
    return Net(width=16)
