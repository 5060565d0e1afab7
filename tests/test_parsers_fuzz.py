"""Hypothesis (derandomized) over the texts that reach parsers: rules files and source specs.

Whatever the text, a parser either returns its value or raises its own ``InspectorError``
subclass whose message formats; never another exception. Specs go through ``parse_spec`` only:
nothing a spec names is imported or called. (Filter expressions: tests/test_filters.py.)
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.align.rules import Rules, parse_rules, target_path
from inspector.errors import RulesError, SourceError
from loaders.spec import parse_spec

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
REGEX_BITS = ["(", ")", "\\", "\\1", "\\g<0>", "\\g<x>", "[", "]", "*", "+", "?", "{2}", "^", "$", ".", "|", "a",
              "Dense_", "(?P<x>", "(?:", "\\d+", "/"]
REGEX = st.lists(st.sampled_from(REGEX_BITS), max_size=10).map("".join)
RULES = st.fixed_dictionaries({}, optional={
    "rename": st.lists(st.lists(REGEX, min_size=2, max_size=2) | JSON, max_size=4) | JSON,
    "pairs": st.dictionaries(st.text(max_size=10), st.text(max_size=10) | JSON, max_size=3) | JSON,
    "extra": JSON})
PATHS = st.lists(st.sampled_from(["Dense_0", "Block_0", "kernel", "bias", "a", "", "0", "ä", "/"]),
                 max_size=4).map("/".join)


def _rules_or_error(text: str) -> Rules | None:
    try:
        return parse_rules(text, origin="rules.json")
    except RulesError as err:
        assert str(err).startswith("rules.json: ")
        return None


@FUZZ
@given(st.text(max_size=200))
def test_any_text_as_a_rules_file(text):
    _rules_or_error(text)


@FUZZ
@given(RULES, st.lists(PATHS, max_size=4))
def test_rules_shaped_json_parses_or_says_why_and_applies(data, paths):
    rules = _rules_or_error(json.dumps(data))
    for path in paths if rules is not None else ():
        try:
            new = target_path(rules, path)
        except RulesError as err:
            assert "fails on" in str(err)
        else:
            assert new is None or isinstance(new, str)


@FUZZ
@given(st.integers(1, 3000), st.sampled_from(["[", "{\"rename\": ", "(", "{\"rename\": [[\"("]))
def test_deep_nesting_is_refused_not_a_crash(depth, opener):
    text = opener * depth if opener != "{\"rename\": [[\"(" else opener + "(" * depth + "\", \"x\"]]}"
    _rules_or_error(text)


SPEC_BITS = ["sample:", "block", "nnx", "linen", ":", ".py", "make", "@", "7", "/", "..", ".", "~", "x",
             ".msgpack", ".safetensors", ".npz", "checkpoint_", "3", ".index.json", "pkg.mod", " ", "\x00",
             "é", "os:system", "__import__", "a" * 300]
SPECS = st.lists(st.sampled_from(SPEC_BITS), max_size=8).map("".join) | st.text(max_size=80)


@FUZZ
@given(SPECS)
def test_any_spec_parses_or_says_why_and_imports_nothing(tmp_path_factory, text):
    base = tmp_path_factory.getbasetemp()
    modules = set(sys.modules)
    try:
        spec = parse_spec(text, base=str(base))
    except SourceError as err:
        assert str(err)
    else:
        assert spec.kind in ("sample", "file", "module", "checkpoint", "weights")
        assert spec.text == text.strip()
    assert set(sys.modules) == modules


# What the Hypothesis tests above found, pinned as plain cases.
FOUND = {
    "rename-null": (lambda: parse_rules('{"rename": null}', origin="r.json"), RulesError,
                    "'rename' must be a list of"),
    "rename-number": (lambda: parse_rules('{"rename": 5}', origin="r.json"), RulesError, "got int"),
    "json-nested-deeply": (lambda: parse_rules("[" * 100_000, origin="r.json"), RulesError, "nested too deeply"),
    "spec-name-too-long": (lambda: parse_spec("a" * 300), SourceError, "does not exist"),
}


@pytest.mark.parametrize("call,error,message", FOUND.values(), ids=FOUND)
def test_found_by_hypothesis(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


@pytest.mark.parametrize("spec,message", [("a" * 300 + ".safetensors", "cannot be opened: File name too long"),
                                          ("model\x00.npz", "does not exist"), ("a" * 300, "does not exist")],
                         ids=["long-weight-file-name", "nul-byte", "long-name"])
def test_names_the_system_refuses_are_one_error_line(cli, spec, message):
    code, out, err = cli("show", spec)
    assert code == 2 and err.count("error:") == 1 and message in err.strip().splitlines()[-1], err
