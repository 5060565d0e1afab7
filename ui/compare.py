"""Diffs and port checks of two loaded sources, computed once per input and cached."""

from __future__ import annotations

import dataclasses

import streamlit as st

from inspector.align.rules import forced_pairs, parse_rules
from inspector.diffing import DiffEntry, Tolerance, diff_trees, summarize
from inspector.filters import parse_filters
from inspector.restore import RestoreCheck
from inspector.sharding import parse_axis_rules
from inspector.splitmerge import Subject, split_groups, subject_of_source
from loaders import LoadedSource
from loaders.porting import port_sources
from loaders.source import restore_between
from ui import sources


@dataclasses.dataclass(frozen=True)
class DiffResult:
    entries: tuple[DiffEntry, ...]
    summary: dict[str, int]
    notes: tuple[str, ...]
    restore: RestoreCheck | None = None


def diff(left: LoadedSource, right: LoadedSource, rules_text: str, with_values: bool, rtol: float,
         atol: float, axis_rules_text: str = "") -> DiffResult:
    return _diff(left, right, sources.source_key(left), sources.source_key(right), rules_text, with_values,
                 rtol, atol, axis_rules_text)


@st.cache_data(show_spinner=False, max_entries=16)
def _diff(_left: LoadedSource, _right: LoadedSource, lkey: tuple, rkey: tuple, rules_text: str,
          with_values: bool, rtol: float, atol: float, axis_rules_text: str = "") -> DiffResult:
    forced, notes, casts = ([], [], None)
    if rules_text:
        rules = parse_rules(rules_text, origin="rules")
        forced, notes = forced_pairs(rules, _left.records, _right.records)
        casts = rules.dtype
    axis_rules = parse_axis_rules(axis_rules_text, origin="axis rules") if axis_rules_text.strip() else None
    entries = diff_trees(
        _left.records, _right.records, left_structure=_left.structure, right_structure=_right.structure,
        forced=forced, rng_one_sided=not (_left.form == _right.form == "nnx"),
        sharding_one_sided=not (_left.on_disk or _right.on_disk),
        values=(_left.read, _right.read) if with_values else None, tolerance=Tolerance(rtol=rtol, atol=atol),
        axis_rules=axis_rules, casts=casts)
    return DiffResult(tuple(entries), summarize(entries), tuple(notes), restore_between(_left, _right, entries))


def port(left: LoadedSource, right: LoadedSource, rules_text: str, atol: float, rtol: float):
    """The port check's report and converted state (cached: it runs both models)."""
    return _port(left, right, sources.source_key(left), sources.source_key(right), rules_text, atol, rtol)


@st.cache_resource(show_spinner=False, max_entries=8)
def _port(_left: LoadedSource, _right: LoadedSource, lkey: tuple, rkey: tuple, rules_text: str, atol: float,
          rtol: float):
    rules = parse_rules(rules_text, origin="rules") if rules_text.strip() else None
    return port_sources(_left, _right, rules=rules, tolerance=Tolerance(rtol=rtol, atol=atol))


def subject(src: LoadedSource) -> Subject:
    """The source's variables as NNX would hold them, for filters (cached per source)."""
    return _subject(src, sources.source_key(src))


@st.cache_resource(show_spinner=False, max_entries=16)
def _subject(_src: LoadedSource, key: tuple) -> Subject:
    return subject_of_source(_src)


def split(src: LoadedSource, text: str):
    """Parsed filters and their split of the source (cached: the merge check rebuilds the model)."""
    return _split(src, sources.source_key(src), text)


@st.cache_resource(show_spinner=False, max_entries=32)
def _split(_src: LoadedSource, key: tuple, text: str):
    subject_ = subject(_src)
    filters = parse_filters(text, subject_.variable_types, collections=subject_.collections)
    return filters, split_groups(subject_, filters)
