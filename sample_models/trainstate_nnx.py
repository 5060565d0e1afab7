"""TrainState, NNX form: ``nnx.Linear(784, 10)`` split into a TrainState subclass."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from flax.training import train_state

from inspector.example import Inputs, NnxExample


class TrainState(train_state.TrainState):
    other_variables: nnx.State


def create_state(model: nnx.Module) -> TrainState:
    model.train()  # set deterministic=False
    graphdef, params, other_variables = nnx.split(model, nnx.Param, ...)
    return TrainState.create(apply_fn=graphdef.apply, params=params,
                             other_variables=other_variables, tx=optax.adam(1e-3))


def example() -> NnxExample:
    return NnxExample(build=lambda: nnx.Linear(784, 10, rngs=nnx.Rngs(0)),
                      infer=Inputs((jnp.ones((1, 784)),)), wrap=create_state)


@jax.jit
def train_step(state, inputs, labels):
    def loss_fn(params, other_variables):
        logits, (graphdef, new_state) = state.apply_fn(params, other_variables)(inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.grad(loss_fn)(state.params, state.other_variables)
    state = state.apply_gradients(grads=grads)
    return state
