"""Basic Module, Linen form: a Block (Dense + Dropout) inside Model(256, 10), run on (1, 784)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from inspector.example import Inputs, LinenExample


class Block(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x, training: bool):
        x = nn.Dense(self.features)(x)
        x = nn.Dropout(0.5, deterministic=not training)(x)
        x = jax.nn.relu(x)
        return x


class Model(nn.Module):
    dmid: int
    dout: int

    @nn.compact
    def __call__(self, x, training: bool):
        x = Block(self.dmid)(x, training)
        x = nn.Dense(self.dout)(x)
        return x


def example() -> LinenExample:
    sample_x = jnp.ones((1, 784))
    return LinenExample(Model(256, 10), init=Inputs((sample_x,), {"training": False}),
                        infer=Inputs((sample_x,), {"training": False}))


def make_train_step(model: Model):
    @jax.jit
    def train_step(key, params, inputs, labels):
        def loss_fn(params):
            logits = model.apply({"params": params}, inputs, training=True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        grads = jax.grad(loss_fn)(params)
        params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
        return params

    return train_step
