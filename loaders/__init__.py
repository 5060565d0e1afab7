"""Loaders turn a source spec into a ``LoadedSource``: live objects plus typed records.

>>> src = load_source("sample:block:nnx", abstract=True)
>>> src.form, [r.name for r in src.records if r.type == "Param"][:2]
('nnx', ['block/linear/bias', 'block/linear/kernel'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inspector.errors import SourceError
from loaders.source import LoadedSource
from loaders.spec import SourceSpec, parse_spec

__all__ = ["LoadedSource", "SourceSpec", "load_source", "parse_spec"]


def load_source(text: str, *, abstract: bool = False, values: bool = False, budget: int | None = None,
                progress: Callable[[Any], None] | None = None) -> LoadedSource:
    """Load any source spec (see ``loaders.spec``); raises ``SourceError`` on bad input.

    With ``values`` every record carries the statistics of its value (``record.stats``), read by
    the streaming engine (``loaders.streaming``) within ``budget`` bytes (default 256 MiB),
    reporting to ``progress``. ``abstract`` changes nothing for a checkpoint or weight file: they
    are read from metadata anyway.
    """
    spec = parse_spec(text)
    if spec.kind == "checkpoint":  # a directory: Orbax checkpoint, legacy checkpoints, model folder
        from loaders.weights import load_folder

        src = load_folder(spec.target, step=spec.step, values=False, spec=spec.text)
    elif spec.kind == "weights":
        from loaders.weights import load_weights

        src = load_weights(spec.target, values=False, spec=spec.text)
    else:
        if values and abstract:
            raise SourceError(f"source {spec.text!r}: an abstract build has shapes but no values; "
                              "drop --abstract to compute value statistics")
        src = _load_live(spec, abstract=abstract)
    if not values:
        return src
    from loaders.streaming import DEFAULT_BUDGET, source_with_stats

    return source_with_stats(src, budget=budget or DEFAULT_BUDGET, progress=progress)


def _load_live(spec: SourceSpec, *, abstract: bool) -> LoadedSource:
    from loaders import factory, source
    from sample_models import SAMPLES

    if spec.kind == "sample":
        code = SAMPLES[spec.target].module(spec.attr)
        return source.from_example(spec.text, code.example(), abstract=abstract, code=code)
    if spec.kind == "file":
        fn, code = factory.load_file_factory(spec.target, spec.attr, spec=spec.text)
        return source.from_factory(spec.text, fn, abstract=abstract, code=code, file=code.__file__)
    fn, code = factory.load_module_factory(spec.target, spec.attr, spec=spec.text)
    return source.from_factory(spec.text, fn, abstract=abstract, code=code, file=code.__file__)
