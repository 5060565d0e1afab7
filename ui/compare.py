"""Diffs and port checks of two loaded sources, computed once per input and cached."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from inspector.align.rules import forced_pairs, parse_rules
from inspector.diffing import DiffEntry, Tolerance, diff_trees, summarize, with_value_diffs
from inspector.filters import parse_filters
from inspector.restore import RestoreCheck
from inspector.sharding import parse_axis_rules
from inspector.splitmerge import Subject, split_groups, subject_of_source
from inspector.training import TrainReport, parse_train_args
from loaders import LoadedSource
from loaders.porting import port_sources, train_sources
from loaders.source import restore_between
from loaders.streaming import Progress, stream_diffs
from loaders.trace import traced_structures
from ui import sources


@dataclasses.dataclass(frozen=True)
class DiffResult:
    entries: tuple[DiffEntry, ...]
    summary: dict[str, int]
    notes: tuple[str, ...]
    restore: RestoreCheck | None = None


VALUES_KEY = "compare_value_diffs"  # value distances already measured, by sources, rules and tolerances
_KEPT = 4


def diff(left: LoadedSource, right: LoadedSource, rules_text: str, with_values: bool, rtol: float,
         atol: float, axis_rules_text: str = "") -> DiffResult:
    """The diff of two sources; with values, both sides are read by the streaming engine once per
    sources, rules and tolerances, under an ``st.progress`` bar."""
    lkey, rkey = sources.source_key(left), sources.source_key(right)
    result = _diff(left, right, lkey, rkey, rules_text, False, rtol, atol, axis_rules_text)
    if not with_values:
        return result
    token = (lkey, rkey, rules_text, rtol, atol, axis_rules_text)
    measured = st.session_state.setdefault(VALUES_KEY, {})
    if token not in measured:
        measured[token] = _measure(left, right, result.entries, Tolerance(rtol=rtol, atol=atol))
        for old in list(measured)[:-_KEPT]:
            del measured[old]
    entries = with_value_diffs(result.entries, measured[token])
    return DiffResult(tuple(entries), summarize(entries), result.notes, result.restore)


def _measure(left: LoadedSource, right: LoadedSource, entries, tolerance: Tolerance) -> dict:
    bar = st.progress(0.0, text="Comparing values…")
    shown = [0.0]

    def show(progress: Progress) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.1 or progress.arrays_done == progress.arrays_total:
            shown[0] = now
            bar.progress(min(progress.fraction, 1.0), text=f"Comparing values: {progress.text()}")

    try:
        return stream_diffs(left, right, entries, tolerance=tolerance, progress=show)
    finally:
        bar.empty()


@st.cache_data(show_spinner=False, max_entries=16)
def _diff(_left: LoadedSource, _right: LoadedSource, lkey: tuple, rkey: tuple, rules_text: str,
          with_values: bool, rtol: float, atol: float, axis_rules_text: str = "") -> DiffResult:
    forced, notes, casts = ([], [], None)
    if rules_text:
        rules = parse_rules(rules_text, origin="rules")
        forced, notes = forced_pairs(rules, _left.records, _right.records)
        casts = rules.dtype
    axis_rules = parse_axis_rules(axis_rules_text, origin="axis rules") if axis_rules_text.strip() else None
    lstruct, rstruct, trace_notes = traced_structures(_left, _right)
    notes = [*trace_notes, *notes]
    entries = diff_trees(
        _left.records, _right.records, left_structure=lstruct, right_structure=rstruct,
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


def train(left: LoadedSource, right: LoadedSource, rules_text: str, atol: float, rtol: float, loss: str,
          steps: int, lr: float, train_args_text: str) -> TrainReport | None:
    """The training-step check after the port check (cached; None when the conversion was refused)."""
    return _train(left, right, sources.source_key(left), sources.source_key(right), rules_text, atol, rtol, loss,
                  steps, lr, train_args_text)


@st.cache_resource(show_spinner=False, max_entries=8)
def _train(_left: LoadedSource, _right: LoadedSource, lkey: tuple, rkey: tuple, rules_text: str, atol: float,
           rtol: float, loss: str, steps: int, lr: float, train_args_text: str) -> TrainReport | None:
    train_args = parse_train_args([line.strip() for line in train_args_text.splitlines() if line.strip()])
    report, state = port(_left, _right, rules_text, atol, rtol)
    return train_sources(_left, _right, report, state, tolerance=Tolerance(rtol=rtol, atol=atol), loss=loss,
                         steps=steps, lr=lr, train_args=train_args or None)


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
