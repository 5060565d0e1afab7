"""Scan over layers, Linen form: MLP(64, num_layers=5), its Block stacked by ``nn.scan``.

The guide splits only the ``params`` stream; ``dropout`` is split too so that the model can train
(each layer then draws its own dropout mask).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from inspector.example import Inputs, LinenExample


class Block(nn.Module):
    features: int
    training: bool

    @nn.compact
    def __call__(self, x, _):
        x = nn.Dense(self.features)(x)
        x = nn.Dropout(0.5)(x, deterministic=not self.training)
        x = jax.nn.relu(x)
        return x, None


class MLP(nn.Module):
    features: int
    num_layers: int

    @nn.compact
    def __call__(self, x, training: bool):
        ScanBlock = nn.scan(
            Block, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
            length=self.num_layers)
        y, _ = ScanBlock(self.features, training)(x, None)
        return y


def example() -> LinenExample:
    x = jnp.ones((1, 64))
    return LinenExample(MLP(64, num_layers=5), init=Inputs(kwargs={"x": x, "training": True}),
                        infer=Inputs(kwargs={"x": x, "training": False}))


def make_train_step(model: MLP):
    @jax.jit
    def train_step(key, params, inputs, labels):
        def loss_fn(params):
            logits = model.apply({"params": params}, inputs, training=True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        grads = jax.grad(loss_fn)(params)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)

    return train_step
