"""The worked examples of the Linen → NNX migration guide, each in both forms.

Every sample is two modules, ``<name>_linen`` and ``<name>_nnx``, each with an ``example()`` that
returns the model and its example inputs (``inspector.example``). Linen class names are kept as
the guide wrote them, because Linen derives variable paths from them (``Block_0``).
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

FORMS = ("linen", "nnx")


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    section: str
    summary: str

    def module(self, form: str) -> ModuleType:
        return importlib.import_module(f"sample_models.{self.name}_{form}")


SAMPLES = {s.name: s for s in (
    Sample("block", "Basic Module", "Block(Dense + Dropout) inside Model(256, 10) on (1, 784)"),
    Sample("counter", "Collections and variable types", "Dense, BatchNorm and a counter"),
    Sample("autoencoder", "Multiple methods", "AutoEncoder with encode / decode"),
    Sample("rnn", "Transforms", "RNN scanning an RNNCell over (3, 12, 32)"),
    Sample("scan_mlp", "Scan over layers", "MLP(64, num_layers=5), layers stacked by scan"),
    Sample("trainstate", "TrainState", "Dense(10) with Adam in a TrainState"),
    Sample("sow", "Intermediates", "an activation sown and captured"),
    Sample("sharded", "Sharding", "a transformer block annotated for a 2×4 (data, model) mesh"),
)}
