"""Rules files: parsing with clear errors, overriding the alignment, and round-tripping."""

from __future__ import annotations

import json
import re

import pytest

from inspector.align.rules import forced_pairs, parse_rules, rules_from_entries, target_path
from inspector.diffing import Status, diff_trees
from inspector.errors import RulesError
from loaders import load_source


@pytest.mark.parametrize("text,message", [
    ("{", "not valid JSON at line 1"),
    ("[]", "expected a JSON object"),
    ('{"renames": []}', "unknown key(s) 'renames'"),
    ('{"rename": [["(", "x"]]}', "rename[0]: bad regular expression '('"),
    ('{"rename": [["a"]]}', "rename[0] must be"),
    ('{"pairs": {"a": 1}}', "'pairs' must map left paths to right paths"),
], ids=["json", "not-object", "unknown-key", "bad-regex", "short-rename", "bad-pairs"])
def test_bad_rules_are_refused_with_the_place(text, message):
    with pytest.raises(RulesError, match=re.escape(message)):
        parse_rules(text, origin="rules.json")


def test_pairs_win_and_name_modules():
    rules = parse_rules(json.dumps({"rename": [["^Dense_(\\d+)", "linear\\1"]],
                                    "pairs": {"Block_0": "block", "Dense_0/bias": "head/b"}}))
    assert target_path(rules, "Block_0/Dense_0/kernel") == "block/Dense_0/kernel"
    assert target_path(rules, "Dense_0/bias") == "head/b"
    assert target_path(rules, "Dense_0/kernel") == "linear0/kernel"
    assert target_path(rules, "Other/kernel") is None


def test_rules_override_the_automatic_alignment():
    """Swap the two layers on purpose: the rules decide, and the shapes then disagree."""
    a, b = load_source("sample:autoencoder:linen"), load_source("sample:autoencoder:nnx")
    rules = parse_rules('{"pairs": {"encoder": "decoder", "decoder": "encoder"}}')
    forced, notes = forced_pairs(rules, a.records, b.records)
    assert notes == [] and len(forced) == 4
    entries = diff_trees(a.records, b.records, forced=forced)
    assert {(e.left.name, e.right.name) for e in entries} == {
        ("encoder/kernel", "decoder/kernel"), ("encoder/bias", "decoder/bias"),
        ("decoder/kernel", "encoder/kernel"), ("decoder/bias", "encoder/bias")}
    assert {e.status for e in entries} == {Status.SHAPE}


def test_missing_targets_are_noted():
    a, b = load_source("sample:autoencoder:linen"), load_source("sample:autoencoder:nnx")
    forced, notes = forced_pairs(parse_rules('{"pairs": {"encoder/kernel": "enc/w"}}'), a.records, b.records)
    assert forced == [] and "right side does not have" in notes[0]


def test_written_rules_reproduce_the_alignment():
    a, b = load_source("sample:block:linen"), load_source("sample:block:nnx")
    entries = diff_trees(a.records, b.records, left_structure=a.structure, right_structure=b.structure)
    found = [(e.left, e.right) for e in entries if e.left and e.right]
    rules = rules_from_entries(found)
    assert rules == {"rename": [], "pairs": {"Block_0": "block", "Block_0/Dense_0": "block/linear",
                                             "Dense_0": "linear"}} or rules["pairs"]["Dense_0"] == "linear"
    forced, notes = forced_pairs(parse_rules(json.dumps(rules)), a.records, b.records)
    assert notes == [] and sorted((x.name, y.name) for x, y in forced) == sorted((x.name, y.name) for x, y in found)


def test_rules_that_pair_nothing_are_noted_and_collection_prefixes_work():
    a, b = load_source("sample:autoencoder:linen"), load_source("sample:autoencoder:nnx")
    rules = parse_rules('{"rename": [["^nothing", "x"]], "pairs": {"params/encoder": "decoder", "nothere": "x"}}')
    forced, notes = forced_pairs(rules, a.records, b.records)
    assert {(x.full_name, y.name) for x, y in forced} == {("params/encoder/kernel", "decoder/kernel"),
                                                         ("params/encoder/bias", "decoder/bias")}
    assert any("rule pair 'nothere' matches no left variable" in n for n in notes)
    assert any("rename '^nothing' matches no left variable" in n for n in notes)
