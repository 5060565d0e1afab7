"""Parity with flax: what a parsed filter selects equals ``nnx.state(model, <the same filter in flax>)``,
and split groups equal ``nnx.split``'s, over the sample models and a few models written here."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import pytest
from flax import nnx
from flax.nnx import filterlib

from inspector.filters import parse_filter, parse_filters
from inspector.records import format_path
from inspector.splitmerge import merge_roundtrip, select, split_groups, split_line, subject_of, subject_of_source
from loaders import load_source


class Counter(nnx.Variable):
    pass


class LoRA(nnx.Param):
    pass


class Layer(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 3, rngs=rngs)
        self.bn = nnx.BatchNorm(3, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)


class Zoo(nnx.Module):
    """Int keys (nnx.List), RNG streams named like Linen collections, a Param subclass, a user type."""

    def __init__(self):
        rngs = nnx.Rngs(params=0, dropout=1)
        self.layers = nnx.List([Layer(rngs), Layer(rngs)])
        self.rngs = rngs
        self.lora = LoRA(jnp.ones((3, 2)))
        self.count = Counter(jnp.array(0))
        self.cache = nnx.Cache(jnp.zeros(2))


@functools.cache
def source(spec: str):
    return load_source(spec)


@functools.cache
def zoo() -> Zoo:
    return Zoo()


def model_and_subject(spec: str):
    if spec == "zoo":
        return zoo(), None, subject_of(zoo(), variable_types={"Counter": Counter, "LoRA": LoRA})
    src = source(spec)
    return src.model, src.captured, subject_of_source(src)


def parse(text, subject):
    return parse_filter(text, subject.variable_types, collections=subject.collections)


def chosen_paths(subject, parsed, *, captured: bool) -> set:
    """The (path, Variable) pairs whose records ``select`` returned, as flax paths."""
    chosen = set(select(subject, parsed))
    return {v.path for v in subject.variables if v.captured == captured and chosen & set(v.records)}


PARITY = [
    ("sample:block:nnx", "Param", nnx.Param),
    ("sample:block:nnx", "nnx.RngState", nnx.RngState),
    ("sample:block:nnx", "RngKey | RngCount", nnx.Any(nnx.RngKey, nnx.RngCount)),
    ("sample:block:nnx", "'default'", "default"),
    ("sample:block:nnx", "'dropout'", "dropout"),
    ("sample:block:nnx", "'params'", "params"),
    ("sample:block:nnx", "PathContains('block')", nnx.PathContains("block")),
    ("sample:block:nnx", "Param & PathContains('block')", nnx.All(nnx.Param, nnx.PathContains("block"))),
    ("sample:block:nnx", "~Param", nnx.Not(nnx.Param)),
    ("sample:block:nnx", "PathContains('lin', exact=False)", nnx.PathContains("lin", exact=False)),
    ("sample:block:nnx", "PathIn(('linear', 'kernel'), ('block', 'linear', 'bias'))",
     filterlib.PathIn(("linear", "kernel"), ("block", "linear", "bias"))),
    ("sample:block:nnx", "...", ...),
    ("sample:block:nnx", "None", None),
    ("sample:counter:nnx", "BatchStat", nnx.BatchStat),
    ("sample:counter:nnx", "Counter", None),  # the sample's own class, filled in below
    ("sample:counter:nnx", "(Param, BatchStat)", (nnx.Param, nnx.BatchStat)),
    ("sample:counter:nnx", "nnx.All(nnx.Param, nnx.PathContains('batchnorm'))",
     nnx.All(nnx.Param, nnx.PathContains("batchnorm"))),
    ("sample:counter:nnx", "Variable & ~Param & ~BatchStat", nnx.All(nnx.Variable, nnx.Not(nnx.Param),
                                                                     nnx.Not(nnx.BatchStat))),
    ("sample:counter:nnx", "PathContains('mean') | PathContains('var')",
     nnx.Any(nnx.PathContains("mean"), nnx.PathContains("var"))),
    ("sample:counter:nnx", "nnx.OfType(nnx.BatchStat)", nnx.OfType(nnx.BatchStat)),
    ("sample:counter:nnx", "Everything()", nnx.Everything()),
    ("sample:counter:nnx", "Nothing()", nnx.Nothing()),
    ("sample:scan_mlp:nnx", "RngKey", nnx.RngKey),
    ("sample:scan_mlp:nnx", "Param & PathContains('kernel')", nnx.All(nnx.Param, nnx.PathContains("kernel"))),
    ("sample:sow:nnx", "Intermediate", nnx.Intermediate),
    ("sample:sow:nnx", "PathIn(('hidden',))", filterlib.PathIn(("hidden",))),
    ("sample:sow:nnx", "~Intermediate", nnx.Not(nnx.Intermediate)),
    ("sample:rnn:nnx", "PathContains('cell') & ~PathContains('bias')",
     nnx.All(nnx.PathContains("cell"), nnx.Not(nnx.PathContains("bias")))),
    ("sample:autoencoder:nnx", "[PathContains('encoder')]", [nnx.PathContains("encoder")]),
    ("zoo", "'params'", "params"),
    ("zoo", "WithTag('dropout')", nnx.WithTag("dropout")),
    ("zoo", "Param", nnx.Param),
    ("zoo", "LoRA", LoRA),
    ("zoo", "Param & ~LoRA", nnx.All(nnx.Param, nnx.Not(LoRA))),
    ("zoo", "PathContains(0)", nnx.PathContains(0)),
    ("zoo", "PathContains(1) & BatchStat", nnx.All(nnx.PathContains(1), nnx.BatchStat)),
    ("zoo", "PathContains('0')", nnx.PathContains("0")),
    ("zoo", "PathContains('0', exact=False)", nnx.PathContains("0", exact=False)),
    ("zoo", "PathIn(('layers', 0, 'linear', 'kernel'))", filterlib.PathIn(("layers", 0, "linear", "kernel"))),
    ("zoo", "Counter | Cache", nnx.Any(Counter, nnx.Cache)),
    ("zoo", "'cache'", "cache"),
    ("zoo", "RngState & PathContains('rngs')", nnx.All(nnx.RngState, nnx.PathContains("rngs"))),
    ("zoo", "nnx.Not(nnx.Any(Param, RngState))", nnx.Not(nnx.Any(nnx.Param, nnx.RngState))),
]


@pytest.mark.parametrize("spec,text,flax_filter", PARITY, ids=[f"{s}:{t}" for s, t, _ in PARITY])
def test_selection_equals_nnx_state(spec, text, flax_filter):
    model, captured, subject = model_and_subject(spec)
    if text == "Counter" and flax_filter is None:
        flax_filter = subject.variable_types["Counter"]
    parsed = parse(text, subject)
    assert parsed.filter == flax_filter or parsed.filter == tuple(flax_filter)
    expected = {p for p, _ in nnx.to_flat_state(nnx.state(model, flax_filter))}
    assert chosen_paths(subject, parsed, captured=False) == expected
    if captured is not None:
        expected_captured = {p for p, _ in nnx.to_flat_state(nnx.filter_state(captured, flax_filter))}
        assert chosen_paths(subject, parsed, captured=True) == expected_captured


def test_parity_table_is_large_and_mostly_nonempty():
    assert len(PARITY) >= 30
    nonempty = sum(bool(select(model_and_subject(s)[2], parse(t, model_and_subject(s)[2]))) for s, t, _ in PARITY)
    assert nonempty >= 25


SPLITS = [
    ("sample:block:nnx", "Param; ...", (nnx.Param, ...)),
    ("sample:block:nnx", "RngState; Param", (nnx.RngState, nnx.Param)),
    ("sample:counter:nnx", "Param; BatchStat; Counter", (nnx.Param, nnx.BatchStat, None)),
    ("sample:counter:nnx", "PathContains('batchnorm'); ...", (nnx.PathContains("batchnorm"), ...)),
    ("sample:counter:nnx", "Variable; Param; ...", (nnx.Variable, nnx.Param, ...)),
    ("sample:scan_mlp:nnx", "'default'; Param", ("default", nnx.Param)),
    ("sample:sow:nnx", "Param", (nnx.Param,)),
    ("zoo", "Param & ~LoRA; LoRA; BatchStat; 'params'; ...",
     (nnx.All(nnx.Param, nnx.Not(LoRA)), LoRA, nnx.BatchStat, "params", ...)),
    ("zoo", "PathContains(0); PathContains(1); True", (nnx.PathContains(0), nnx.PathContains(1), True)),
]


@pytest.mark.parametrize("spec,text,flax_filters", SPLITS, ids=[f"{s}:{t}" for s, t, _ in SPLITS])
def test_split_groups_equal_nnx_split(spec, text, flax_filters):
    model, _, subject = model_and_subject(spec)
    flax_filters = tuple(subject.variable_types["Counter"] if f is None else f for f in flax_filters)
    parsed = parse_filters(text, subject.variable_types, collections=subject.collections)
    assert tuple(p.filter for p in parsed) == flax_filters
    split = split_groups(subject, parsed)
    _, *states = nnx.split(model, *flax_filters)
    for group, state in zip(split.groups, states, strict=True):
        assert {r.path for r in group.records} == {p for p, _ in nnx.to_flat_state(state)}
    assert split.exhaustive and split.remainder == ()
    assert split.merge_roundtrip is True
    assert split.line.startswith("graphdef, ")
    assert split.line.endswith(f"nnx.split(model, {', '.join(p.text for p in parsed)})")


@pytest.mark.parametrize("spec,text,flax_filters", [
    ("sample:counter:nnx", "Param; BatchStat", (nnx.Param, nnx.BatchStat)),
    ("sample:block:nnx", "'dropout'", ("dropout",)),
    ("zoo", "Param; RngState", (nnx.Param, nnx.RngState)),
], ids=["counter", "block-tag", "zoo"])
def test_non_exhaustive_split_is_a_finding(spec, text, flax_filters):
    model, _, subject = model_and_subject(spec)
    split = split_groups(subject, parse_filters(text, subject.variable_types))
    with pytest.raises(ValueError, match="Non-exhaustive filters"):
        nnx.split(model, *flax_filters)
    leftover = {p for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.Any(*flax_filters))))}
    assert {r.path for r in split.remainder} == leftover and not split.exhaustive
    assert split.merge_roundtrip is None
    assert split.fixed_line is not None and split.fixed_line.endswith(", ...)")


def test_merge_roundtrip_on_an_abstract_model_and_without_a_model():
    src = load_source("sample:block:nnx", abstract=True)
    assert merge_roundtrip(src.model, [nnx.Param, ...]) is True
    assert merge_roundtrip({"params": {}}, [nnx.Param, ...]) is None
    assert merge_roundtrip(zoo(), [nnx.Param]) is None  # not exhaustive: flax would raise


def test_split_line_names():
    assert split_line([nnx.Param, nnx.BatchStat, ...]) == (
        "graphdef, params, batch_stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)")
    assert split_line([LoRA, Counter, nnx.RngKey, "dropout", True]) == (
        "graphdef, lo_ra, counter, rng_key, state_4, rest = nnx.split(model, LoRA, Counter, nnx.RngKey, "
        "'dropout', True)")
    assert split_line([nnx.Param, nnx.Param]).startswith("graphdef, params, params_2 =")


# -- Linen sources, viewed as NNX ------------------------------------------------------------------

def linen_names(spec: str, text: str) -> set[str]:
    subject = subject_of_source(source(spec))
    return {r.full_name for r in select(subject, parse(text, subject))}


@pytest.mark.parametrize("spec,text,expected", [
    ("sample:counter:linen", "BatchStat", {"batch_stats/batchnorm/mean", "batch_stats/batchnorm/var"}),
    ("sample:counter:linen", "Counter", {"counter/count"}),
    ("sample:counter:linen", "counter", {"counter/count"}),
    ("sample:counter:linen", "~Param & ~BatchStat", {"counter/count"}),
    ("sample:counter:linen", "Param & PathContains('batchnorm')", {"params/batchnorm/scale", "params/batchnorm/bias"}),
    ("sample:counter:linen", "'params'", set()),
    ("sample:sow:linen", "Intermediate", {"intermediates/hidden/0"}),
    ("sample:sow:linen", "PathIn(('hidden',))", {"intermediates/hidden/0"}),
    ("sample:trainstate:linen", "Param", {"params/bias", "params/kernel"}),
    ("sample:trainstate:linen", "OptState & PathContains('mu')", {"opt_state/0/mu/bias", "opt_state/0/mu/kernel"}),
    ("sample:trainstate:nnx", "Param", {"bias", "kernel"}),
], ids=["batch-stats", "port-class-name", "collection-class", "neither", "path", "params-tag", "intermediate",
        "tuple-is-one-variable", "trainstate-params", "trainstate-opt", "trainstate-nnx"])
def test_linen_and_trainstate_selection(spec, text, expected):
    assert linen_names(spec, text) == expected


@pytest.mark.parametrize("name", ["block", "autoencoder", "sow"])
@pytest.mark.parametrize("text", ["Param", "PathContains('Dense_0')", "~PathContains('bias')",
                                  "PathContains('coder', exact=False)", "..."])
def test_linen_view_equals_the_nnx_bridge(name, text):
    """A Linen source filtered here selects what the same filter selects on ``nnx.bridge.ToNNX``."""
    src = source(f"sample:{name}:linen")
    example = src.example
    bridged = nnx.bridge.ToNNX(example.module, rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(bridged, *example.init.args, **example.init.kwargs)
    subject = subject_of_source(src)
    parsed = parse(text, subject)
    expected = {format_path(p) for p, _ in nnx.to_flat_state(nnx.state(bridged, parsed.filter))
                if p[0] != "to_nnx__rngs"}
    got = {r.name for r in select(subject, parsed) if r.collection == "params"}
    assert got == expected


def test_linen_split_has_no_roundtrip_but_finds_leftovers():
    subject = subject_of_source(source("sample:counter:linen"))
    split = split_groups(subject, parse_filters("Param; BatchStat", subject.variable_types))
    assert [r.full_name for r in split.remainder] == ["counter/count"]
    assert split.merge_roundtrip is None and split.fixed_line.endswith("nnx.BatchStat, ...)")
