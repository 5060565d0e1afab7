"""The project's error family: every error a user can cause, and nothing else.

Each error carries a message that says what went wrong, shows the offending value and gives the
fix. The CLI prints it as one ``error:`` line and exits 2; the app shows it with ``st.error``.
Anything outside this family is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib


class InspectorError(ValueError):
    """Base of every error a user's input can cause."""


class SourceError(InspectorError):
    """A source spec that cannot be loaded: unknown sample, missing file, factory failure."""


class UserCodeError(SourceError):
    """The user's own code raised while building a model; the cause keeps the traceback."""


class FilterSyntaxError(InspectorError):
    """Filter text that is not in the filter language."""


class CheckpointError(SourceError):
    """An Orbax checkpoint that cannot be read."""


class WeightFileError(SourceError):
    """A weight file (msgpack, safetensors, npz, legacy flax checkpoint, model folder) that cannot be read."""


class RulesError(InspectorError):
    """An alignment rules file that is malformed."""


class PortError(InspectorError):
    """Two sources that cannot be run side by side (no module, no inputs, an existing output)."""


def did_you_mean(word: str, choices) -> str:
    """A ``"; did you mean 'x'?"`` suffix for a misspelled name, or ``""``.

    >>> did_you_mean("Parm", ["Param", "BatchStat"])
    "; did you mean 'Param'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
