"""How Linen and NNX name the same module, and how to tell that two names mean one thing.

Linen names submodules after their class (``Dense_0``, ``ScanBlock_0`` for a scanned ``Block``)
unless told otherwise; NNX names them after attributes (``linear``, ``blocks``). Names are compared
case-insensitively, with NNX's keyword escapes (``if_``) undone; a class is guessed from a Linen
auto-name or a layer-like attribute name and spelled the NNX way (``Dense`` → ``linear``).

>>> class_key("Dense_0", None), class_key("linear", "Linear"), class_key("ScanBlock_0", None)
('linear', 'linear', 'block')
>>> stem("ScanBlock_0"), stem("blocks"), norm("if_")
('block', 'block', 'if')
"""

from __future__ import annotations

import re

from inspector.records import PathKey, VariableRecord

AUTO_NAME = re.compile(r"^(?P<cls>[A-Z][A-Za-z0-9]*?)_(?P<i>\d+)$")
DIGITS = re.compile(r"(\d+)")
TRAILING_INDEX = re.compile(r"_?\d+$")
INDEXED = re.compile(r"^(?P<base>.+?)_(?P<i>\d+)$")
LIFTED = ("Scan", "Vmap", "Remat", "Checkpoint", "Jit", "Map", "While", "Cond", "Switch")
# Linen layer classes and the NNX classes that replace them (both compared lower-case).
LINEN_TO_NNX = {
    "dense": "linear", "densegeneral": "lineargeneral", "multiheaddotproductattention": "multiheadattention",
    "selfattention": "multiheadattention", "multiheadattention": "multiheadattention",
}
KNOWN_LAYERS = {"dense", "densegeneral", "conv", "convtranspose", "embed", "batchnorm", "layernorm",
                 "groupnorm", "rmsnorm", "dropout", "linear", "lineargeneral", "lstmcell", "grucell",
                 "multiheaddotproductattention", "multiheadattention", "einsum"}




# Names of a role inside attention and gated MLP blocks, as ports spell them (``query``, ``q_proj``,
# ``wq``, ``to_q``, ``o_proj``, ``out``). Only unambiguous spellings: LLaMA's ``w1``/``w2``/``w3`` say
# nothing about which is which.
_ROLES = {"q": "q", "query": "q", "k": "k", "key": "k", "v": "v", "value": "v", "o": "o", "out": "o",
          "output": "o", "gate": "gate", "gating": "gate", "up": "up", "down": "down"}
_ROLE_AFFIX = re.compile(r"^(to_|w_?)|(_?proj(ection)?|_?einsum)$")


def role(name: PathKey) -> str | None:
    """The role a module's name gives it in an attention or gated MLP block, if any.

    >>> role("query"), role("q_proj"), role("wq"), role("out_proj"), role("o"), role("norm")
    ('q', 'q', 'q', 'o', 'o', None)
    """
    if not isinstance(name, str):
        return None
    text = name.lower()
    if text in _ROLES:
        return _ROLES[text]
    return _ROLES.get(_ROLE_AFFIX.sub("", text).strip("_"))


def natural_key(record: VariableRecord) -> tuple:
    """Sort key that puts ``layer2`` before ``layer10`` (for sources without a creation order)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for key in record.path for part in DIGITS.split(str(key)) if part)


def class_key(name: PathKey, cls: str | None) -> str | None:
    """The module's class, NNX-named: from NNX itself, a Linen auto-name, or a layer-like name."""
    if cls:
        found = cls.lower()
    elif isinstance(name, str) and (m := AUTO_NAME.match(name)):
        found = strip_lifted(m["cls"]).lower()
    elif isinstance(name, str) and TRAILING_INDEX.sub("", name).replace("_", "").lower() in KNOWN_LAYERS:
        found = TRAILING_INDEX.sub("", name).replace("_", "").lower()
    else:
        return None
    return LINEN_TO_NNX.get(found, found)


def strip_lifted(cls: str) -> str:
    """``ScanBlock`` → ``Block``: the class a Linen lifted transform wrapped."""
    for prefix in LIFTED:
        if cls.startswith(prefix) and len(cls) > len(prefix) and cls[len(prefix)].isupper():
            return strip_lifted(cls[len(prefix):])
    return cls


def norm(name: PathKey) -> str:
    """Names compared case-insensitively; a trailing ``_`` (NNX's ``if_``) does not count."""
    text = str(name).lower()
    return text.rstrip("_") or text


def stem(name: PathKey) -> str:
    """``ScanBlock_0`` → ``block``, ``blocks`` → ``block``, ``layer_norm`` → ``layernorm``."""
    text = str(name)
    if m := AUTO_NAME.match(text):
        text = strip_lifted(m["cls"])
    text = text.lower().replace("_", "")
    return text[:-1] if len(text) > 3 and text.endswith("s") else text
