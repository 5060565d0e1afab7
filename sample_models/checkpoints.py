"""Write the samples as Orbax checkpoints: ``python -m sample_models.checkpoints OUTDIR [--force]``.

Checkpoint binaries are not committed; this command makes them, by real Orbax, in every layout
the inspector reads::

    OUTDIR/<sample>_linen/           StandardCheckpointer: the Linen variables from ``model.init``
    OUTDIR/<sample>_nnx/             StandardCheckpointer: ``nnx.state(model)``
    OUTDIR/train_linen/1/items/      CheckpointManager: a Linen TrainState (``params/params/...``,
                                     Adam ``opt_state``, int32 ``step``) after one update
    OUTDIR/train_nnx/1/items/        CheckpointManager: ``{'model': ..., 'optimizer': ...}`` of
                                     ``nnx.Optimizer(model, optax.adam(...), wrt=nnx.Param)``
    OUTDIR/steps/{0,1,2}/default/    CheckpointManager with three steps of the same NNX training

The two training checkpoints hold the same model (the ``block`` sample) in both forms, so they
align weight for weight and moment for moment.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from flax.training import train_state

from sample_models import SAMPLES

TRAINING = ("train_linen", "train_nnx", "steps")
ITEM = "items"
LEARNING_RATE = 1e-3


def linen_variables(name: str) -> dict[str, Any]:
    """The variables ``model.init`` gives the Linen form of sample ``name`` (what users save)."""
    from loaders.build import init_linen

    example = SAMPLES[name].module("linen").example()
    variables, _ = init_linen(example.module, example.init)
    return variables


def nnx_model(name: str) -> nnx.Module:
    """The NNX form of sample ``name``, built concretely."""
    return SAMPLES[name].module("nnx").example().build()


def write_standard(path: Path, tree: Any) -> Path:
    """One ``StandardCheckpointer`` directory."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path.absolute(), tree)
        checkpointer.wait_until_finished()
    return path


def write_steps(root: Path, states: dict[int, Any], item: str) -> Path:
    """A ``CheckpointManager`` root with one step per entry of ``states``, each in item ``item``."""
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(root.absolute(), item_names=(item,)) as manager:
        for step, state in states.items():
            manager.save(step, args=ocp.args.Composite(**{item: ocp.args.StandardSave(state)}))
        manager.wait_until_finished()
    return root


def linen_train_state(steps: int = 1) -> train_state.TrainState:
    """A Linen TrainState as large projects keep it: ``params`` is the whole variables dict."""
    example = SAMPLES["block"].module("linen").example()
    variables = linen_variables("block")
    state = train_state.TrainState.create(apply_fn=example.module.apply, params=variables,
                                          tx=optax.adam(LEARNING_RATE))
    x = example.infer.args[0]

    @jax.jit
    def update(state: train_state.TrainState) -> train_state.TrainState:
        loss = lambda v: jnp.mean(state.apply_fn(v, x, training=False) ** 2)  # noqa: E731
        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    for _ in range(steps):
        state = update(state)
    return state


def nnx_training(steps: int) -> Callable[[], dict[str, Any]]:
    """The block sample with an Adam ``nnx.Optimizer``, updated ``steps`` times; returns a function
    giving the training state to save after each further update."""
    example = SAMPLES["block"].module("nnx").example()
    model = example.build()
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)
    x = example.infer.args[0]

    def update() -> None:
        model.eval()  # no dropout: a deterministic loss
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        optimizer.update(model, grads)
        model.train()

    for _ in range(steps):
        update()

    def state_after_update() -> dict[str, Any]:
        update()
        return {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}

    return state_after_update


def write_all(outdir: str | Path, *, force: bool = False) -> list[Path]:
    """Write every sample checkpoint under ``outdir``; returns the paths written."""
    out = Path(outdir)
    names = [f"{n}_{form}" for n in SAMPLES for form in ("linen", "nnx")] + list(TRAINING)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SystemExit(f"error: {str(out)!r} is not empty; choose a new directory or pass --force "
                             f"to replace the sample checkpoints in it")
        for name in names:
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SAMPLES:
        written.append(write_standard(out / f"{name}_linen", linen_variables(name)))
        _, state = nnx.split(nnx_model(name))
        written.append(write_standard(out / f"{name}_nnx", state))
    written.append(write_steps(out / "train_linen", {1: linen_train_state()}, ITEM))
    written.append(write_steps(out / "train_nnx", {1: nnx_training(0)()}, ITEM))
    later = nnx_training(0)
    written.append(write_steps(out / "steps", {step: later() for step in (0, 1, 2)}, "default"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_models.checkpoints",
                                     description="Write the sample models as Orbax checkpoints.")
    parser.add_argument("outdir", metavar="OUTDIR", help="directory to create (must be empty)")
    parser.add_argument("--force", action="store_true", help="replace sample checkpoints already in OUTDIR")
    args = parser.parse_args(argv)
    for path in write_all(args.outdir, force=args.force):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
