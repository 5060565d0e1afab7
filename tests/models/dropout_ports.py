"""A Linen MLP with named layers and a Dropout, and NNX ports that name everything differently and
keep an nnx.Dropout (RNG state only) between the layers (test fixtures)."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

X = jnp.ones((2, 4))


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(8, name="fc1")(x)
        x = nn.Dropout(0.1, deterministic=True)(x)
        return nn.Dense(3, name="fc2")(x)


class Port(nnx.Module):
    def __init__(self, *, dtype=jnp.float32, bias=True):
        rngs = nnx.Rngs(0)
        self.enc = nnx.Linear(4, 8, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.proj = nnx.Linear(8, 3, param_dtype=dtype, use_bias=bias, rngs=rngs)


def linen():
    return MLP(), (X,), {}


def good():
    return Port()


def bf16():
    return Port(dtype=jnp.bfloat16)


def no_bias():
    return Port(bias=False)
