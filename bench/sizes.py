"""How benchmark sizes map to models, importable without jax.

The parent process and the app case must not import jax before they measure (the app's first
render includes importing it), yet both need to turn "1,000 variables" into a number of blocks.

>>> blocks_for(1000), blocks_for(1000) * VARIABLES_PER_BLOCK
(167, 1002)
"""

from __future__ import annotations

import math

VARIABLES_PER_BLOCK = 6  # two Linear (kernel, bias) and a LayerNorm (scale, bias)


def blocks_for(variables: int) -> int:
    """The number of blocks whose model has at least ``variables`` variables."""
    return max(1, math.ceil(variables / VARIABLES_PER_BLOCK))
