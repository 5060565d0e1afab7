"""Loaders turn a source spec into a ``LoadedSource``: live objects plus typed records.

>>> src = load_source("sample:block:nnx", abstract=True)
>>> src.form, [r.name for r in src.records if r.type == "Param"][:2]
('nnx', ['block/linear/bias', 'block/linear/kernel'])
"""

from __future__ import annotations

from loaders.source import LoadedSource
from loaders.spec import SourceSpec, parse_spec

__all__ = ["LoadedSource", "SourceSpec", "load_source", "parse_spec"]


def load_source(text: str, *, abstract: bool = False) -> LoadedSource:
    """Load any source spec (see ``loaders.spec``); raises ``SourceError`` on bad input."""
    from loaders import factory, source
    from sample_models import SAMPLES

    spec = parse_spec(text)
    if spec.kind == "sample":
        code = SAMPLES[spec.target].module(spec.attr)
        return source.from_example(spec.text, code.example(), abstract=abstract, code=code)
    if spec.kind == "file":
        fn, code = factory.load_file_factory(spec.target, spec.attr, spec=spec.text)
        return source.from_factory(spec.text, fn, abstract=abstract, code=code, file=code.__file__)
    if spec.kind == "module":
        fn, code = factory.load_module_factory(spec.target, spec.attr, spec=spec.text)
        return source.from_factory(spec.text, fn, abstract=abstract, code=code, file=code.__file__)
    from loaders.checkpoint import load_checkpoint

    return load_checkpoint(spec, abstract=abstract)
