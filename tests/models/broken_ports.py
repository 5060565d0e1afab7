"""A Linen MLP and NNX ports of it, each broken in one planted way (test fixtures)."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(256)(x))
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(10)(x)


def linen():
    return MLP(), (jnp.ones((1, 784)),), {}


class TransposedLinear(nnx.Module):
    """A port that stores the kernel as (out, in), as PyTorch does."""

    def __init__(self, din, dout, rngs):
        self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (dout, din)))
        self.bias = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...]


class Port(nnx.Module):
    def __init__(self, rngs, *, widths=(256, 128), bias2=True, dtype3=jnp.float32, first=None,
                 extra=False, skip_second=False):
        self.linear1 = (first or nnx.Linear)(784, widths[0], rngs=rngs)
        if extra:
            self.extra = nnx.Linear(widths[0], widths[0], rngs=rngs)
        if not skip_second:
            self.linear2 = nnx.Linear(widths[0], widths[1], use_bias=bias2, rngs=rngs)
        self.linear3 = nnx.Linear(widths[1], 10, param_dtype=dtype3, rngs=rngs)


def good():
    return Port(nnx.Rngs(0))


def missing_bias():
    return Port(nnx.Rngs(0), bias2=False)


def wrong_width():
    return Port(nnx.Rngs(0), widths=(256, 100))


def wrong_dtype():
    return Port(nnx.Rngs(0), dtype3=jnp.bfloat16)


def transposed():
    return Port(nnx.Rngs(0), first=TransposedLinear)


def extra_layer():
    return Port(nnx.Rngs(0), extra=True)


def missing_layer():
    return Port(nnx.Rngs(0), skip_second=True)


