"""Source specs: one string names a model source for the CLI, the app and the tests.

Parsed in this order, so no spec is ambiguous:

1. ``sample:NAME:linen`` / ``sample:NAME:nnx`` — a bundled guide example;
2. ``path/to/file.py:FACTORY`` — anything ending in ``.py:NAME``;
3. ``package.module:FACTORY`` — a module imported normally;
4. an existing directory, optionally ``DIR@STEP`` — an Orbax checkpoint, a folder of legacy flax
   ``checkpoint_<N>`` saves, or a Hugging Face model folder (``loaders.weights`` tells them apart);
5. a weight file, by its name: ``*.msgpack``, ``*.safetensors``, ``*.npz``, ``checkpoint_<N>``, or
   the ``*.index.json`` of a sharded set.

>>> parse_spec("sample:block:nnx")
SourceSpec(text='sample:block:nnx', kind='sample', target='block', attr='nnx', step=None)
>>> parse_spec("models/old.py:make").kind, parse_spec("pkg.mod:make").target
('file', 'pkg.mod')
>>> parse_spec("bert/flax_model.msgpack").kind
'weights'

"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

from inspector.errors import SourceError, did_you_mean
from loaders.formats import KNOWN, format_of_name
from sample_models import FORMS, SAMPLES

SpecKind = Literal["sample", "file", "module", "checkpoint", "weights"]

_FILE = re.compile(r"^(?P<path>.+\.py):(?P<attr>[A-Za-z_]\w*)$")
_MODULE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*)$")
_STEP = re.compile(r"^(?P<path>.+)@(?P<step>\d+)$")

SPEC_HELP = ("a source is 'sample:NAME:linen|nnx', 'path/to/file.py:FACTORY', "
             "'package.module:FACTORY', a checkpoint or model folder, or a weight file "
             "(.msgpack, .safetensors, .npz, checkpoint_<N>)")


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """A parsed source string: what kind of source, and where."""

    text: str
    kind: SpecKind
    target: str
    attr: str | None = None
    step: int | None = None


def parse_spec(text: str, *, base: str | None = None) -> SourceSpec:
    """Parse a source string, or raise ``SourceError`` saying what a source looks like.

    Relative paths are looked up under ``base`` (default: the working directory).
    """
    text = text.strip()
    at = (lambda p: _Probe(Path(base) / p)) if base else (lambda p: _Probe(Path(p)))
    if not text:
        raise SourceError(f"empty source: {SPEC_HELP}")
    if text.startswith("sample:"):
        return _parse_sample(text)
    if m := _FILE.match(text):
        return SourceSpec(text, "file", m["path"], m["attr"])
    if m := _MODULE.match(text):
        return SourceSpec(text, "module", m["module"], m["attr"])
    m = _STEP.match(text)
    if m and at(m["path"]).is_dir():
        return SourceSpec(text, "checkpoint", m["path"], step=int(m["step"]))
    if m and at(m["path"]).is_file():
        raise SourceError(f"source {text!r}: {m['path']!r} is a file, and only a folder of checkpoints has "
                          "steps; drop @" + m["step"])
    if at(text).is_dir():
        return SourceSpec(text, "checkpoint", text)
    if format_of_name(text) is not None:
        return SourceSpec(text, "weights", text)
    if text.endswith(".py"):
        raise SourceError(f"source {text!r} names a file but no factory: write "
                          f"'{text}:make_model' (the zero-argument function that builds the model)")
    if ":" not in text and not at(text).exists():
        raise SourceError(f"source {text!r} does not exist: no such directory, and not a spec "
                          f"({SPEC_HELP})")
    if at(text).is_file():
        raise SourceError(f"source {text!r} is a file this tool does not read: expected {KNOWN}, "
                          "or 'path/to/file.py:FACTORY'")
    raise SourceError(f"source {text!r} is not understood: {SPEC_HELP}")


class _Probe:
    """``is_dir``/``is_file``/``exists`` that say False for a name the OS refuses (too long, NUL)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _ask(self, question: str) -> bool:
        try:
            return getattr(self.path, question)()
        except (OSError, ValueError):
            return False

    def is_dir(self) -> bool:
        return self._ask("is_dir")

    def is_file(self) -> bool:
        return self._ask("is_file")

    def exists(self) -> bool:
        return self._ask("exists")


def _parse_sample(text: str) -> SourceSpec:
    parts = text.split(":")
    if len(parts) != 3:
        raise SourceError(f"source {text!r}: a sample is 'sample:NAME:linen' or 'sample:NAME:nnx' "
                          f"(samples: {', '.join(SAMPLES)})")
    _, name, form = parts
    if name not in SAMPLES:
        raise SourceError(f"source {text!r}: unknown sample {name!r}{did_you_mean(name, SAMPLES)} "
                          f"(samples: {', '.join(SAMPLES)})")
    if form not in FORMS:
        raise SourceError(f"source {text!r}: unknown form {form!r}{did_you_mean(form, FORMS)} "
                          "(use 'linen' or 'nnx')")
    return SourceSpec(text, "sample", name, form)
