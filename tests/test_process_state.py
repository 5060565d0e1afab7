"""Script threads of several app sessions at once must leave process-wide state as they found it:
warning filters, the absl logger's level, ``sys.unraisablehook``."""

from __future__ import annotations

import logging
import sys
import threading
import warnings

import pytest

from inspector.filters import parse_filter
from inspector.process_state import ignoring_warnings
from loaders.checkpoint import quiet_orbax


def hammer(work, threads: int = 8, rounds: int = 200) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            for _ in range(rounds):
                work()
        except BaseException as err:  # noqa: B036 - reported below
            errors.append(err)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


def test_filters_parsed_in_many_threads_leave_warning_filters_alone():
    before = list(warnings.filters)
    hammer(lambda: parse_filter(r"nnx.WithTag('\d') | nnx.Param"))
    assert warnings.filters == before


def test_checkpoint_quieting_in_many_threads_restores_everything():
    before = (list(warnings.filters), logging.getLogger("absl").level, sys.unraisablehook)

    def quiet() -> None:
        with quiet_orbax():
            pass

    hammer(quiet)
    assert (list(warnings.filters), logging.getLogger("absl").level, sys.unraisablehook) == before


def test_the_filter_is_active_inside_and_gone_after():
    with ignoring_warnings(UserWarning, module="tests"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn_explicit("hidden", UserWarning, "x.py", 1, module="tests.x")
        assert not seen
    with pytest.warns(UserWarning, match="shown"):
        warnings.warn_explicit("shown", UserWarning, "x.py", 1, module="tests.x")
