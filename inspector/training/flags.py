"""Put a Linen model in training mode: find its train flag, or take the user's ``--train-arg``.

Linen has no ``model.train()``: a module learns it is training from a call argument or an
attribute, by convention ``train``/``training`` (True) or ``deterministic`` (False). The flag is
looked for on the top module's ``__call__`` and dataclass fields; ``--train-arg NAME=JSON`` sets
any other argument or attribute (``is_training=true``, ``mode="train"``).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn

from inspector.errors import PortError, did_you_mean
from inspector.example import Inputs

# The conventional names and the value that means "training".
TRAIN_FLAGS = {"train": True, "training": True, "deterministic": False}


def parse_train_args(texts: Sequence[str]) -> dict[str, Any]:
    """``NAME=JSON`` strings as a dict.

    >>> parse_train_args(["is_training=true", 'mode="train"'])
    {'is_training': True, 'mode': 'train'}
    """
    out = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise PortError(f"--train-arg {text!r} is not NAME=JSON; write it like --train-arg is_training=true")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise PortError(f"--train-arg {text!r}: {value!r} is not JSON; write true/false, a number, "
                            "or a quoted string such as '\"train\"'") from None
    return out


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """The module and inputs that run in training mode, and which flags were set how."""

    module: nn.Module
    inputs: Inputs
    flags: tuple[str, ...]  # "training=True (call argument)", ...


def train_mode(module: nn.Module, inputs: Inputs, train_args: Mapping[str, Any] | None = None) -> TrainSetup:
    """The module and inputs with the train flags set (``train_args`` if given, else the conventions)."""
    params = _call_parameters(module)
    fields = {f.name for f in dataclasses.fields(module) if f.init and f.name not in ("parent", "name")}
    wanted = dict(train_args) if train_args else {n: v for n, v in TRAIN_FLAGS.items() if n in params or n in fields}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    call: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for name, value in wanted.items():
        if name in params and params[name].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                        inspect.Parameter.VAR_KEYWORD):
            call[name] = value
        elif name in fields:
            attrs[name] = value
        elif takes_kwargs:
            call[name] = value
        else:
            known = list(params) + sorted(fields)
            raise PortError(f"--train-arg {name}: {type(module).__name__} has no call argument or attribute "
                            f"named {name!r}{did_you_mean(name, known)} (it has: {', '.join(known) or 'none'})")
    if call:
        sig = inspect.Signature([p for p in params.values()])
        try:
            bound = sig.bind_partial(*inputs.args, **inputs.kwargs)
        except TypeError:
            bound = None
        if bound is not None:
            for name, value in call.items():
                if name in params and params[name].kind is not inspect.Parameter.VAR_KEYWORD:
                    bound.arguments[name] = value
                else:
                    bound.arguments.setdefault(_var_kwargs(params), {})[name] = value
            inputs = Inputs(tuple(bound.args), dict(bound.kwargs))
        else:
            inputs = Inputs(inputs.args, {**inputs.kwargs, **call})
    if attrs:
        module = module.clone(**attrs)
    flags = tuple(f"{n}={v!r} (call argument)" for n, v in call.items()) + \
        tuple(f"{n}={v!r} (attribute)" for n, v in attrs.items())
    return TrainSetup(module, inputs, flags)


def _call_parameters(module: nn.Module) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(module.__call__).parameters)
    except (TypeError, ValueError):
        return {}


def _var_kwargs(params: Mapping[str, inspect.Parameter]) -> str:
    return next(n for n, p in params.items() if p.kind is inspect.Parameter.VAR_KEYWORD)


def missing_flag_error(module: nn.Module, layers: Sequence[str]) -> PortError:
    shown = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
    return PortError(f"{type(module).__name__} uses {shown}, but its train flag cannot be found: no call "
                     "argument or attribute named train, training or deterministic; say how to put it in training "
                     "mode with --train-arg NAME=JSON (repeatable; in the app, the train flags box), "
                     "e.g. --train-arg is_training=true")
