"""Training-step port check: does the port train the same, not only infer the same?

A port can match Linen exactly in inference and still train differently: a BatchNorm momentum
convention, a ``use_running_average``/``deterministic`` flag wired to the wrong mode, a
``stop_gradient`` left in. ``check_training`` runs one step (and ``steps`` SGD steps) on both
sides from the converted weights and compares, through the alignment, the loss, every gradient,
every non-parameter state and the weights after the steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from flax import nnx

from inspector.diffing import DiffEntry, Tolerance
from inspector.errors import PortError
from inspector.example import Inputs, LinenExample, NnxExample
from inspector.training.compare import (
    LossDiff,
    TrainDiff,
    TrainReport,
    compare_loss,
    compare_mapped,
    linen_value,
    moved_entries,
)
from inspector.training.flags import TRAIN_FLAGS, missing_flag_error, parse_train_args, train_mode
from inspector.training.steps import LOSSES, linen_layers_needing_flag, loss_of, train_linen, train_nnx

__all__ = ["LOSSES", "TRAIN_FLAGS", "LossDiff", "TrainDiff", "TrainReport", "check_training", "compare_mapped",
           "linen_value", "loss_of", "moved_entries", "parse_train_args", "train_mode"]


def check_training(linen: LinenExample, variables: Mapping[str, Any], model: nnx.Module,
                   nnx_example: NnxExample | None, entries: Sequence[DiffEntry], *,
                   tolerance: Tolerance = Tolerance(1e-5, 1e-5), loss: str = "mean_square", steps: int = 1,
                   lr: float = 1e-2, train_args: Mapping[str, Any] | None = None) -> TrainReport:
    """Train both sides from the same weights (``model`` holds the converted ones) and compare."""
    if loss not in LOSSES:
        raise PortError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
    if steps < 1:
        raise PortError(f"--steps must be at least 1, got {steps}")
    setup = train_mode(linen.module, linen.infer, train_args)
    notes = [f"Linen training mode: {', '.join(setup.flags)}"] if setup.flags else []
    if not setup.flags:
        layers = linen_layers_needing_flag(linen.module, variables, linen.infer)
        if layers:
            raise missing_flag_error(linen.module, layers)
    a = train_linen(setup.module, variables, setup.inputs, loss=loss, steps=steps, lr=lr)
    inputs = nnx_example.infer if nnx_example is not None and (nnx_example.infer.args or nnx_example.infer.kwargs) \
        else Inputs(linen.infer.args)
    b = train_nnx(model, inputs, capture=nnx_example.capture if nnx_example else (), loss=loss, steps=steps, lr=lr)

    moved = moved_entries(entries)
    grads = [e for e in moved if e.left.key in a.gradients or e.right.key in b.gradients]
    state = [e for e in moved if e not in grads]
    report = TrainReport(
        loss=compare_loss(a.loss, b.loss, tolerance),
        gradients=tuple(compare_mapped(grads, a.gradients, b.gradients, tolerance,
                                       missing_left="not a parameter in Linen (no gradient there)",
                                       missing_right="not an nnx.Param in NNX (no gradient there)")),
        state=tuple(compare_mapped(state, a.state, b.state, tolerance,
                                   missing_left="Linen does not update it in training",
                                   missing_right="NNX does not keep it after the step")),
        weights=tuple(compare_mapped(grads, a.weights, b.weights, tolerance,
                                     missing_left="not a parameter in Linen", missing_right="not an nnx.Param in NNX")),
        steps=steps, lr=lr, loss_kind=loss, notes=tuple(notes))
    if not report.loss.allclose and a.is_random():
        notes.append("the Linen model's training-mode output changes with the dropout key: randomness "
                     "drawn by hand (jax.random with make_rng) is not switched off like nn.Dropout, so the "
                     "differences may come from it")
    elif not report.loss.allclose:
        notes.append("the training-mode losses differ; nn.Dropout and nnx.Dropout are switched off on both "
                     "sides, dropout written by hand with jax.random is not: if the NNX model has some, part "
                     "of the difference may come from it")
    flags = _nnx_call_flags(model)
    if flags and not report.ok:
        notes.append(f"the NNX model's __call__ takes {', '.join(flags)}: model.train() sets module attributes, "
                     "not call arguments, so a layer wired to that argument stays in inference mode here")
    return TrainReport(report.loss, report.gradients, report.state, report.weights, steps, lr, loss, tuple(notes))


def _nnx_call_flags(model: nnx.Module) -> list[str]:
    try:
        params = inspect.signature(model.__call__).parameters
    except (TypeError, ValueError):
        return []
    return [name for name in params if name in TRAIN_FLAGS or name in ("use_running_average", "is_training")]
