"""Orbax checkpoint directories as sources."""

from __future__ import annotations

from inspector.errors import CheckpointError
from loaders.spec import SourceSpec


def load_checkpoint(spec: SourceSpec, *, abstract: bool):
    raise CheckpointError(f"source {spec.text!r} is a directory; reading Orbax checkpoints is not "
                          "supported yet")
