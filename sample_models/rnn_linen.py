"""Transforms, Linen form: an RNN that ``nn.scan``s an RNNCell over the sequence axis."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from inspector.example import Inputs, LinenExample


class RNNCell(nn.Module):
    hidden_size: int

    @nn.compact
    def __call__(self, carry, x):
        x = jnp.concatenate([carry, x], axis=-1)
        x = nn.Dense(self.hidden_size)(x)
        x = jax.nn.relu(x)
        return x, x

    def initial_state(self, batch_size: int):
        return jnp.zeros((batch_size, self.hidden_size))


class RNN(nn.Module):
    hidden_size: int

    @nn.compact
    def __call__(self, x):
        rnn = nn.scan(
            RNNCell, variable_broadcast="params",
            split_rngs={"params": False}, in_axes=1, out_axes=1,
        )(self.hidden_size)
        carry = rnn.initial_state(x.shape[0])
        carry, y = rnn(carry, x)
        return y


def example() -> LinenExample:
    x = jnp.ones((3, 12, 32))
    return LinenExample(RNN(64), init=Inputs(kwargs={"x": x}), infer=Inputs(kwargs={"x": x}))
