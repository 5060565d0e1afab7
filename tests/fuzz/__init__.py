"""A seeded mutation fuzzer over weight files written by the real writers.

``corpus`` writes one pristine source per reader (Orbax, flax msgpack, legacy flax checkpoints,
safetensors, npz, compressed npz, sharded Hugging Face folders); ``mutations`` derives damaged copies
from a seed (bit flips, truncation at structural boundaries and at random offsets, zeroed ranges,
inserted bytes, files deleted or replaced by garbage); ``runner`` sends ``show --values`` and
``diff`` of each copy to one long-lived ``worker`` process under a watchdog, and judges the outcome:
a read (exit 0/1 with valid JSON) or exit 2 with one ``error:`` line naming the file, never a
traceback, a hang or a write to the input.

``python -m tests.fuzz [--long] [--seed N] [--reader R] [--replay CASE]``; ``make fuzz``.
"""
