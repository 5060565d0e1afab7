"""Scan over layers, NNX form: blocks created by ``nnx.vmap`` and run by ``nnx.scan``.

``create_block`` splits the RNG streams, so every layer's Dropout holds its own key, stacked on
the layer axis. The guide also decorates ``forward`` with ``nnx.split_rngs``; under flax 0.12 that
splits the already stacked keys again and fails (``fold_in accepts a single key``), so the scan
simply maps over the stacked keys.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from inspector.example import Inputs, NnxExample


class Block(nnx.Module):
    def __init__(self, input_dim, features, rngs):
        self.linear = nnx.Linear(input_dim, features, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x: jax.Array):  # No need to require a second input!
        x = self.linear(x)
        x = self.dropout(x)
        x = jax.nn.relu(x)
        return x  # No need to return a second output!


class MLP(nnx.Module):
    def __init__(self, features, num_layers, rngs):
        @nnx.split_rngs(splits=num_layers)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create_block(rngs: nnx.Rngs):
            return Block(features, features, rngs=rngs)

        self.blocks = create_block(rngs)
        self.num_layers = num_layers

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def forward(x, model):
            x = model(x)
            return x

        return forward(x, self.blocks)


def example() -> NnxExample:
    return NnxExample(build=lambda: MLP(64, num_layers=5, rngs=nnx.Rngs(0)),
                      infer=Inputs((jnp.ones((1, 64)),)))


@nnx.jit
def train_step(model, inputs, labels):
    def loss_fn(model):
        logits = model(inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = nnx.grad(loss_fn)(model)
    _, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    nnx.update(model, nnx.merge_state(params, rest))
