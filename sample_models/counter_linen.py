"""Collections and variable types, Linen form: Dense, BatchNorm and a ``counter`` collection."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from inspector.example import Inputs, LinenExample


class Block(nn.Module):
    features: int

    def setup(self):
        self.dense = nn.Dense(self.features)
        self.batchnorm = nn.BatchNorm(momentum=0.99)
        self.count = self.variable("counter", "count", lambda: jnp.zeros((), jnp.int32))

    @nn.compact
    def __call__(self, x, training: bool):
        x = self.dense(x)
        x = self.batchnorm(x, use_running_average=not training)
        self.count.value += 1
        x = jax.nn.relu(x)
        return x


def example() -> LinenExample:
    x = jax.random.normal(jax.random.key(0), (2, 4))
    return LinenExample(Block(4), init=Inputs((x,), {"training": True}),
                        infer=Inputs((x,), {"training": False}), mutable=("counter",))
