"""TrainState, Linen form: ``nn.Dense(10)`` with params and an Adam optimizer in a TrainState."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from inspector.example import Inputs, LinenExample


def create_state(model: nn.Module, params) -> train_state.TrainState:
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-3))


def example() -> LinenExample:
    sample_x = jnp.ones((1, 784))
    model = nn.Dense(features=10)
    return LinenExample(model, init=Inputs((sample_x,)), infer=Inputs((sample_x,)),
                        wrap=lambda variables: create_state(model, variables["params"]))


@jax.jit
def train_step(key, state, inputs, labels):
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, inputs, rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.grad(loss_fn)(state.params)
    state = state.apply_gradients(grads=grads)
    return state
