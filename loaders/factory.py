"""User factories: ``path/to/file.py:FACTORY`` and ``package.module:FACTORY``.

A factory is a zero-argument callable returning an ``nnx.Module``, an ``nnx.State``, a Linen
variables dict, a Flax ``TrainState``, ``(module, args, kwargs)`` (Linen or NNX, with example
inputs), or an ``inspector.example`` object. Files are loaded by location under a module name
unique to their path, so ``old/model.py:make`` and ``new/model.py:make`` never collide. What user
code prints goes to stderr; when it raises, the message names the innermost frame of the user's
own file, and the original exception stays attached as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from inspector.errors import InspectorError, SourceError, UserCodeError, did_you_mean


def load_file_factory(path: str, attr: str, *, spec: str) -> tuple[Callable[[], Any], ModuleType]:
    """Import a model file by location and return its factory and module."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SourceError(f"source {spec!r}: file {path!r} not found "
                          f"(looked in {file.resolve().parent}); check the path")
    real = file.resolve()
    name = f"_inspector_user_{hashlib.sha1(str(real).encode()).hexdigest()[:12]}_{_ident(real.stem)}"
    module_spec = importlib.util.spec_from_file_location(name, real)
    if module_spec is None or module_spec.loader is None:
        raise SourceError(f"source {spec!r}: {path!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    with user_code(spec, str(real)), _on_path(real.parent):
        module_spec.loader.exec_module(module)
    return _factory(module, attr, spec=spec, where=file.name), module


def load_module_factory(module_name: str, attr: str, *, spec: str) -> tuple[Callable[[], Any], ModuleType]:
    """Import ``package.module`` normally and return its factory and module."""
    try:
        with user_code(spec, None):
            module = importlib.import_module(module_name)
    except UserCodeError as err:
        if isinstance(err.__cause__, ModuleNotFoundError) and err.__cause__.name and \
                module_name.startswith(err.__cause__.name):
            raise SourceError(f"source {spec!r}: no module named {err.__cause__.name!r}; check the "
                              "name, or give a file as 'path/to/file.py:FACTORY'") from None
        raise
    return _factory(module, attr, spec=spec, where=module_name), module


def call_factory(factory: Callable[[], Any], *, spec: str, file: str | None) -> Any:
    """Call a factory with its prints sent to stderr and its errors named by the user's frame."""
    with user_code(spec, file):
        return factory()


def _factory(module: ModuleType, attr: str, *, spec: str, where: str) -> Callable[[], Any]:
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
        raise SourceError(f"source {spec!r}: {where} has no factory {attr!r}"
                          f"{did_you_mean(attr, names)} (it defines: {', '.join(names) or 'nothing callable'})")
    if not callable(factory):
        raise SourceError(f"source {spec!r}: {attr!r} in {where} is {_a(type(factory).__name__)}, "
                          "not a function; name a zero-argument function that builds the model")
    try:
        required = [p.name for p in inspect.signature(factory).parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if required and not isinstance(factory, type):
        raise SourceError(f"source {spec!r}: factory {attr!r} takes arguments ({', '.join(required)}); "
                          "it must take none: wrap it, e.g. def make_model(): return Model(...)")
    return factory


@contextlib.contextmanager
def user_code(spec: str, file: str | None) -> Iterator[None]:
    """Run user code: stdout goes to stderr; an exception becomes a ``UserCodeError``."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except InspectorError:
        raise
    except (Exception, SystemExit) as err:  # user code may raise anything, even SystemExit
        raise UserCodeError(f"source {spec!r} failed: {_where(err, file)}; fix the model code "
                            "(the command line's --traceback shows the whole traceback)") from err


def _where(err: BaseException, file: str | None) -> str:
    """``make_model.py:12: ValueError: message``, from the innermost frame in the user's file."""
    frames = traceback.extract_tb(err.__traceback__)
    if isinstance(err, SyntaxError) and err.filename:
        return f"{Path(err.filename).name}:{err.lineno}: SyntaxError: {err.msg}"
    mine = [f for f in frames if file is not None and Path(f.filename) == Path(file)]
    if not mine:
        mine = [f for f in frames if "site-packages" not in f.filename and
                not f.filename.startswith(str(Path(__file__).resolve().parent.parent))]
    head = f"{Path(mine[-1].filename).name}:{mine[-1].lineno}: " if mine else ""
    return f"{head}{type(err).__name__}: {err}"


@contextlib.contextmanager
def _on_path(directory: Path) -> Iterator[None]:
    """Let a model file import its sibling modules while it loads."""
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _a(noun: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
