"""The filter language: accepted text → flax objects and canonical text; refusals; hostile input; fuzzing."""

from __future__ import annotations

import builtins
import os
import time

import pytest
from flax import nnx
from flax.nnx import filterlib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.errors import FilterSyntaxError, InspectorError
from inspector.filters import MAX_CHARS, MAX_DEPTH, ParsedFilter, parse_filter, parse_filters


class Counter(nnx.Variable):
    pass


class LoRA(nnx.Param):
    pass


TYPES = {"Counter": Counter, "LoRA": LoRA}

# (text, canonical text, the filter written with flax's own objects)
ACCEPTED = {
    "bare-type": ("Param", "nnx.Param", nnx.Param),
    "qualified": ("nnx.BatchStat", "nnx.BatchStat", nnx.BatchStat),
    "flax-qualified": ("flax.nnx.Cache", "nnx.Cache", nnx.Cache),
    "rng-state": ("RngState", "nnx.RngState", nnx.RngState),
    "rng-key": ("nnx.RngKey", "nnx.RngKey", nnx.RngKey),
    "variable": ("Variable", "nnx.Variable", nnx.Variable),
    "user-type": ("Counter", "Counter", Counter),
    "user-subclass": ("LoRA", "LoRA", LoRA),
    "tag": ("'dropout'", "'dropout'", "dropout"),
    "tag-double-quotes": ('"dropout"', "'dropout'", "dropout"),
    "ellipsis": ("...", "...", ...),
    "ellipsis-name": ("Ellipsis", "...", ...),
    "true": ("True", "True", True),
    "false": ("False", "False", False),
    "none": ("None", "None", None),
    "or": ("Param | BatchStat", "nnx.Any(nnx.Param, nnx.BatchStat)", nnx.Any(nnx.Param, nnx.BatchStat)),
    "or-chain": ("Param | BatchStat | 'dropout'", "nnx.Any(nnx.Param, nnx.BatchStat, 'dropout')",
                 nnx.Any(nnx.Param, nnx.BatchStat, "dropout")),
    "and-not": ("Param & ~PathContains('bn1')", "nnx.All(nnx.Param, nnx.Not(nnx.PathContains('bn1')))",
                nnx.All(nnx.Param, nnx.Not(nnx.PathContains("bn1")))),
    "precedence": ("Param | BatchStat & ~Cache", "nnx.Any(nnx.Param, nnx.All(nnx.BatchStat, nnx.Not(nnx.Cache)))",
                   nnx.Any(nnx.Param, nnx.All(nnx.BatchStat, nnx.Not(nnx.Cache)))),
    "parens": ("(Param | BatchStat) & PathContains(0)",
               "nnx.All(nnx.Any(nnx.Param, nnx.BatchStat), nnx.PathContains(0))",
               nnx.All(nnx.Any(nnx.Param, nnx.BatchStat), nnx.PathContains(0))),
    "double-not": ("~~Param", "nnx.Not(nnx.Not(nnx.Param))", nnx.Not(nnx.Not(nnx.Param))),
    "not-ellipsis": ("~...", "nnx.Not(...)", nnx.Not(...)),
    "all-call": ("nnx.All(nnx.Param, nnx.PathContains('bn1'))", "nnx.All(nnx.Param, nnx.PathContains('bn1'))",
                 nnx.All(nnx.Param, nnx.PathContains("bn1"))),
    "any-bare": ("Any(Param, 'params')", "nnx.Any(nnx.Param, 'params')", nnx.Any(nnx.Param, "params")),
    "any-empty": ("nnx.Any()", "nnx.Any()", nnx.Any()),
    "not-call": ("nnx.Not(Param)", "nnx.Not(nnx.Param)", nnx.Not(nnx.Param)),
    "everything": ("Everything()", "nnx.Everything()", nnx.Everything()),
    "nothing": ("nnx.Nothing()", "nnx.Nothing()", nnx.Nothing()),
    "of-type": ("OfType(Param)", "nnx.OfType(nnx.Param)", nnx.OfType(nnx.Param)),
    "of-type-kw": ("nnx.OfType(type=Counter)", "nnx.OfType(Counter)", nnx.OfType(Counter)),
    "with-tag": ("WithTag('params')", "nnx.WithTag('params')", nnx.WithTag("params")),
    "path-contains-int": ("PathContains(3)", "nnx.PathContains(3)", nnx.PathContains(3)),
    "path-contains-inexact": ("PathContains('bn', exact=False)", "nnx.PathContains('bn', exact=False)",
                              nnx.PathContains("bn", exact=False)),
    "path-contains-positional": ("PathContains('bn', False)", "nnx.PathContains('bn', exact=False)",
                                 nnx.PathContains("bn", exact=False)),
    "path-contains-exact-true": ("PathContains(key='bn', exact=True)", "nnx.PathContains('bn')",
                                 nnx.PathContains("bn")),
    "path-in": ("PathIn(('linear', 'kernel'), ('layers', 0, 'bias'))",
                "nnx.filterlib.PathIn(('linear', 'kernel'), ('layers', 0, 'bias'))",
                filterlib.PathIn(("linear", "kernel"), ("layers", 0, "bias"))),
    "path-in-qualified": ("nnx.filterlib.PathIn(('a',))", "nnx.filterlib.PathIn(('a',))", filterlib.PathIn(("a",))),
    "filterlib-qualified": ("filterlib.All(Param)", "nnx.All(nnx.Param)", nnx.All(nnx.Param)),
    "tuple": ("(Param, BatchStat)", "(nnx.Param, nnx.BatchStat)", (nnx.Param, nnx.BatchStat)),
    "one-tuple": ("(Param,)", "(nnx.Param,)", (nnx.Param,)),
    "list": ("[Param, 'dropout']", "(nnx.Param, 'dropout')", (nnx.Param, "dropout")),
    "spaces-newlines": ("  (Param\n | BatchStat)  ", "nnx.Any(nnx.Param, nnx.BatchStat)",
                        nnx.Any(nnx.Param, nnx.BatchStat)),
    "comment": ("Param  # the weights", "nnx.Param", nnx.Param),
    "semicolon-in-tag": ("'a;b'", "'a;b'", "a;b"),
}


@pytest.mark.parametrize("text,canonical,expected", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_accepted(text, canonical, expected):
    parsed = parse_filter(text, TYPES)
    assert parsed.text == canonical
    assert parsed.filter == expected and type(parsed.filter) is type(expected)
    again = parse_filter(parsed.text, TYPES)  # the canonical text is itself valid input
    assert again.text == canonical and again.filter == expected


def test_operators_get_a_note_with_the_flax_spelling():
    parsed = parse_filter("Param | BatchStat")
    assert any("Python union type" in n and "nnx.Any(nnx.Param, nnx.BatchStat)" in n for n in parsed.notes)
    assert parse_filter("nnx.Any(nnx.Param, nnx.BatchStat)").notes == ()


@pytest.mark.parametrize("text,suggestion", [
    ("'params'", "not parameters; did you mean Param?"),
    ("'batch_stats'", "did you mean BatchStat?"),
    ("'intermediates'", "did you mean Intermediate?"),
    ("nnx.Any(nnx.Param, 'cache')", "did you mean Cache?"),
], ids=["params", "batch_stats", "intermediates", "nested"])
def test_linen_collection_names_as_tags_get_a_note(text, suggestion):
    (note,) = parse_filter(text).notes
    assert "is a tag in NNX: it selects RNG state of the stream" in note and suggestion in note


def test_a_source_collection_as_tag_gets_a_note():
    (note,) = parse_filter("'counter'", {"Counter": Counter}, collections=["counter"]).notes
    assert "the Linen collection 'counter'" in note and "did you mean Counter?" in note
    assert parse_filter("'counter'").notes == ()


def test_a_quoted_type_name_gets_a_note():
    (note,) = parse_filter("'Param'").notes
    assert "not the type: write Param without quotes" in note


REFUSED = {
    "dangling-operator": ("nnx.Param &", r"^not a filter expression: invalid syntax, nothing after '&' \(column 11\)$"),
    "misspelled": ("Parm", r"^Unknown name 'Parm'\. Did you mean 'Param'\? \(column 1\)$"),
    "misspelled-qualified": ("nnx.BatchStats", r"Unknown name 'nnx.BatchStats'\. Did you mean 'nnx.BatchStat'\?"),
    "misspelled-column": ("Param | Cahce", r"Unknown name 'Cahce'\. Did you mean 'Cache'\? \(column 9\)"),
    "misspelled-line": ("(Param |\n  Parm)", r"Unknown name 'Parm'.*\(line 2, column 3\)"),
    "linen-collection-name": ("batch_stats", r"Did you mean 'BatchStat'\? \('batch_stats' is a Linen collection"),
    "user-type-qualified": ("nnx.Counter", r"Counter is not in flax.nnx, it is defined in the model's code"),
    "misspelled-function": ("PathContain('a')", r"Unknown function 'PathContain'\. Did you mean 'PathContains'\?"),
    "uncalled-constructor": ("Everything", r"nnx.Everything is a class: call it"),
    "uncalled-any": ("nnx.Any", r"nnx.Any is a filter constructor: call it"),
    "called-type": ("Param()", r"nnx.Param is a Variable type, not a function"),
    "or-keyword": ("Param or BatchStat", r"'or' is not a filter operator: use '\|'"),
    "and-keyword": ("Param and BatchStat", r"'and' is not a filter operator: use '&'"),
    "not-keyword": ("not Param", r"'not' is not a filter operator: use '~'"),
    "plus": ("Param + BatchStat", r"operator '\+' is not allowed"),
    "number": ("3", r"a number is not a filter"),
    "float": ("1.5", r"float '1.5' is not a filter"),
    "bytes": ("b'x'", r"bytes"),
    "fstring": ("f'{Param}'", r"an f-string is not allowed"),
    "lambda": ("lambda path, v: True", r"a lambda is not allowed in a filter: 'lambda path, v: True' \(column 1\)"),
    "comprehension": ("[p for p in Param]", r"a comprehension is not allowed"),
    "subscript": ("Param[0]", r"indexing is not allowed in a filter: 'Param\[0\]'"),
    "walrus": ("(x := Param)", r"an assignment is not allowed"),
    "assignment": ("x = Param", r"not a filter expression: invalid syntax"),
    "import": ("import os", r"not a filter expression: invalid syntax"),
    "comparison": ("Param == BatchStat", r"a comparison is not allowed"),
    "dict": ("{'a': Param}", r"a dict is not allowed"),
    "conditional": ("Param if True else Cache", r"a conditional expression is not allowed"),
    "attribute-walk": ("nnx.Param.__mro__", r"dunder names are not allowed"),
    "other-module": ("os.path", r"attribute access is not allowed: 'os.path'"),
    "call-attribute": ("Param.mro()", r"Unknown function 'Param.mro'"),
    "of-type-string": ("OfType('Param')", r"nnx.OfType takes a Variable type such as nnx.Param"),
    "with-tag-int": ("WithTag(1)", r"nnx.WithTag takes a string"),
    "path-contains-bool": ("PathContains(True)", r"takes a path key \(a string or an integer\), not 'True'"),
    "path-contains-float": ("PathContains(1.5)", r"takes a path key"),
    "exact-not-bool": ("PathContains('a', exact=1)", r"exact must be True or False, not '1' \(column 25\)"),
    "unknown-keyword": ("PathContains('a', exct=True)", r"has no argument 'exct'\. Did you mean 'exact'\?"),
    "missing-argument": ("PathContains()", r"needs its argument 'key'"),
    "too-many": ("PathContains('a', True, 3)", r"takes at most 2 arguments, got 3"),
    "twice": ("PathContains('a', key='b')", r"got the argument 'key' twice"),
    "path-in-string": ("PathIn('block/linear')", r"write nnx.filterlib.PathIn\(\('block', 'linear'\)\)"),
    "path-in-list": ("PathIn(['a', 'b'])", r"takes tuples of keys, not lists"),
    "path-in-key": ("PathIn(('a', Param))", r"holds strings and integers"),
    "not-arity": ("Not(Param, Cache)", r"nnx.Not takes exactly one filter, got 2"),
    "everything-args": ("Everything(Param)", r"nnx.Everything takes no arguments"),
    "any-keywords": ("Any(a=Param)", r"nnx.Any takes no keyword arguments"),
    "star": ("All(*Param)", r"'\*' unpacking is not allowed"),
    "double-star": ("PathContains(**k)", r"'\*\*' unpacking is not allowed"),
    "semicolon": ("Param; BatchStat", r"';' separates the filters of split"),
    "syntax": ("Param |", r"not a filter expression: invalid syntax"),
    "unclosed": ("All(Param", r"not a filter expression: '\(' was never closed"),
    "empty": ("   ", r"empty filter"),
    "deprecated-alias": ("nnx.VariableState", r"Unknown name 'nnx.VariableState'"),
}


@pytest.mark.parametrize("text,message", list(REFUSED.values()), ids=list(REFUSED))
def test_refused(text, message):
    with pytest.raises(FilterSyntaxError, match=message):
        parse_filter(text, TYPES)


def test_refusals_belong_to_the_project_error_family():
    with pytest.raises(InspectorError):
        parse_filter("Parm")
    with pytest.raises(ValueError):  # InspectorError is a ValueError, as callers may expect
        parse_filter("Parm")


def test_refusal_carries_the_offset():
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("Param | Parm")
    assert info.value.offset == 8


@pytest.mark.parametrize("text,texts", [
    ("Param; BatchStat; ...", ["nnx.Param", "nnx.BatchStat", "..."]),
    ("Param | Cache; ...;", ["nnx.Any(nnx.Param, nnx.Cache)", "..."]),
    ("'a;b'; \"c;d\"", ["'a;b'", "'c;d'"]),
    ("nnx.Any(Param, 'x'); True", ["nnx.Any(nnx.Param, 'x')", "True"]),
    ("...; ...", ["...", "..."]),
    ("Everything(); Param", ["nnx.Everything()", "nnx.Param"]),
], ids=["three", "trailing-semicolon", "semicolons-in-strings", "true-last", "ellipses", "everything-object"])
def test_parse_filters(text, texts):
    assert [f.text for f in parse_filters(text, TYPES)] == texts


@pytest.mark.parametrize("text,message", [
    ("...; Param", r"\.\.\. matches everything, so it can only be the last filter.*\(column 1\)"),
    ("Param; True; Cache", r"True matches everything.*\(column 8\)"),
    ("Param;; ...", r"empty filter.*\(column 7\)"),
    (";", r"empty filter"),
    ("Param; Parm", r"Unknown name 'Parm'\. Did you mean 'Param'\? \(column 8\)"),
], ids=["ellipsis-first", "true-middle", "empty-piece", "only-semicolon", "column-in-whole-text"])
def test_parse_filters_refused(text, message):
    with pytest.raises(FilterSyntaxError, match=message):
        parse_filters(text)


# -- bounds ---------------------------------------------------------------------------------------

def test_length_bound():
    assert parse_filter("'" + "x" * (MAX_CHARS - 2) + "'").filter == "x" * (MAX_CHARS - 2)
    with pytest.raises(FilterSyntaxError, match="too long: 2,001 characters"):
        parse_filter("'" + "x" * (MAX_CHARS - 1) + "'")


def test_depth_bound():
    deep = "nnx.Not(" * MAX_DEPTH + "Param" + ")" * MAX_DEPTH
    assert parse_filter(deep).text == deep.replace("Param", "nnx.Param")
    with pytest.raises(FilterSyntaxError, match="nested too deeply"):
        parse_filter("(" * (MAX_DEPTH + 1) + "Param" + ")" * (MAX_DEPTH + 1))
    assert parse_filter("'" + "(" * 500 + "'").filter == "(" * 500  # brackets inside a tag don't count


def test_digit_bound():
    assert parse_filter("PathContains(" + "9" * 18 + ")").filter == nnx.PathContains(10 ** 18 - 1)
    with pytest.raises(FilterSyntaxError, match="too long"):
        parse_filter("PathContains(" + "9" * 19 + ")")
    with pytest.raises(FilterSyntaxError, match="too large"):
        parse_filter("PathContains(0x" + "f" * 16 + ")")


@pytest.mark.parametrize("text", [
    "1" * 1999,                              # beyond Python's own int-string limit if it were parsed
    "~" * 1990 + "Param",                     # deep without brackets
    "Param" + " | Param" * 270,               # a long operator chain
    "nnx.a" + ".b" * 900,                     # a long attribute chain
    "\ud800",                                 # lone surrogate: UnicodeEncodeError inside ast.parse
    "Param\x00",                              # null byte
    "'unterminated",
    "'''",
    "(" * 49 + "[" + ")" * 49,
    "\\",
], ids=["digits", "tildes", "or-chain", "attributes", "surrogate", "null", "unterminated", "triple", "mismatched",
        "backslash"])
def test_pathological_input_is_refused_quickly(text):
    start = time.perf_counter()
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)
    with pytest.raises(FilterSyntaxError):
        parse_filters(text + ";...")
    assert time.perf_counter() - start < 2


def test_not_text_is_refused():
    with pytest.raises(FilterSyntaxError, match="must be text"):
        parse_filter(b"Param")  # type: ignore[arg-type]


# -- hostile input --------------------------------------------------------------------------------

@pytest.fixture
def no_side_effects(monkeypatch, tmp_path):
    """Make every way out of the parser fail loudly, and give a file a hostile input would create."""
    calls = []

    def trap(name):
        def trapped(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called")
        return trapped

    for name in ("open", "ev" + "al", "ex" + "ec", "breakpoint", "input"):
        monkeypatch.setattr(builtins, name, trap(name))
    monkeypatch.setattr(os, "system", trap("os.system"))
    yield tmp_path / "pwned"
    assert calls == []
    assert not (tmp_path / "pwned").exists()
    assert not hasattr(nnx, "pwned") and not hasattr(nnx.Param, "pwned")


HOSTILE = [
    "__import__('os').system('touch {path}')",
    "open('{path}', 'w')",
    "__import__('pathlib').Path('{path}').touch()",
    "nnx.Param.__class__.__base__.__subclasses__()",
    "().__class__.__base__.__subclasses__()[0]",
    "setattr(nnx, 'pwned', 1)",
    "nnx.Param.__dict__",
    "(lambda: __import__('os').system('touch {path}'))()",
    "[__import__('os').system('touch {path}') for _ in 'x']",
    "nnx.All(Param, __import__('os').system('touch {path}'))",
    "PathContains(open('{path}', 'w'))",
    "globals()['__builtins__']",
    "Param if __import__('os').system('touch {path}') else Cache",
    "(x := __import__('os'))",
    "import os; os.system('touch {path}')",
    "nnx.filterlib.__builtins__",
    "type('X', (nnx.Variable,), {{'pwned': 1}})",
    "getattr(nnx, 'Param')",
    "nnx.__dict__['Param']",
    "Param; __import__('os').system('touch {path}')",
]


@pytest.mark.parametrize("template", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_input_is_refused_without_side_effects(no_side_effects, template):
    text = template.format(path=no_side_effects)
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)
    with pytest.raises(FilterSyntaxError):
        parse_filters(text)


# -- fuzzing --------------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
TOKENS = ["Param", "nnx.", "BatchStat", "Counter", "Parm", "All", "Any", "Not", "PathContains", "PathIn",
          "OfType", "WithTag", "Everything", "Nothing", "(", ")", "[", "]", ",", "|", "&", "~", "...", "'x'",
          "'params'", "0", "-1", "exact=", "True", "False", "None", ";", " ", "\n", "lambda", ":", ".",
          "__class__", "open", "=", "#", "'", '"', "\\", "*", "**", "filterlib.", "1e9", "0x1f"]


def _outcome(text: str, *, many: bool) -> None:
    try:
        result = parse_filters(text, TYPES) if many else parse_filter(text, TYPES)
    except FilterSyntaxError:
        return
    for parsed in result if many else [result]:
        assert isinstance(parsed, ParsedFilter)
        filterlib.to_predicate(parsed.filter)  # flax accepts what the parser built


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    _outcome(text, many=False)
    _outcome(text, many=True)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_fuzz_token_soup(text):
    _outcome(text, many=False)
    _outcome(text, many=True)


_LEAVES = st.sampled_from(["Param", "nnx.BatchStat", "Counter", "'dropout'", "...", "True", "None",
                           "nnx.PathContains('linear')", "PathContains(0, exact=False)",
                           "nnx.filterlib.PathIn(('a', 0))", "nnx.Everything()", "Nothing()"])


def _compound(children):
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: f"({p[0]} | {p[1]})"), pair.map(lambda p: f"({p[0]} & {p[1]})"),
        children.map(lambda c: f"~{c}"), children.map(lambda c: f"nnx.Not({c})"),
        st.lists(children, max_size=3).map(lambda cs: f"nnx.All({', '.join(cs)})"),
        st.lists(children, max_size=3).map(lambda cs: f"Any({', '.join(cs)})"),
        st.lists(children, min_size=1, max_size=3).map(lambda cs: f"({', '.join(cs)},)"),
    )


GRAMMAR = st.recursive(_LEAVES, _compound, max_leaves=12)


@FUZZ
@given(GRAMMAR)
def test_fuzz_grammar_always_parses_and_round_trips(text):
    parsed = parse_filter(text, TYPES)
    again = parse_filter(parsed.text, TYPES)
    assert again.text == parsed.text and again.filter == parsed.filter
    filterlib.to_predicate(parsed.filter)(("linear", 0, "kernel"), nnx.Param(0))


@FUZZ
@given(GRAMMAR, st.sampled_from([" ", "~", "(", ")", ",", "|", "Parm", "'", ";", ".", "__class__"]), st.data())
def test_fuzz_grammar_with_one_mutation(text, token, data):
    i = data.draw(st.integers(0, len(text)))
    _outcome(text[:i] + token + text[i:], many=False)
    _outcome(text[:i] + token + text[i:], many=True)
