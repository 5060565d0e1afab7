"""A model together with the example inputs that build and run it.

Linen needs inputs to create variables (``init``) and to run (``apply``), and the two often differ:
the guide initializes its counter example with ``training=True`` and runs it with
``training=False``, and an apply that updates a collection needs ``mutable=[...]``. NNX builds
eagerly and needs inputs only to run. Bundled samples describe themselves with these classes; a
user's factory may return them too, for full control.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
from flax import nnx

from inspector.sharding import MeshPlan


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Positional and keyword arguments of one call."""

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LinenExample:
    """A Linen module with its init and inference inputs.

    ``mutable`` lists the collections inference updates (``counter``, ``batch_stats``);
    ``capture`` the collections an apply adds for inspection (``intermediates``);
    ``wrap`` turns the variables into the object to inspect (e.g. a ``TrainState``);
    ``mesh`` the mesh and logical-axis rules the model is annotated for (see ``loaders.mesh``).
    """

    module: nn.Module
    init: Inputs
    infer: Inputs
    mutable: tuple[str, ...] = ()
    capture: tuple[str, ...] = ()
    wrap: Callable[[Mapping[str, Any]], Any] | None = None
    mesh: MeshPlan | None = None


@dataclasses.dataclass(frozen=True)
class NnxExample:
    """A zero-argument NNX builder with its inference inputs.

    ``build`` is called to create the module (inside ``nnx.eval_shape`` for abstract builds);
    ``capture`` lists Variable types collected by ``nnx.capture`` during one forward pass
    (``nnx.Intermediate``); ``wrap`` turns the module into the object to inspect; ``mesh`` the
    mesh and logical-axis rules the model is annotated for (see ``loaders.mesh``).
    """

    build: Callable[[], nnx.Module]
    infer: Inputs
    capture: tuple[type[nnx.Variable], ...] = ()
    wrap: Callable[[nnx.Module], Any] | None = None
    mesh: MeshPlan | None = None
