"""Run training steps on a Linen model and on its NNX port, dropout switched off on both sides.

Both sides compute the same label-free loss (``mean_square``: Σ over the float output leaves of
mean(leaf²); ``sum_square``: of sum(leaf²)), its gradient with respect to every parameter, the
non-parameter state after the step, and the parameters after ``steps`` plain SGD steps.

Dropout is the one training behaviour switched off, so the comparison is deterministic: Linen's
``nn.Dropout.__call__`` is intercepted and returns its input (passing ``deterministic=True``
instead raises when the Dropout was built with ``deterministic``); NNX's Dropouts get
``deterministic=True`` after ``model.train()``, which resets them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.errors
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from inspector.errors import PortError
from inspector.example import Inputs
from inspector.normalize import flatten_variables

LOSSES = ("mean_square", "sum_square")
# Up to this many steps run op by op: compiling a whole model's training step costs far more on CPU
# than running it a few times (bench ``port-train``); longer runs compile the step once.
EAGER_STEPS = 3
_NOT_STATE = frozenset({"intermediates", "perturbations"})


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One side's training run, values keyed like the records (``(collection, path)``)."""

    loss: float
    gradients: dict[tuple, np.ndarray]
    state: dict[tuple, np.ndarray]  # non-parameter state after the first step (no RNG state)
    weights: dict[tuple, np.ndarray]  # parameters after every step
    # Whether the training-mode output changes with the dropout key (randomness not switched off);
    # computed on demand, since it costs another forward pass.
    is_random: Callable[[], bool] = lambda: False


def loss_of(output: Any, kind: str) -> jax.Array:
    """The label-free loss of an output tree.

    >>> float(loss_of((jnp.array([1.0, 3.0]), jnp.array(2)), "mean_square"))
    5.0
    """
    reduce = jnp.mean if kind == "mean_square" else jnp.sum
    leaves = [x for x in jax.tree.leaves(output)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
    if not leaves:
        raise PortError("the model's output has no float array to build a loss from; the training check "
                        "needs a float output (logits, activations)")
    return sum(reduce(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32)))) for x in leaves)


def _compiled(fn: Callable, steps: int) -> Callable:
    return jax.jit(fn) if steps > EAGER_STEPS else fn


def _keyed(tree: Any) -> dict[tuple, np.ndarray]:
    return {r.key: np.asarray(v) for r, v in flatten_variables(tree)
            if not r.is_rng and r.type not in ("Intermediate", "Perturbation")}


def _skip_dropout(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
        return args[0] if args else kwargs["inputs"]
    return next_fun(*args, **kwargs)


def linen_layers_needing_flag(module: nn.Module, variables: Mapping[str, Any], inputs: Inputs) -> list[str]:
    """The BatchNorm and Dropout layers one (shape-only) forward pass goes through, by path."""
    found: list[str] = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, (nn.BatchNorm, nn.Dropout)) and context.method_name == "__call__":
            name = f"{type(context.module).__name__} {'/'.join(context.module.path) or '(top)'}"
            if name not in found:
                found.append(name)
        return next_fun(*args, **kwargs)

    weights = {c: v for c, v in variables.items() if c not in _NOT_STATE}
    mutable = [c for c in weights if c != "params"] or False

    def forward():
        with nn.intercept_methods(record):
            return module.apply(weights, *inputs.args, **inputs.kwargs, mutable=mutable,
                                rngs={"dropout": jax.random.key(0)})

    try:
        jax.eval_shape(forward)
    except Exception:  # noqa: BLE001 - the real run reports the user's error with its context
        pass
    return found


def train_linen(module: nn.Module, variables: Mapping[str, Any], inputs: Inputs, *, loss: str = "mean_square",
                steps: int = 1, lr: float = 1e-2) -> StepResult:
    """``jax.value_and_grad`` over ``params``, every other collection mutable, Dropout intercepted."""
    weights = {c: v for c, v in variables.items() if c not in _NOT_STATE}
    params = weights.get("params", {})
    rest = {c: v for c, v in weights.items() if c != "params"}
    mutable = list(rest)

    def forward(params, rest, key):
        with nn.intercept_methods(_skip_dropout):
            out = module.apply({"params": params, **rest}, *inputs.args, **inputs.kwargs,
                               mutable=mutable or False, rngs={"dropout": key})
        out, updates = out if mutable else (out, {})
        return loss_of(out, loss), (updates, out)

    step = _compiled(jax.value_and_grad(forward, has_aux=True), steps)
    key = jax.random.key(0)
    try:
        (value, (updates, out)), grads = step(params, rest, key)
    except flax.errors.InvalidRngError as err:
        raise PortError(f"the Linen model asks for randomness in training mode beyond dropout ({err}); the "
                        "training check provides only a 'dropout' stream") from None
    first = StepResult(float(value), _keyed({"params": grads}), _keyed(dict(updates)), {})
    first_params, first_rest = params, rest

    def is_random() -> bool:
        (_, (_, other)), _ = step(first_params, first_rest, jax.random.key(1))
        return not all(np.array_equal(np.asarray(a), np.asarray(b))
                       for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(other)))

    for i in range(steps):
        if i:
            (_, (updates, _)), grads = step(params, rest, key)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        rest = {**rest, **updates}
    return dataclasses.replace(first, weights=_keyed({"params": params}), is_random=is_random)


def train_nnx(model: nnx.Module, inputs: Inputs, *, capture: tuple = (), loss: str = "mean_square",
              steps: int = 1, lr: float = 1e-2) -> StepResult:
    """``model.train()`` (Dropouts then deterministic), ``jax.value_and_grad`` over the ``nnx.Param``s."""
    model = nnx.clone(model)
    model.train()
    model.set_attributes(nnx.Dropout, deterministic=True, raise_if_not_found=False)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def forward(params, rest):
        m = nnx.merge(graphdef, params, rest, copy=True)
        if capture:
            out = nnx.capture(m, *capture)(*inputs.args, **inputs.kwargs)[0]
        else:
            out = m(*inputs.args, **inputs.kwargs)
        _, _, new_rest = nnx.split(m, nnx.Param, ...)
        return loss_of(out, loss), new_rest

    step = _compiled(jax.value_and_grad(forward, has_aux=True), steps)
    (value, new_rest), grads = step(params, rest)
    first = StepResult(float(value), _keyed(grads), _keyed(new_rest), {})
    for i in range(steps):
        if i:
            (_, new_rest), grads = step(params, rest)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        rest = new_rest
    return dataclasses.replace(first, weights=_keyed(params))
