"""User factories: ``path/to/file.py:FACTORY`` and ``package.module:FACTORY``.

A factory is a zero-argument callable returning an ``nnx.Module``, an ``nnx.State``, a Linen
variables dict, a Flax ``TrainState``, ``(module, args, kwargs)`` (Linen or NNX, with example
inputs), or an ``inspector.example`` object. Files are loaded by location under a module name
unique to their path, so ``old/model.py:make`` and ``new/model.py:make`` never collide. What user
code prints goes to stderr; when it raises, the message names the innermost frame of the user's
own file, and the original exception stays attached as ``__cause__``.

A model file may import modules beside it (``from helpers import block``), at its top or inside the
factory: while the tool runs the file's code (loading it, calling the factory, building the model)
its folder is on ``sys.path``. Afterwards the sibling modules are taken back out of ``sys.modules``
and kept per folder, so ``a/helpers.py`` and ``b/helpers.py`` never collide (two app sessions, or
a diff of two model folders), and each folder gets its own modules back next time. Runs of user
code that need this are serialized: ``sys.path`` is shared by the whole process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import io
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from inspector.errors import InspectorError, SourceError, UserCodeError, did_you_mean

_SIBLINGS_LOCK = threading.RLock()  # user code runs one at a time: it may touch sys.path and stdout


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
    _KEPT.pop(str(real.parent), None)  # loading the file again imports its siblings afresh
    with user_code(spec, str(real)):
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


OUTPUT_LIMIT = 64 * 1024  # characters of a model's own output shown per run; the rest is counted


class _BoundedOutput(io.TextIOBase):
    """Passes the first ``limit`` characters written to ``target``, then only counts them."""

    def __init__(self, target: Any, limit: int = OUTPUT_LIMIT) -> None:
        self.target, self.left, self.dropped = target, limit, 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        shown = text[:max(self.left, 0)]
        if shown:
            self.target.write(shown)
        self.left -= len(shown)
        self.dropped += len(text) - len(shown)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def fileno(self) -> int:  # for code that asks (isatty checks, faulthandler): the real stderr's
        return self.target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.target, "encoding", "utf-8")


@contextlib.contextmanager
def user_code(spec: str, file: str | None) -> Iterator[None]:
    """Run user code: what it prints goes to stderr, cut at ``OUTPUT_LIMIT`` characters; an
    exception, ``SystemExit`` (``sys.exit``) or ``KeyboardInterrupt`` it raises becomes a
    ``UserCodeError``, so one bad model never ends the command line's run or an app session.

    Runs are serialized: ``sys.stdout``/``sys.stderr`` and ``sys.path`` belong to the whole
    process. With ``file``, the file's folder is on ``sys.path`` meanwhile (``sibling_imports``).
    ``os._exit`` and native crashes cannot be caught.
    """
    siblings = sibling_imports(Path(file).resolve().parent) if file else contextlib.nullcontext()
    with _SIBLINGS_LOCK:
        output = _BoundedOutput(sys.stderr)
        try:
            with siblings, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                yield
        except InspectorError:
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as err:  # user code may raise anything
            fix = "fix the model code"
            if file is not None and not _in_file(err, file):  # e.g. example inputs the call does not take
                fix = ("it did not stop in your file: check the example inputs the factory returns "
                       "(module, args, kwargs) against the model's __call__")
            raise UserCodeError(f"source {spec!r} failed: {_where(err, file)}; {fix} "
                                "(the command line's --traceback shows the whole traceback)") from err
        finally:
            if output.dropped:
                print(f"[{output.dropped:,} more characters printed by {spec!r} not shown]", file=sys.stderr)


def _in_file(err: BaseException, file: str) -> bool:
    """Whether any frame of the error's traceback ran the user's code: the file or a module beside it."""
    if isinstance(err, SyntaxError):
        return True
    folder = Path(file).resolve().parent
    return any(Path(f.filename).resolve().parent == folder for f in traceback.extract_tb(err.__traceback__))


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
    return f"{head}{type(err).__name__}" + (f": {err}" if str(err) else "")


_ACTIVE: list[str] = []  # folders on sys.path now, innermost last
_KEPT: dict[str, dict[str, ModuleType]] = {}  # per folder: its sibling modules, out of sys.modules


@contextlib.contextmanager
def sibling_imports(directory: Path) -> Iterator[None]:
    """Let code from ``directory`` import the modules beside it, without leaving them importable.

    On entry the folder goes first on ``sys.path`` and the sibling modules it imported before are
    put back; on exit every module imported from the folder leaves ``sys.modules`` again (kept for
    next time), and whatever they shadowed comes back.
    """
    entry = str(directory)
    with _SIBLINGS_LOCK:
        if entry in _ACTIVE:  # nested (the factory builds its example): already set up
            yield
            return
        before = set(sys.modules)
        kept = _KEPT.setdefault(entry, {})
        shadowed = {name: sys.modules[name] for name in kept if name in sys.modules}
        sys.modules.update(kept)
        sys.path.insert(0, entry)
        _ACTIVE.append(entry)
        try:
            yield
        finally:
            _ACTIVE.remove(entry)
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
            for name in [n for n in sys.modules if n not in before or n in kept]:
                module = sys.modules[name]
                if _lives_in(module, directory):
                    kept[name] = module
                    del sys.modules[name]
            sys.modules.update(shadowed)


def _lives_in(module: ModuleType, directory: Path) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        return Path(file).resolve().is_relative_to(directory)
    except OSError:
        return False


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _a(noun: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
