"""Ports whose structure is right but whose computation is not (test fixtures)."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, training: bool = False):
        x = nn.relu(nn.Dense(16)(x))
        x = nn.Dropout(0.5, deterministic=not training)(x)
        x = nn.relu(nn.Dense(16)(x))
        return nn.Dense(4)(x)


def linen():
    return MLP(), (jnp.linspace(-1, 1, 32).reshape(2, 16),), {"training": True}


class Port(nnx.Module):
    def __init__(self, rngs, *, swapped=False, transposed=False, activation=nnx.relu):
        self.linear1 = nnx.Linear(16, 16, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.linear2 = nnx.Linear(16, 16, rngs=rngs)
        self.linear3 = nnx.Linear(16, 4, rngs=rngs)
        self.swapped = swapped
        self.transposed = transposed
        self.activation = activation

    def __call__(self, x):
        first, second = (self.linear2, self.linear1) if self.swapped else (self.linear1, self.linear2)
        x = self.activation(first(x))
        x = self.dropout(x)
        if self.transposed:  # a port that reads the kernel as (out, in), as PyTorch stores it
            x = nnx.relu(x @ second.kernel[...].T + second.bias[...])
        else:
            x = nnx.relu(second(x))
        return self.linear3(x)


def good():
    return Port(nnx.Rngs(0))


def swapped():
    return Port(nnx.Rngs(0), swapped=True)


def transposed():
    return Port(nnx.Rngs(0), transposed=True)


def wrong_activation():
    """Every weight in its place, and a gelu where Linen has a relu: no alignment can fix this one."""
    return Port(nnx.Rngs(0), activation=nnx.gelu)


def state_only():
    return nnx.state(Port(nnx.Rngs(0)))
