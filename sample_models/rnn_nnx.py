"""Transforms, NNX form: an RNN that ``nnx.scan``s its RNNCell over the sequence axis."""

import jax
import jax.numpy as jnp
from flax import nnx

from inspector.example import Inputs, NnxExample


class RNNCell(nnx.Module):
    def __init__(self, input_size, hidden_size, rngs):
        self.linear = nnx.Linear(hidden_size + input_size, hidden_size, rngs=rngs)
        self.hidden_size = hidden_size

    def __call__(self, carry, x):
        x = jnp.concatenate([carry, x], axis=-1)
        x = self.linear(x)
        x = jax.nn.relu(x)
        return x, x

    def initial_state(self, batch_size: int):
        return jnp.zeros((batch_size, self.hidden_size))


class RNN(nnx.Module):
    def __init__(self, input_size: int, hidden_size: int, rngs: nnx.Rngs):
        self.hidden_size = hidden_size
        self.cell = RNNCell(input_size, self.hidden_size, rngs=rngs)

    def __call__(self, x):
        scan_fn = lambda carry, cell, x: cell(carry, x)  # noqa: E731
        carry = self.cell.initial_state(x.shape[0])
        carry, y = nnx.scan(
            scan_fn, in_axes=(nnx.Carry, None, 1), out_axes=(nnx.Carry, 1)
        )(carry, self.cell, x)
        return y


def example() -> NnxExample:
    x = jnp.ones((3, 12, 32))
    return NnxExample(build=lambda: RNN(x.shape[2], 64, rngs=nnx.Rngs(0)), infer=Inputs((x,)))
