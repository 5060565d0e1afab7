"""Intermediates, Linen form: ``sow`` an activation, captured by ``apply(mutable=['intermediates'])``."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from inspector.example import Inputs, LinenExample


class Model(nn.Module):
    hidden: int
    out: int

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.hidden)(x)
        self.sow("intermediates", "hidden", x)
        x = jax.nn.relu(x)
        return nn.Dense(self.out)(x)


def example() -> LinenExample:
    x = jnp.ones((1, 8))
    return LinenExample(Model(16, 4), init=Inputs((x,)), infer=Inputs((x,)),
                        capture=("intermediates",))
